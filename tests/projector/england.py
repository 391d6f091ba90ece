"""An England-shaped projection for the fan-out tests: organisations with returns in several
ICBs (one part job each), and checks that a run ended with exactly one complete result set.

Needs the full reference data (every ICB, its LADs and their population).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.main import create_app
from shared.models import (
    Area,
    AreaType,
    ProjectionExplain,
    ProjectionRun,
    ProjectionRunPart,
    ProjectionSeries,
    RunStatus,
)
from shared.repositories import projections as projections_repo
from tests.factories import make_organisation, make_role
from tests.helpers import settings_for

ENGLAND = "E92000001"
AS_AT = "2025-03-31"
MEASURE_COUNT = 6


@dataclass(frozen=True)
class EnglandShape:
    icbs: list[str]
    lads: dict[str, str]  # ICB -> the LAD its organisations sit in
    roles: list[str]


def return_line(role_code: str, scale: float) -> dict[str, Any]:
    return {
        "role_code": role_code, "headcount": round(40 * scale), "fte_in_post": 32.5 * scale,
        "vacant_fte": 4, "starters_12m": 10, "leavers_12m": 8, "leavers_to_health_care_12m": 2,
        "sickness_days_12m": 310, "agency_fte": 1.5, "bank_fte": 2,
        "age_under_25": 0, "age_25_34": 0, "age_35_44": 0, "age_45_54": 0, "age_55_64": 0,
        "age_65_plus": 0,
    }  # fmt: skip


def _with_ages(line: dict[str, Any]) -> dict[str, Any]:
    # Headcount by age band must add up to headcount.
    headcount = int(line["headcount"])
    shares = (0.15, 0.25, 0.2, 0.2, 0.15)
    bands = ("age_under_25", "age_25_34", "age_35_44", "age_45_54", "age_55_64")
    given = 0
    for band, share in zip(bands, shares, strict=True):
        line[band] = int(headcount * share)
        given += line[band]
    line["age_65_plus"] = headcount - given
    return line


async def icbs_with_a_lad(
    sessionmaker: async_sessionmaker[AsyncSession], count: int
) -> dict[str, str]:
    """The first `count` ICBs (by code), each with one of its LADs."""
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(Area.parent_code, func.min(Area.code))
                .where(Area.type == AreaType.lad, Area.parent_code.like("E54%"))
                .group_by(Area.parent_code)
                .order_by(Area.parent_code)
                .limit(count)
            )
        ).all()
    found = {str(icb): str(lad) for icb, lad in rows}
    assert len(found) == count, f"the reference data have only {len(found)} ICBs with LADs"
    return found


async def setup_england(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    key: dict[str, str],
    *,
    icb_count: int,
    organisations_per_icb: int = 2,
) -> EnglandShape:
    """Organisations with a return (through the API) in `icb_count` ICBs."""
    lads = await icbs_with_a_lad(sessionmaker, icb_count)
    roles = [
        (await make_role(sessionmaker, "fan-care-worker")).code,
        (await make_role(sessionmaker, "fan-nurse", default_demand_driver="population_all")).code,
    ]
    for position, (icb, lad) in enumerate(sorted(lads.items())):
        for index in range(organisations_per_icb):
            org = await make_organisation(sessionmaker, home_lad_code=lad, ics_code=icb)
            scale = 1.0 + 0.1 * position + 0.05 * index
            body = {
                "as_at": AS_AT,
                "lines": [_with_ages(return_line(role, scale)) for role in roles],
            }
            response = await client.post(
                f"/v1/organisations/{org.id}/returns", json=body, headers=key
            )
            assert response.status_code == 201, response.text
    return EnglandShape(icbs=sorted(lads), lads=lads, roles=roles)


@asynccontextmanager
async def england_app(
    database_url: str, workers: int, **settings: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The API with its embedded projector at `workers` jobs at once, or sending to arq when
    `redis_url` is given; no automatic recompute."""
    application = create_app(
        settings_for(database_url, inprocess_workers=workers, auto_recompute=False, **settings)
    )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield application, client


async def request_england(
    client: httpx.AsyncClient,
    key: dict[str, str],
    *,
    horizon: int,
    iterations: int,
    request_id: str | None = None,
) -> uuid.UUID:
    body = {"scope": ENGLAND, "horizon": horizon, "iterations": iterations, "seed": 11}
    headers = {**key, **({"X-Request-ID": request_id} if request_id else {})}
    response = await client.post("/v1/projections", json=body, headers=headers)
    assert response.status_code == 202, response.text
    return uuid.UUID(response.json()["id"])


async def england_run(
    app: FastAPI, client: httpx.AsyncClient, key: dict[str, str], *, horizon: int, iterations: int
) -> uuid.UUID:
    """An England run on the embedded projector, to its end."""
    run_id = await request_england(client, key, horizon=horizon, iterations=iterations)
    await app.state.sender.join(timeout_s=180)
    return run_id


async def wait_until_ended(
    sessionmaker: async_sessionmaker[AsyncSession], run_id: uuid.UUID, *, timeout_s: float
) -> ProjectionRun:
    """Poll the run until it has succeeded or failed."""
    deadline = time.monotonic() + timeout_s
    while True:
        async with sessionmaker() as session:
            run = await session.get(ProjectionRun, run_id)
        assert run is not None
        if run.status in (RunStatus.succeeded, RunStatus.failed, RunStatus.cancelled):
            return run
        assert time.monotonic() < deadline, f"run still {run.status} after {timeout_s} s"
        await asyncio.sleep(0.2)


async def open_parts(sessionmaker: async_sessionmaker[AsyncSession], run_id: uuid.UUID) -> int:
    async with sessionmaker() as session:
        return int(
            (
                await session.execute(
                    select(func.count()).where(
                        ProjectionRunPart.run_id == run_id,
                        ProjectionRunPart.status.in_([RunStatus.queued, RunStatus.running]),
                    )
                )
            ).scalar_one()
        )


def expected_rows(shape: EnglandShape, horizon: int) -> int:
    """One organisation LAD per ICB: per ICB, LAD x role + LAD + ICB x role + ICB groups; and
    England x role + England."""
    roles = len(shape.roles)
    per_icb = roles + 1 + roles + 1
    groups = len(shape.icbs) * per_icb + roles + 1
    return groups * MEASURE_COUNT * (horizon + 1)


async def assert_one_complete_result_set(
    sessionmaker: async_sessionmaker[AsyncSession],
    run_id: uuid.UUID,
    *,
    expected: int,
    icbs: Sequence[str],
) -> None:
    async with sessionmaker() as session:
        run = await session.get(ProjectionRun, run_id)
        assert run is not None
        assert run.status == RunStatus.succeeded, run.error
        parts = (
            await session.execute(
                select(ProjectionRunPart.ics_code, ProjectionRunPart.status).where(
                    ProjectionRunPart.run_id == run_id
                )
            )
        ).all()
        assert sorted(code for code, _ in parts) == sorted(icbs)
        assert {status for _, status in parts} == {RunStatus.succeeded}
        rows = await projections_repo.list_results(
            session, projections_repo.ResultFilter(run_id=run_id)
        )
        total = len(rows)
        distinct_keys = len({(row[0], row[1], row[4], row[5]) for row in rows})
        areas = {row[0] for row in rows}
        explain_england = (
            await session.execute(
                select(func.count()).where(
                    ProjectionExplain.run_id == run_id, ProjectionExplain.area_code == ENGLAND
                )
            )
        ).scalar_one()
    assert total == distinct_keys == expected
    assert {ENGLAND, *icbs} <= areas
    assert explain_england > 0


async def result_numbers(
    sessionmaker: async_sessionmaker[AsyncSession], run_id: uuid.UUID
) -> dict[tuple[str, str, str, int], tuple[float, float, float, float]]:
    """Every stored figure of a run, unrounded, by (area, role, measure, year)."""
    async with sessionmaker() as session:
        series = (
            (
                await session.execute(
                    select(ProjectionSeries).where(ProjectionSeries.run_id == run_id)
                )
            )
            .scalars()
            .all()
        )
    numbers: dict[tuple[str, str, str, int], tuple[float, float, float, float]] = {}
    for item in series:
        figures = zip(item.principal, item.p10, item.p50, item.p90, strict=True)
        for t, values in enumerate(figures):
            key = (item.area_code, item.role_code, item.measure, item.first_year + t)
            numbers[key] = values
    return numbers
