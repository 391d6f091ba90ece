"""A run is stale as soon as any input it used changes, at ICB and England scope: returns,
a new scenario version, the population (and prevalence) data, a role's demand driver; "latest"
says so with the fresh run on its way; and the automatic recompute on the demo data (returns at
the last two 31 Marches, then a new one) succeeds through the request path.

Sharing agreements are covered in tests/api/agreements/test_stale_runs.py.
"""

from __future__ import annotations

import logging
import uuid
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.domain.demo import DEMO_ICB, demo_dates, load_demo
from services.domain.projections import runs as projection_runs
from services.domain.reference.loader import ReferenceLoadSummary, load_reference
from shared.db.base import utcnow
from shared.db.session import transaction
from shared.models import (
    Organisation,
    PopulationDataset,
    PrevalenceRate,
    ProjectionExplain,
    ProjectionRun,
    RunStatus,
    Scenario,
)
from shared.reference import files as reference_files
from tests.api.projections.helpers import AS_AT, line
from tests.api.projections.helpers import run_projection as _run
from tests.api.projections.helpers import setup_icb as _setup_icb
from tests.factories import (
    ENGLAND,
    ICB_A,
    ICB_B,
    LAD_A1,
    LAD_B1,
    ensure_small_geography,
    make_organisation,
    make_role,
)
from tests.helpers import KeyFactory


async def finished_run(
    sessionmaker: async_sessionmaker[AsyncSession],
    scope: str,
    *,
    scenario: Scenario | None = None,
    roles: tuple[str, ...] = (),
    status: RunStatus = RunStatus.succeeded,
) -> uuid.UUID:
    """A run row as a worker leaves it (with an explanation row per role it projected)."""
    await ensure_small_geography(sessionmaker)
    async with transaction(sessionmaker) as session:
        chosen = scenario or await projection_runs.baseline(session)
        run = ProjectionRun(
            scenario_id=chosen.id,
            scenario_name=chosen.name,
            scenario_version=chosen.version,
            scope=scope,
            ics_code=None if scope == ENGLAND else scope,
            base_year=2025,
            horizon=5,
            iterations=10,
            seed=1,
            status=status,
            queued_at=utcnow(),
            started_at=utcnow(),
            finished_at=utcnow() if status == RunStatus.succeeded else None,
        )
        session.add(run)
        await session.flush()
        for role in roles:
            session.add(
                ProjectionExplain(
                    run_id=run.id,
                    area_code=scope,
                    role_code=role,
                    contributions={},
                    total_change=0.0,
                )
            )
        return run.id


async def stale_of(
    sessionmaker: async_sessionmaker[AsyncSession], *run_ids: uuid.UUID
) -> list[bool]:
    async with sessionmaker() as session:
        found = dict(
            (
                await session.execute(
                    select(ProjectionRun.id, ProjectionRun.stale).where(
                        ProjectionRun.id.in_(run_ids)
                    )
                )
            ).all()
        )
    return [bool(found[run_id]) for run_id in run_ids]


def no_recompute(app: FastAPI) -> None:
    app.state.settings.auto_recompute = False


async def test_a_return_marks_its_icbs_and_englands_runs_stale(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    sessionmaker = app.state.sessionmaker
    no_recompute(app)
    admin = await make_key("admin")
    icb_a = await finished_run(sessionmaker, ICB_A)
    icb_b = await finished_run(sessionmaker, ICB_B)
    england = await finished_run(sessionmaker, ENGLAND)
    running_b = await finished_run(sessionmaker, ICB_B, status=RunStatus.running)
    await _setup_icb(client, sessionmaker, admin, ics_code=ICB_B, lad=LAD_B1)
    assert await stale_of(sessionmaker, icb_a, icb_b, england, running_b) == [
        False,
        True,
        True,
        True,
    ]
    await _setup_icb(client, sessionmaker, admin)
    assert await stale_of(sessionmaker, icb_a) == [True]


async def test_a_new_scenario_version_marks_its_runs_stale(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyFactory, seeded_roles: list[str]
) -> None:
    sessionmaker = app.state.sessionmaker
    no_recompute(app)
    admin = await make_key("admin")
    body = {
        "name": "more-productive",
        "title": "More productive",
        "parameters": {"productivity_growth_per_year": {"default": 0.01, "by_role": {}}},
        "rationale": {
            "productivity_growth_per_year": {"rationale": "Digital records", "source": "Plan"}
        },
    }
    created = await client.post("/v1/scenarios", json=body, headers=admin)
    assert created.status_code == 201, created.text
    async with sessionmaker() as session:
        scenario = (
            await session.execute(select(Scenario).where(Scenario.name == "more-productive"))
        ).scalar_one()
    icb_run = await finished_run(sessionmaker, ICB_A, scenario=scenario)
    england_run = await finished_run(sessionmaker, ENGLAND, scenario=scenario)
    baseline_run = await finished_run(sessionmaker, ICB_A)
    current = await client.get("/v1/scenarios/more-productive", headers=admin)
    changed = await client.put(
        "/v1/scenarios/more-productive",
        json={"parameters": {"productivity_growth_per_year": {"default": 0.02, "by_role": {}}}},
        headers={**admin, "If-Match": current.headers["etag"]},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    assert await stale_of(sessionmaker, icb_run, england_run, baseline_run) == [True, True, False]
    # A run of the new version is current.
    async with sessionmaker() as session:
        scenario = (
            await session.execute(select(Scenario).where(Scenario.name == "more-productive"))
        ).scalar_one()
    fresh = await finished_run(sessionmaker, ICB_A, scenario=scenario)
    assert await stale_of(sessionmaker, fresh) == [False]


async def test_a_roles_driver_change_marks_the_runs_that_projected_it(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    sessionmaker = app.state.sessionmaker
    no_recompute(app)
    admin = await make_key("admin")
    nurse = (await make_role(sessionmaker, "stale-nurse")).code
    other = (await make_role(sessionmaker, "stale-coach")).code
    icb_run = await finished_run(sessionmaker, ICB_A, roles=(nurse, other))
    england_run = await finished_run(sessionmaker, ENGLAND, roles=(nurse,))
    without = await finished_run(sessionmaker, ICB_B, roles=(other,))
    running = await finished_run(sessionmaker, ICB_B, status=RunStatus.running)
    # Another field of the role is not an input of the runs.
    renamed = await client.patch(f"/v1/roles/{nurse}", json={"name": "Staff nurse"}, headers=admin)
    assert renamed.status_code == 200, renamed.text
    assert await stale_of(sessionmaker, icb_run, england_run, without, running) == [False] * 4
    changed = await client.patch(
        f"/v1/roles/{nurse}", json={"default_demand_driver": "population_all"}, headers=admin
    )
    assert changed.status_code == 200, changed.text
    assert await stale_of(sessionmaker, icb_run, england_run, without, running) == [
        True,
        True,
        False,
        True,
    ]


async def test_reloaded_population_data_mark_every_run_stale(
    app: FastAPI, reference: ReferenceLoadSummary
) -> None:
    sessionmaker = app.state.sessionmaker
    no_recompute(app)
    icb_run = await finished_run(sessionmaker, ICB_A)
    england_run = await finished_run(sessionmaker, ENGLAND)
    # Already up to date: loading again changes nothing, and nothing is stale.
    await load_reference(sessionmaker, actor="test")
    assert await stale_of(sessionmaker, icb_run, england_run) == [False, False]
    # A prevalence rate the bundled data disagree with: the load corrects it.
    async with transaction(sessionmaker) as session:
        rate = (await session.execute(select(PrevalenceRate).limit(1))).scalar_one()
        await session.execute(
            update(PrevalenceRate)
            .where(
                PrevalenceRate.measure == rate.measure,
                PrevalenceRate.age_band == rate.age_band,
                PrevalenceRate.sex == rate.sex,
            )
            .values(rate=PrevalenceRate.rate + 0.01)
        )
    summary = await load_reference(sessionmaker, actor="test")
    assert summary.prevalence_rates_written == 1
    assert await stale_of(sessionmaker, icb_run, england_run) == [True, True]


async def test_latest_says_stale_and_names_the_fresh_run_on_its_way(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
) -> None:
    sessionmaker = app.state.sessionmaker
    app.state.latest_cache.ttl_s = 0.0  # answer from the database at once
    admin = await make_key("admin")
    roles = await _setup_icb(client, sessionmaker, admin)
    icb_run = await _run(client, app, admin, scope=ICB_A, horizon=2, iterations=0)
    england_run = await _run(client, app, admin, scope=ENGLAND, horizon=2, iterations=0)
    assert icb_run["status"] == england_run["status"] == "succeeded"
    for area in (LAD_A1, ENGLAND):
        latest = await client.get(f"/v1/areas/{area}/projections/latest", headers=admin)
        assert latest.json()["stale"] is False
        assert latest.json()["refresh"] is None
    before = latest.headers["etag"]
    # The recompute waits long enough to be seen queued.
    app.state.settings.recompute_delay_s = 600.0
    org = await make_organisation(sessionmaker, home_lad_code=LAD_A1, ics_code=ICB_A)
    response = await client.post(
        f"/v1/organisations/{org.id}/returns",
        json={"as_at": AS_AT, "lines": [line(roles[0])]},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    queued = (
        await client.get("/v1/projections", params={"status": "queued"}, headers=admin)
    ).json()
    by_scope = {item["scope"]: item for item in queued["items"]}
    assert set(by_scope) == {ICB_A, ENGLAND}
    for item in by_scope.values():
        assert item["iterations"] == 0
        assert item["horizon"] == 2043 - 2025  # clamped to the population data
    england = await client.get(f"/v1/areas/{ENGLAND}/projections/latest", headers=admin)
    body = england.json()
    assert body["stale"] is True
    assert body["run"]["id"] == england_run["id"]
    assert body["refresh"]["run_id"] == by_scope[ENGLAND]["id"]
    assert body["refresh"]["status"] == "queued"
    assert england.headers["etag"] != before
    lad = (await client.get(f"/v1/areas/{LAD_A1}/projections/latest", headers=admin)).json()
    assert lad["stale"] is True
    assert lad["refresh"]["run_id"] in {by_scope[ICB_A]["id"], by_scope[ENGLAND]["id"]}
    # A second return in the burst shares the queued runs.
    again = await client.post(
        f"/v1/organisations/{org.id}/returns",
        json={"as_at": AS_AT, "lines": [line(roles[0], fte_in_post=31.0)]},
        headers=admin,
    )
    assert again.status_code == 201, again.text
    queued_again = await client.get("/v1/projections", params={"status": "queued"}, headers=admin)
    assert queued_again.json()["total"] == 2


async def test_the_automatic_recompute_on_the_demo_data_succeeds(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
    seeded_roles: list[str],
) -> None:
    """The demo: returns at the last two 31 Marches. A baseline run of the ICB and of England
    (horizon to the end of the population data), then a new return: the automatic runs, which
    ask for the default horizon through the request path, succeed."""
    sessionmaker = app.state.sessionmaker
    admin = await make_key("admin")
    async with transaction(sessionmaker) as session:
        await load_demo(session, ics_code=DEMO_ICB)
    latest_date = demo_dates(date.today())[1]
    first = await _run(client, app, admin, scope=DEMO_ICB, iterations=5)
    england = await _run(client, app, admin, scope=ENGLAND, iterations=5)
    assert first["status"] == england["status"] == "succeeded", (first, england)
    assert first["base_year"] == latest_date.year
    assert first["base_year"] + first["horizon"] == reference_last_year(reference)

    app.state.settings.recompute_delay_s = 0.0
    async with sessionmaker() as session:
        organisation = (
            await session.execute(
                select(Organisation).where(Organisation.ics_code == DEMO_ICB).limit(1)
            )
        ).scalar_one()
    response = await client.post(
        f"/v1/organisations/{organisation.id}/returns",
        json={"as_at": latest_date.isoformat(), "lines": [demo_line()]},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    await app.state.sender.join(timeout_s=120)
    runs = (await client.get("/v1/projections", params={"limit": 10}, headers=admin)).json()
    automatic = [item for item in runs["items"] if item["id"] not in (first["id"], england["id"])]
    assert sorted(item["scope"] for item in automatic) == sorted([DEMO_ICB, ENGLAND])
    for item in automatic:
        assert item["status"] == "succeeded", item
        assert item["stale"] is False
        assert item["iterations"] == 5
        assert item["horizon"] == first["horizon"]
    for old in (first, england):
        status = (await client.get(f"/v1/projections/{old['id']}", headers=admin)).json()
        assert status["stale"] is True
    latest = (await client.get(f"/v1/areas/{DEMO_ICB}/projections/latest", headers=admin)).json()
    assert latest["stale"] is False
    assert latest["run"]["id"] in {item["id"] for item in automatic}


async def test_a_recompute_a_request_would_refuse_is_skipped_and_the_change_stands(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With the population data gone, a new return still lands and marks the ICB's run stale;
    the automatic run is refused as a request would be (no_population), logged at WARNING,
    and nothing is queued."""
    sessionmaker = app.state.sessionmaker
    app.state.latest_cache.ttl_s = 0.0
    admin = await make_key("admin")
    roles = await _setup_icb(client, sessionmaker, admin)
    icb_run = await _run(client, app, admin, scope=ICB_A, horizon=2, iterations=0)
    assert icb_run["status"] == "succeeded"
    renamed = f"gone-{uuid.uuid4().hex[:8]}"
    await _rename_dataset(sessionmaker, reference_files.BUNDLED_DATASET_NAME, renamed)
    try:
        org = await make_organisation(sessionmaker, home_lad_code=LAD_A1, ics_code=ICB_A)
        with caplog.at_level(logging.WARNING, logger="oneworkforce"):
            response = await client.post(
                f"/v1/organisations/{org.id}/returns",
                json={"as_at": AS_AT, "lines": [line(roles[0])]},
                headers=admin,
            )
        assert response.status_code == 201, response.text
        refused = [r for r in caplog.records if r.getMessage() == "automatic recompute refused"]
        assert {getattr(r, "code", None) for r in refused} == {"no_population"}
        assert {getattr(r, "scope", None) for r in refused} >= {ICB_A}
        queued = await client.get("/v1/projections", params={"status": "queued"}, headers=admin)
        assert queued.json()["total"] == 0
        latest = (await client.get(f"/v1/areas/{ICB_A}/projections/latest", headers=admin)).json()
        assert latest["run"]["id"] == icb_run["id"]
        assert latest["stale"] is True
        assert latest["refresh"] is None
    finally:
        await _rename_dataset(sessionmaker, renamed, reference_files.BUNDLED_DATASET_NAME)


async def _rename_dataset(
    sessionmaker: async_sessionmaker[AsyncSession], old: str, new: str
) -> None:
    async with transaction(sessionmaker) as session:
        await session.execute(
            update(PopulationDataset).where(PopulationDataset.name == old).values(name=new)
        )


def reference_last_year(reference: ReferenceLoadSummary) -> int:
    del reference
    return 2043  # the ONS 2018-based projections end in 2043


def demo_line() -> dict[str, Any]:
    return {
        "role_code": "care-worker", "headcount": 40, "fte_in_post": 32.5, "vacant_fte": 4,
        "starters_12m": 10, "leavers_12m": 8, "leavers_to_health_care_12m": 2,
        "sickness_days_12m": 310, "agency_fte": 1.5, "bank_fte": 2, "age_under_25": 6,
        "age_25_34": 9, "age_35_44": 8, "age_45_54": 9, "age_55_64": 6, "age_65_plus": 2,
    }  # fmt: skip
