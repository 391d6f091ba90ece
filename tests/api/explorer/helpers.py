"""Explorer test helpers: sign in through the real form, and two ICSs with finished runs."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import ICB_A, ICB_B, LAD_A1, LAD_B1, make_organisation, make_role
from tests.helpers import KeyFactory

AS_AT = "2025-03-31"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match is not None, "the page has no CSRF field"
    return match.group(1)


def secret_of(header: dict[str, str]) -> str:
    return header["Authorization"].removeprefix("Bearer ")


async def sign_in(client: httpx.AsyncClient, key: dict[str, str]) -> str:
    """Sign in with the form as a browser would; returns the session's CSRF token."""
    form = await client.get("/explorer/sign-in")
    assert form.status_code == 200
    response = await client.post(
        "/explorer/sign-in",
        data={"api_key": secret_of(key), "csrf_token": csrf_of(form.text), "next": "/explorer"},
    )
    assert response.status_code == 303, response.text
    home = await client.get(response.headers["location"])
    page = await client.get(home.headers["location"]) if home.status_code == 303 else home
    assert page.status_code == 200, page.text
    return csrf_of(page.text)


def line(role_code: str, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "role_code": role_code, "headcount": 40, "fte_in_post": 32.5, "vacant_fte": 4,
        "starters_12m": 10, "leavers_12m": 8, "leavers_to_health_care_12m": 2,
        "sickness_days_12m": 310, "agency_fte": 1.5, "bank_fte": 2, "age_under_25": 6,
        "age_25_34": 9, "age_35_44": 8, "age_45_54": 9, "age_55_64": 6, "age_65_plus": 2,
    }  # fmt: skip
    values.update(overrides)
    return values


@dataclass(frozen=True)
class Ics:
    code: str
    lad: str
    organisation_ids: list[uuid.UUID]
    organisation_names: list[str]
    run_id: str
    admin: dict[str, str]


async def ics_with_run(
    client: httpx.AsyncClient,
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_key: KeyFactory,
    *,
    code: str,
    lad: str,
    label: str,
) -> Ics:
    """An ICS with two organisations' returns and a succeeded baseline run."""
    admin = await make_key("admin", ics_code=code, name=f"admin-{label}")
    roles = [
        (await make_role(sessionmaker, "expl-care-worker")).code,
        (
            await make_role(
                sessionmaker,
                "expl-nurse",
                name="Nurse",
                sector="health",
                default_demand_driver="population_65_plus",
            )
        ).code,
    ]
    ids, names = [], []
    for index in range(2):
        name = f"{label} organisation {index} {uuid.uuid4().hex[:4]}"
        org = await make_organisation(sessionmaker, name=name, home_lad_code=lad, ics_code=code)
        body = {
            "as_at": AS_AT,
            "lines": [line(roles[0], fte_in_post=30.0 + index), line(roles[1], vacant_fte=2)],
        }
        response = await client.post(
            f"/v1/organisations/{org.id}/returns", json=body, headers=admin
        )
        assert response.status_code == 201, response.text
        ids.append(org.id)
        names.append(name)
    response = await client.post(
        "/v1/projections",
        json={"scope": code, "horizon": 5, "iterations": 20, "seed": 3},
        headers=admin,
    )
    assert response.status_code == 202, response.text
    await app.state.sender.join()
    run = (await client.get(response.headers["location"], headers=admin)).json()
    assert run["status"] == "succeeded", run
    return Ics(code, lad, ids, names, run["id"], admin)


async def two_ics(
    client: httpx.AsyncClient,
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_key: KeyFactory,
) -> tuple[Ics, Ics]:
    a = await ics_with_run(
        client, app, sessionmaker, make_key, code=ICB_A, lad=LAD_A1, label="Alpha"
    )
    b = await ics_with_run(
        client, app, sessionmaker, make_key, code=ICB_B, lad=LAD_B1, label="Bravo"
    )
    return a, b
