"""Projection runs end to end in-process: request, job, results, explanation, latest (ETag),
the hand-checkable demand of a tiny geography, England as the sum of its ICBs, idempotent
writes, bad input and access."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.domain.reference.loader import ReferenceLoadSummary
from services.projector import pipeline
from shared.db.session import transaction
from shared.models import (
    OutboxMessage,
    Population,
    ProjectionRun,
    ProjectionSeries,
    RunStatus,
)
from shared.repositories import projections as projections_repo
from tests.api.projections.helpers import AS_AT, line, run_projection, setup_icb
from tests.factories import ICB_A, ICB_B, LAD_A1, LAD_B1, make_organisation
from tests.helpers import KeyFactory, assert_problem

ENGLAND = "E92000001"


async def _pop65(
    sessionmaker: async_sessionmaker[AsyncSession], dataset_id: uuid.UUID, lad: str
) -> dict[int, float]:
    bands = ("65-69", "70-74", "75-79", "80-84", "85-89", "90+")
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Population.year, func.sum(Population.persons))
            .where(
                Population.dataset_id == dataset_id,
                Population.area_code == lad,
                Population.age_band.in_(bands),
            )
            .group_by(Population.year)
        )
        return {int(year): float(total) for year, total in rows.all()}


async def test_icb_run_end_to_end_demand_follows_population_65_plus(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
) -> None:
    sessionmaker = app.state.sessionmaker
    admin = await make_key("admin")
    roles = await setup_icb(client, sessionmaker, admin)
    run = await run_projection(client, app, admin, scope=ICB_A, horizon=5, iterations=20, seed=3)
    assert run["status"] == "succeeded", run
    assert run["attempts"] == 1
    assert run["progress"] == 1.0
    assert run["base_year"] == 2025
    assert run["scenario"] == "baseline"
    assert len(run["fingerprint"]) == 64
    assert "fingerprint_parts" not in run
    fingerprint = await client.get(run["links"]["fingerprint"], headers=admin)
    assert fingerprint.status_code == 200
    assert len(fingerprint.json()["parts"]["returns"]) == 2

    pop = await _pop65(sessionmaker, reference.dataset_id, LAD_A1)
    results = await client.get(
        f"/v1/projections/{run['id']}/results",
        params={"area": ICB_A, "role": roles[0], "measure": "demand_fte", "limit": 500},
        headers=admin,
    )
    assert results.status_code == 200
    items = results.json()["items"]
    assert [item["year"] for item in items] == list(range(2025, 2031))
    base = (30.0 + 4) + (31.0 + 4)
    for item in items:
        expected = base * pop[item["year"]] / pop[2025]
        # FTE rounded to 2 decimals.
        assert abs(item["principal"] - expected) <= 0.005 + 1e-9 * expected
        assert item["principal"] == round(item["principal"], 2)
        assert item["p10"] <= item["p50"] <= item["p90"]

    csv_response = await client.get(
        f"/v1/projections/{run['id']}/results", params={"format": "csv"}, headers=admin
    )
    assert csv_response.status_code == 200
    assert csv_response.text.startswith(
        "area_code,role_code,role_name,sector,measure,year,principal"
    )

    explain = await client.get(f"/v1/projections/{run['id']}/explain", headers=admin)
    assert explain.status_code == 200
    body = explain.json()
    assert body["area_code"] == ICB_A
    assert body["role_code"] == "all"
    assert abs(sum(body["contributions_fte"].values()) - body["total_change_fte"]) < 1e-6

    latest = await client.get(f"/v1/areas/{ICB_A}/projections/latest", headers=admin)
    assert latest.status_code == 200
    assert latest.json()["run"]["id"] == run["id"]
    etag = latest.headers["etag"]
    cached = await client.get(
        f"/v1/areas/{ICB_A}/projections/latest", headers={**admin, "If-None-Match": etag}
    )
    assert cached.status_code == 304

    listing = await client.get("/v1/projections", params={"scope": ICB_A}, headers=admin)
    assert listing.json()["total"] == 1

    # Running the job again leaves exactly the same rows.
    async with sessionmaker() as session:
        before = (
            await session.execute(select(func.count()).select_from(ProjectionSeries))
        ).scalar_one()
        await session.execute(
            ProjectionRun.__table__.update().values(status="running")  # type: ignore[attr-defined]
        )
        await session.commit()
    env = pipeline.JobEnv(sessionmaker=sessionmaker, settings=app.state.settings)
    assert await pipeline.run_projection(env, run_id=uuid.UUID(run["id"]), attempt=1) == (
        "succeeded"
    )
    async with sessionmaker() as session:
        after = (
            await session.execute(select(func.count()).select_from(ProjectionSeries))
        ).scalar_one()
    assert after == before > 0


async def test_england_is_the_sum_of_its_icbs(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
) -> None:
    sessionmaker = app.state.sessionmaker
    admin = await make_key("admin")
    await setup_icb(client, sessionmaker, admin)
    await setup_icb(client, sessionmaker, admin, ics_code=ICB_B, lad=LAD_B1)
    run = await run_projection(client, app, admin, scope=ENGLAND, horizon=4, iterations=10)
    assert run["status"] == "succeeded", run

    async def principal(area: str) -> dict[tuple[str, str, int], float]:
        response = await client.get(
            f"/v1/projections/{run['id']}/results",
            params={"area": area, "limit": 500},
            headers=admin,
        )
        return {
            (i["role_code"], i["measure"], i["year"]): i["principal"]
            for i in response.json()["items"]
        }

    england, a, b = await principal(ENGLAND), await principal(ICB_A), await principal(ICB_B)
    assert england
    assert set(england) == set(a) == set(b)
    for key, value in england.items():
        # Each figure is rounded to 2 decimals on its own.
        assert abs(value - (a[key] + b[key])) <= 0.0100001

    # An ICS-bound key sees the England run, but only its own areas' rows.
    bound = await make_key("read", ics_code=ICB_A)
    assert (await client.get(f"/v1/projections/{run['id']}", headers=bound)).status_code == 200
    own = await client.get(f"/v1/projections/{run['id']}/results", headers=bound)
    assert {item["area_code"] for item in own.json()["items"]} <= {ICB_A, LAD_A1, "E08000012"}
    other = await client.get(
        f"/v1/projections/{run['id']}/results", params={"area": ICB_B}, headers=bound
    )
    assert other.json()["total"] == 0


async def test_bad_requests_store_nothing_and_access_is_bound(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
) -> None:
    sessionmaker = app.state.sessionmaker
    admin = await make_key("admin")
    await setup_icb(client, sessionmaker, admin)
    cases = [
        ({"scope": ICB_A, "scenario": "nope"}, "unknown_scenario"),
        ({"scope": LAD_A1}, "invalid_scope"),
        ({"scope": "E54999999"}, "invalid_scope"),
        ({"scope": ICB_A, "horizon": 25}, "horizon_beyond_population"),
        ({"scope": ICB_A, "base_year": 2000}, "base_year_out_of_range"),
        ({"scope": ICB_A, "base_year": 2100}, "base_year_out_of_range"),
        ({"scope": ICB_A, "iterations": 1001}, "validation_failed"),
        ({"scope": ICB_A, "horizon": 0}, "validation_failed"),
        ({"scope": ICB_B}, "no_returns"),
        ({"scope": ICB_A, "colour": "red"}, "validation_failed"),
    ]
    for body, code in cases:
        assert_problem(await client.post("/v1/projections", json=body, headers=admin), 422, code)
    async with sessionmaker() as session:
        runs = (await session.execute(select(func.count()).select_from(ProjectionRun))).scalar_one()
        jobs = (
            await session.execute(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.job_name == "run_projection")
            )
        ).scalar_one()
    assert runs == 0
    assert jobs == 0

    reader = await make_key("read")
    assert_problem(
        await client.post("/v1/projections", json={"scope": ICB_A}, headers=reader),
        403,
        "insufficient_scope",
    )
    other_admin = await make_key("admin", ics_code=ICB_B)
    assert_problem(
        await client.post("/v1/projections", json={"scope": ICB_A}, headers=other_admin),
        404,
        "area_not_found",
    )
    run = await run_projection(client, app, admin, scope=ICB_A, horizon=2, iterations=0)
    other = await make_key("read", ics_code=ICB_B)
    for path in ("", "/results", "/explain"):
        assert_problem(
            await client.get(f"/v1/projections/{run['id']}{path}", headers=other),
            404,
            "projection_not_found",
        )
    assert (await client.get("/v1/projections", headers=other)).json()["total"] == 0
    assert_problem(
        await client.get(f"/v1/areas/{ICB_A}/projections/latest", headers=other),
        404,
        "area_not_found",
    )
    assert_problem(
        await client.get(f"/v1/projections/{uuid.uuid4()}", headers=admin),
        404,
        "projection_not_found",
    )
    assert_problem(
        await client.get(f"/v1/areas/{ICB_B}/projections/latest", headers=admin),
        404,
        "projection_not_found",
    )
    assert_problem(
        await client.get(
            f"/v1/projections/{run['id']}/explain", params={"role": "nope"}, headers=admin
        ),
        422,
        "unknown_role",
    )


async def test_new_returns_mark_runs_stale_and_queue_one_recompute(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
) -> None:
    sessionmaker = app.state.sessionmaker
    admin = await make_key("admin")
    roles = await setup_icb(client, sessionmaker, admin)
    run = await run_projection(client, app, admin, scope=ICB_A, horizon=2, iterations=0)
    assert run["status"] == "succeeded"
    assert run["stale"] is False
    # A long delay keeps the recompute queued while the burst arrives.
    app.state.settings.recompute_delay_s = 600.0
    for _ in range(2):
        org = await make_organisation(sessionmaker, home_lad_code=LAD_A1, ics_code=ICB_A)
        body = {"as_at": AS_AT, "lines": [line(roles[0])]}
        response = await client.post(
            f"/v1/organisations/{org.id}/returns", json=body, headers=admin
        )
        assert response.status_code == 201
    status = (await client.get(f"/v1/projections/{run['id']}", headers=admin)).json()
    assert status["stale"] is True
    queued = (
        await client.get("/v1/projections", params={"status": "queued"}, headers=admin)
    ).json()
    assert queued["total"] == 1
    assert queued["items"][0]["scope"] == ICB_A


async def test_a_run_still_running_when_returns_arrive_ends_stale(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
) -> None:
    sessionmaker = app.state.sessionmaker
    admin = await make_key("admin")
    roles = await setup_icb(client, sessionmaker, admin)
    run = await run_projection(client, app, admin, scope=ICB_A, horizon=2, iterations=0)
    # As if the run had read its inputs and were still computing when the return came in.
    async with transaction(sessionmaker) as session:
        await projections_repo.update_run(
            session, run_id=uuid.UUID(run["id"]), status=RunStatus.running
        )
    org = await make_organisation(sessionmaker, home_lad_code=LAD_A1, ics_code=ICB_A)
    body = {"as_at": AS_AT, "lines": [line(roles[0])]}
    assert (
        await client.post(f"/v1/organisations/{org.id}/returns", json=body, headers=admin)
    ).status_code == 201
    status = (await client.get(f"/v1/projections/{run['id']}", headers=admin)).json()
    assert status["stale"] is True
