"""Every change that causes an event announces it, to those who may read it only:

- a bulk import announces each return it stored (return.accepted) and each it replaced
  (return.superseded), exactly as a single submission does, written in bulk;
- a run goes stale (projection.stale) whatever input changed (returns, a scenario version, a
  role's driver, the population data) and at ICB and England scope, and a run that went stale
  while it was running says so as soon as it has succeeded.

Agreement and deployment events are in tests/api/agreements/test_webhook_events.py.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook

from services.domain.reference.loader import ReferenceLoadSummary, load_reference
from services.projector import pipeline
from shared.db.session import transaction
from shared.models import PrevalenceRate, RunStatus, Scenario, WebhookDelivery, WorkforceReturn
from tests.api.projections.helpers import AS_AT, setup_icb
from tests.api.projections.helpers import line as projection_line
from tests.api.projections.test_staleness import finished_run, no_recompute, stale_of
from tests.api.returns.helpers import line
from tests.api.returns.test_imports import bulk_csv
from tests.api.webhooks.receiver import Receiver, events_at, subscribe
from tests.factories import (
    ENGLAND,
    ICB_A,
    ICB_B,
    LAD_B1,
    ensure_small_geography,
    make_organisation,
    make_role,
)
from tests.helpers import KeyFactory

RETURN_EVENTS = ["return.accepted", "return.superseded"]


async def _import(
    app: FastAPI, client: httpx.AsyncClient, body: bytes, key: dict[str, str]
) -> dict[str, Any]:
    accepted = await client.post(
        "/v1/imports/returns", content=body, headers={**key, "Content-Type": "text/csv"}
    )
    assert accepted.status_code == 202, accepted.text
    await app.state.sender.join()
    result: dict[str, Any] = (await client.get(accepted.headers["location"], headers=key)).json()
    assert result["status"] == "succeeded", result
    return result


async def _current_returns(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> dict[tuple[uuid.UUID, int], uuid.UUID]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(WorkforceReturn.organisation_id, WorkforceReturn.version, WorkforceReturn.id)
        )
        return {(org, version): return_id for org, version, return_id in rows.all()}


def _summary(events: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    """(type, organisation, return) of each return event, as a multiset."""
    return Counter(
        (e["type"], e["data"]["organisation_id"], e["data"]["return_id"])
        for e in events
        if e["type"].startswith("return.")
    )


async def test_a_bulk_import_announces_each_return_to_its_ics_and_organisation_only(
    hook_app: FastAPI,
    hook_client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    receiver: Receiver,
) -> None:
    await ensure_small_geography(sessionmaker)
    for code in ("care-worker", "registered-nurse"):
        await make_role(sessionmaker, code)
    a1 = await make_organisation(sessionmaker, ods_code="RA1")
    a2 = await make_organisation(sessionmaker, ods_code="RA2")
    b1 = await make_organisation(sessionmaker, ods_code="RB1", home_lad_code=LAD_B1, ics_code=ICB_B)
    admin_a = await make_key("admin", ics_code=ICB_A)
    admin_b = await make_key("admin", ics_code=ICB_B)
    ics_a = await subscribe(hook_client, admin_a, receiver.url("/a"), RETURN_EVENTS)
    org_a1 = await subscribe(
        hook_client, admin_a, receiver.url("/a1"), RETURN_EVENTS, organisation_id=str(a1.id)
    )
    await subscribe(hook_client, admin_b, receiver.url("/b"), RETURN_EVENTS)
    # A subscription that wants other events hears nothing of returns.
    await subscribe(hook_client, admin_a, receiver.url("/runs"), ["projection.succeeded"])
    importer = await make_key("admin")  # a global key imports for both ICSs

    first = [
        ("RA1", AS_AT, line()),
        ("RA1", AS_AT, line("registered-nurse")),
        ("RA2", AS_AT, line()),
        ("RB1", AS_AT, line()),
    ]
    await _import(hook_app, hook_client, bulk_csv(first), importer)
    await _import(hook_app, hook_client, bulk_csv(first[:1]), importer)  # RA1 again: v2
    await hook_app.state.sender.join()
    stored = await _current_returns(sessionmaker)
    assert len(stored) == 4

    def accepted(org: uuid.UUID, version: int) -> tuple[str, str, str]:
        return ("return.accepted", str(org), str(stored[(org, version)]))

    superseded = ("return.superseded", str(a1.id), str(stored[(a1.id, 1)]))
    assert _summary(events_at(receiver, "/a")) == Counter(
        [accepted(a1.id, 1), accepted(a2.id, 1), accepted(a1.id, 2), superseded]
    )
    assert _summary(events_at(receiver, "/a1")) == Counter(
        [accepted(a1.id, 1), accepted(a1.id, 2), superseded]
    )
    # Another ICS's subscription hears of its own organisation's return and of nothing else.
    assert _summary(events_at(receiver, "/b")) == Counter([accepted(b1.id, 1)])
    assert receiver.at("/runs") == []

    # The events say what a single submission's say, signed as every delivery is.
    replaced = next(e for e in events_at(receiver, "/a1") if e["type"] == "return.superseded")
    assert replaced["data"] == {
        "return_id": str(stored[(a1.id, 1)]),
        "version": 1,
        "superseded_by": str(stored[(a1.id, 2)]),
        "organisation_id": str(a1.id),
        "as_at": AS_AT,
        "links": {"diff": f"/v1/returns/{stored[(a1.id, 2)]}/diff"},
    }
    for request in receiver.at("/a1"):
        Webhook(org_a1["secret"]).verify(request.body, request.headers)
    posted = await hook_client.post(
        f"/v1/organisations/{a2.id}/returns",
        json={"as_at": AS_AT, "lines": [line(headcount=41, age_under_25=7)]},
        headers=admin_a,
    )
    assert posted.status_code == 201, posted.text
    await hook_app.state.sender.join()
    single = [e for e in events_at(receiver, "/a") if e["data"]["organisation_id"] == str(a2.id)]
    assert sorted(e["type"] for e in single) == [*["return.accepted"] * 2, "return.superseded"]
    assert {frozenset(e["data"]) for e in single if e["type"] == "return.accepted"} == {
        frozenset({"return_id", "version", "organisation_id", "as_at", "links"})
    }
    assert ics_a["id"] != org_a1["id"]


async def test_an_imports_return_events_are_written_in_bulk(
    hook_app: FastAPI,
    hook_client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    receiver: Receiver,
) -> None:
    """The number of statements that write deliveries does not grow with the returns."""
    await ensure_small_geography(sessionmaker)
    await make_role(sessionmaker, "care-worker")
    count = 120
    for index in range(count):
        await make_organisation(sessionmaker, ods_code=f"RQ{index:03d}")
    admin = await make_key("admin", ics_code=ICB_A)
    await subscribe(hook_client, admin, receiver.url("/a"), ["return.accepted"])
    await subscribe(hook_client, admin, receiver.url("/a-too"), ["return.accepted"])
    inserts: list[str] = []

    def count_inserts(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO WEBHOOK_DELIVERIES"):
            inserts.append(statement)

    engine = hook_app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count_inserts)
    try:
        body = bulk_csv([(f"RQ{index:03d}", AS_AT, line()) for index in range(count)])
        result = await _import(hook_app, hook_client, body, admin)
    finally:
        event.remove(engine, "before_cursor_execute", count_inserts)
    assert result["return_count"] == count
    assert len(inserts) == 1  # 240 deliveries, one statement
    async with sessionmaker() as session:
        written = (
            await session.execute(select(func.count()).select_from(WebhookDelivery))
        ).scalar_one()
    assert written == 2 * count
    await hook_app.state.sender.join()
    assert len(receiver.at("/a")) == len(receiver.at("/a-too")) == count


async def _stale_runs_heard(receiver: Receiver, path: str) -> list[str]:
    return sorted(
        e["data"]["run_id"] for e in events_at(receiver, path) if e["type"] == "projection.stale"
    )


async def test_every_kind_of_input_change_announces_the_runs_it_made_stale(
    hook_app: FastAPI,
    hook_client: httpx.AsyncClient,
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
    receiver: Receiver,
) -> None:
    """ICB and England runs, for returns, a scenario version, a role's driver and the
    population data; an ICS hears of its own runs and England's, never another ICS's."""
    sessionmaker = hook_app.state.sessionmaker
    no_recompute(hook_app)
    admin = await make_key("admin")
    admin_a = await make_key("admin", ics_code=ICB_A)
    admin_b = await make_key("admin", ics_code=ICB_B)
    await subscribe(hook_client, admin_a, receiver.url("/a"), ["projection.stale"])
    await subscribe(hook_client, admin_b, receiver.url("/b"), ["projection.stale"])
    heard: dict[str, list[str]] = {"/a": [], "/b": []}

    async def expect(a: list[uuid.UUID], b: list[uuid.UUID]) -> None:
        await hook_app.state.sender.join()
        heard["/a"] += [str(run_id) for run_id in a]
        heard["/b"] += [str(run_id) for run_id in b]
        for path in heard:
            assert await _stale_runs_heard(receiver, path) == sorted(heard[path]), path

    # Returns in ICS B: B's run and England's.
    role = (await make_role(sessionmaker, "stale-care-worker")).code
    icb_a, icb_b, england = [
        await finished_run(sessionmaker, scope, roles=(role,)) for scope in (ICB_A, ICB_B, ENGLAND)
    ]
    org_b = await make_organisation(sessionmaker, home_lad_code=LAD_B1, ics_code=ICB_B)
    posted = await hook_client.post(
        f"/v1/organisations/{org_b.id}/returns",
        json={"as_at": AS_AT, "lines": [projection_line(role)]},
        headers=admin,
    )
    assert posted.status_code == 201, posted.text
    assert await stale_of(sessionmaker, icb_a, icb_b, england) == [False, True, True]
    await expect([england], [icb_b, england])

    # The role's demand driver: A's run (B's and England's are stale already).
    changed = await hook_client.patch(
        f"/v1/roles/{role}", json={"default_demand_driver": "population_all"}, headers=admin
    )
    assert changed.status_code == 200, changed.text
    await expect([icb_a], [])

    # A new version of a scenario: the runs of its earlier versions.
    body = {
        "name": "stale-scenario",
        "title": "Stale scenario",
        "parameters": {"productivity_growth_per_year": {"default": 0.01, "by_role": {}}},
        "rationale": {
            "productivity_growth_per_year": {"rationale": "Digital records", "source": "Plan"}
        },
    }
    created = await hook_client.post("/v1/scenarios", json=body, headers=admin)
    assert created.status_code == 201, created.text
    async with sessionmaker() as session:
        scenario = (
            await session.execute(select(Scenario).where(Scenario.name == "stale-scenario"))
        ).scalar_one()
    scenario_runs = [
        await finished_run(sessionmaker, scope, scenario=scenario) for scope in (ICB_B, ENGLAND)
    ]
    untouched = await finished_run(sessionmaker, ICB_A)
    changed = await hook_client.put(
        "/v1/scenarios/stale-scenario",
        json={"parameters": {"productivity_growth_per_year": {"default": 0.02, "by_role": {}}}},
        headers={**admin, "If-Match": created.headers["etag"]},
    )
    assert changed.status_code == 200, changed.text
    await expect([scenario_runs[1]], scenario_runs)

    # The population data (a corrected prevalence rate): every run not yet stale.
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
    await hook_app.state.relay.send(older_than_s=0)  # a CLI load leaves them to the relay
    await expect([untouched], [])


async def test_a_run_that_went_stale_while_running_says_so_when_it_succeeds(
    hook_app: FastAPI,
    hook_client: httpx.AsyncClient,
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
    receiver: Receiver,
) -> None:
    sessionmaker = hook_app.state.sessionmaker
    no_recompute(hook_app)
    admin_a = await make_key("admin", ics_code=ICB_A)
    hook = await subscribe(
        hook_client, admin_a, receiver.url("/a"), ["projection.succeeded", "projection.stale"]
    )
    roles = await setup_icb(hook_client, sessionmaker, admin_a)
    # A worker took the run (running), then a return changed its inputs before it finished.
    run_id = await finished_run(sessionmaker, ICB_A, status=RunStatus.running)
    org = await make_organisation(sessionmaker)
    posted = await hook_client.post(
        f"/v1/organisations/{org.id}/returns",
        json={"as_at": AS_AT, "lines": [projection_line(roles[0])]},
        headers=admin_a,
    )
    assert posted.status_code == 201, posted.text
    await hook_app.state.sender.join()
    assert await stale_of(sessionmaker, run_id) == [True]
    assert receiver.at("/a") == []  # nobody has heard the run finish yet

    env = pipeline.JobEnv(
        sessionmaker=sessionmaker,
        settings=hook_app.state.settings,
        send_pending=hook_app.state.relay.send,
    )
    assert await pipeline.run_projection(env, run_id=run_id, attempt=1) == "succeeded"
    await hook_app.state.sender.join()
    events = events_at(receiver, "/a")
    assert sorted(e["type"] for e in events) == ["projection.stale", "projection.succeeded"]
    assert {e["data"]["run_id"] for e in events} == {str(run_id)}
    for request in receiver.at("/a"):
        Webhook(hook["secret"]).verify(request.body, request.headers)
