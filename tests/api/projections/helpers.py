"""Helpers for the projection tests: an ICB with returns, and a run requested and finished."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import ICB_A, LAD_A1, make_organisation, make_role

AS_AT = "2025-03-31"


def line(role_code: str, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "role_code": role_code, "headcount": 40, "fte_in_post": 32.5, "vacant_fte": 4,
        "starters_12m": 10, "leavers_12m": 8, "leavers_to_health_care_12m": 2,
        "sickness_days_12m": 310, "agency_fte": 1.5, "bank_fte": 2, "age_under_25": 6,
        "age_25_34": 9, "age_35_44": 8, "age_45_54": 9, "age_55_64": 6, "age_65_plus": 2,
    }  # fmt: skip
    values.update(overrides)
    return values


async def setup_icb(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    key: dict[str, str],
    *,
    ics_code: str = ICB_A,
    lad: str = LAD_A1,
) -> list[str]:
    roles = [
        (await make_role(sessionmaker, "proj-care-worker")).code,
        (
            await make_role(sessionmaker, "proj-nurse", default_demand_driver="population_65_plus")
        ).code,
    ]
    for index in range(2):
        org = await make_organisation(sessionmaker, home_lad_code=lad, ics_code=ics_code)
        body = {
            "as_at": AS_AT,
            "lines": [line(roles[0], fte_in_post=30.0 + index), line(roles[1], vacant_fte=2)],
        }
        response = await client.post(f"/v1/organisations/{org.id}/returns", json=body, headers=key)
        assert response.status_code == 201, response.text
    return roles


async def run_projection(
    client: httpx.AsyncClient, app: FastAPI, key: dict[str, str], **body: Any
) -> dict[str, Any]:
    response = await client.post("/v1/projections", json=body, headers=key)
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    await app.state.sender.join()
    status = await client.get(location, headers=key)
    assert status.status_code == 200
    data: dict[str, Any] = status.json()
    return data
