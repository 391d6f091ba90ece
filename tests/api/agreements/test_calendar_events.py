"""Ends the calendar brings: a deployment that reaches its end date (deployment.ended) and an
agreement in force that reaches its end date (agreement.terminated, `expired: true`) are
announced by a sweep, exactly once however many sweeps run (at once, on PostgreSQL), to the
agreement's ICS and parties only; an early end or a termination, announced when it happened,
is not announced again when the date passes. The sweep runs on the API's timer and as an arq
cron job."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook

from services.api.main import create_app
from services.domain.webhooks import calendar
from services.projector import jobs
from services.projector import worker as projector_worker
from shared.db.base import utcnow
from shared.db.session import make_engine, make_sessionmaker, transaction
from shared.models import WebhookDelivery
from shared.repositories import agreements as agreements_repo
from tests.api.agreements.conftest import NURSE, TODAY, Api, Clock
from tests.api.webhooks.receiver import Receiver, events_at, local_webhooks, subscribe
from tests.helpers import assert_problem, settings_for

END_EVENTS = ["deployment.ended", "agreement.terminated"]


@pytest.fixture
def local_receiver(app: FastAPI, receiver: Receiver) -> Iterator[Receiver]:
    with local_webhooks(app.state.settings):
        yield receiver


async def _sweep(app: FastAPI, today: date) -> dict[str, int]:
    counts = await calendar.sweep(
        app.state.sessionmaker, today=today, send_pending=app.state.relay.send
    )
    await app.state.sender.join()
    return counts


async def _listeners(api: Api, receiver: Receiver) -> dict[str, Any]:
    """The ICS, a party, a non-party of the same ICS and another ICS, each subscribed."""
    world = api.world
    subscriptions = {
        "/ics": await subscribe(api.client, world.admin_a, receiver.url("/ics"), END_EVENTS),
        "/a1": await subscribe(
            api.client, world.admin_a, receiver.url("/a1"), END_EVENTS,
            organisation_id=str(world.a1.id),
        ),
        "/a3": await subscribe(
            api.client, world.admin_a, receiver.url("/a3"), END_EVENTS,
            organisation_id=str(world.a3.id),
        ),
        "/b": await subscribe(api.client, world.admin_b, receiver.url("/b"), END_EVENTS),
    }  # fmt: skip
    return subscriptions


def _told(receiver: Receiver, path: str) -> Counter[tuple[str, str]]:
    """(type, resource id) of each event one endpoint received, as a multiset."""
    return Counter(
        (e["type"], e["data"].get("deployment_id") or e["data"]["agreement_id"])
        for e in events_at(receiver, path)
    )


async def test_a_deployment_reaching_its_end_date_is_announced_once_to_who_may_read_it(
    app: FastAPI, api: Api, local_receiver: Receiver
) -> None:
    receiver = local_receiver
    subscriptions = await _listeners(api, receiver)
    agreement_id = (await api.active())["id"]
    last_day = TODAY + timedelta(days=30)
    natural = (await api.deploy(agreement_id, end_date=last_day.isoformat())).json()
    early = (await api.deploy(agreement_id, role_code=NURSE, end_date=last_day.isoformat())).json()
    ended = await api.client.post(
        f"/v1/agreements/{agreement_id}/deployments/{early['id']}/end",
        json={"ended_on": (TODAY + timedelta(days=5)).isoformat(), "reason": "Back to base"},
        headers=api.world.admin_a,
    )
    assert ended.status_code == 200, ended.text
    await app.state.sender.join()
    early_end = Counter([("deployment.ended", early["id"])])
    assert _told(receiver, "/ics") == early_end

    # The last day is still a day of the deployment: nothing ends on it.
    assert await _sweep(app, last_day) == {"deployments_ended": 0, "agreements_expired": 0}
    # The day after, it has ended: announced once, however often the sweep runs.
    day_after = last_day + timedelta(days=1)
    assert await _sweep(app, day_after) == {"deployments_ended": 1, "agreements_expired": 0}
    assert await _sweep(app, day_after) == {"deployments_ended": 0, "agreements_expired": 0}
    assert await _sweep(app, day_after + timedelta(days=7)) == {
        "deployments_ended": 0,
        "agreements_expired": 0,
    }

    expected = early_end + Counter([("deployment.ended", natural["id"])])
    assert _told(receiver, "/ics") == expected
    assert _told(receiver, "/a1") == expected
    assert receiver.at("/a3") == []  # not a party
    assert receiver.at("/b") == []  # another ICS
    swept = next(
        e["data"]
        for e in events_at(receiver, "/ics")
        if e["data"]["deployment_id"] == natural["id"]
    )
    assert swept["status"] == "ended"
    assert swept["ended_early_on"] is None
    assert swept["end_reason"] is None
    assert swept["end_date"] == swept["effective_end_date"] == last_day.isoformat()
    for path in ("/ics", "/a1"):
        for request in receiver.at(path):
            Webhook(subscriptions[path]["secret"]).verify(request.body, request.headers)

    # It reads as ended, and cannot be ended (and announced) a second time.
    again = await api.client.post(
        f"/v1/agreements/{agreement_id}/deployments/{natural['id']}/end",
        json={"ended_on": (TODAY + timedelta(days=20)).isoformat(), "reason": "Too late"},
        headers=api.world.admin_a,
    )
    assert_problem(again, 409, "deployment_already_ended")


async def test_an_agreement_reaching_its_end_date_is_announced_once_as_expired(
    app: FastAPI, api: Api, clock: Clock, local_receiver: Receiver
) -> None:
    receiver = local_receiver
    await _listeners(api, receiver)
    end = TODAY + timedelta(days=40)
    expiring = (await api.active(end_date=end.isoformat()))["id"]
    suspended = (await api.active(end_date=end.isoformat(), title="Suspended pact"))["id"]
    assert (await api.act(suspended, "suspend", json={"reason": "Review"})).status_code == 200
    terminated = (await api.active(end_date=end.isoformat(), title="Ended pact"))["id"]
    assert (await api.act(terminated, "terminate", json={"reason": "Done"})).status_code == 200
    # Never in force (a draft): it does not expire, it never started.
    await api.create_ok(end_date=end.isoformat(), title="Draft pact")
    await app.state.sender.join()
    before = _told(receiver, "/ics")
    assert before == Counter([("agreement.terminated", terminated)])

    day_after = end + timedelta(days=1)
    assert await _sweep(app, end) == {"deployments_ended": 0, "agreements_expired": 0}
    assert await _sweep(app, day_after) == {"deployments_ended": 0, "agreements_expired": 2}
    assert await _sweep(app, day_after) == {"deployments_ended": 0, "agreements_expired": 0}

    expected = before + Counter(
        [("agreement.terminated", expiring), ("agreement.terminated", suspended)]
    )
    assert _told(receiver, "/ics") == expected
    assert _told(receiver, "/a1") == expected
    assert receiver.at("/a3") == []
    assert receiver.at("/b") == []
    by_agreement = {e["data"]["agreement_id"]: e["data"] for e in events_at(receiver, "/ics")}
    for agreement_id in (expiring, suspended):
        assert by_agreement[agreement_id]["status"] == "expired"
        assert by_agreement[agreement_id]["expired"] is True
        assert by_agreement[agreement_id]["end_date"] == end.isoformat()
    assert by_agreement[terminated]["status"] == "terminated"
    assert by_agreement[terminated]["expired"] is False
    # What the event says is what a reader sees that day.
    clock.today = day_after
    read = await api.get(expiring)
    assert read.json()["status"] == "expired"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_concurrent_sweeps_announce_each_end_once(
    app: FastAPI,
    api: Api,
    local_receiver: Receiver,
    database_url: str,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    receiver = local_receiver
    await subscribe(api.client, api.world.admin_a, receiver.url("/ics"), END_EVENTS)
    end = TODAY + timedelta(days=30)
    agreement_id = (await api.active(end_date=end.isoformat()))["id"]
    deployed = [await _deployed(api, agreement_id, TODAY + timedelta(days=d)) for d in (3, 4)]
    day_after = end + timedelta(days=1)

    # A sweep that finds the ends another sweep holds (claimed, not committed) waits for it,
    # then finds them announced and claims nothing.
    async with transaction(sessionmaker) as holder:
        held = await agreements_repo.claim_passed_deployment_ends(
            holder, today=day_after, at=utcnow(), limit=10
        )
        assert len(held) == 2
        rival = asyncio.create_task(calendar.sweep(app.state.sessionmaker, today=day_after))
        await asyncio.sleep(0.5)
        assert not rival.done()  # blocked on the rows the holder claimed
    # The holder committed without writing events: the rival announced nothing either.
    assert await rival == {"deployments_ended": 0, "agreements_expired": 1}

    # Sweeps of two processes (two engines) racing over fresh ends: each end once in all.
    more = [await _deployed(api, agreement_id, TODAY + timedelta(days=d)) for d in (5, 6, 7)]
    engines = [make_engine(database_url) for _ in range(2)]
    try:
        results = await asyncio.gather(
            *(
                calendar.sweep(make_sessionmaker(engine), today=day_after + timedelta(days=1))
                for engine in engines
            )
        )
    finally:
        for engine in engines:
            await engine.dispose()
    assert sum(r["deployments_ended"] for r in results) == len(more)
    announced = await _announced(sessionmaker)
    assert announced == Counter([agreement_id, *(d["id"] for d in more)])
    assert not {d["id"] for d in deployed} & set(announced)


async def _deployed(api: Api, agreement_id: str, last_day: date) -> dict[str, Any]:
    """A quarter FTE (many fit under the lender's cap) from today to `last_day`."""
    response = await api.deploy(agreement_id, fte=0.25, end_date=last_day.isoformat())
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _announced(sessionmaker: async_sessionmaker[AsyncSession]) -> Counter[str]:
    """The resource of every delivery written, as a multiset."""
    async with sessionmaker() as session:
        payloads = (await session.execute(select(WebhookDelivery.payload))).scalars().all()
    return Counter(p["data"].get("deployment_id") or p["data"]["agreement_id"] for p in payloads)


async def test_the_api_timer_announces_ends_by_the_real_date(
    app: FastAPI, api: Api, clock: Clock, database_url: str, local_receiver: Receiver
) -> None:
    receiver = local_receiver
    today = calendar.today_utc()
    clock.today = today - timedelta(days=20)
    agreement_id = (
        await api.active(
            start_date=(today - timedelta(days=30)).isoformat(),
            end_date=(today + timedelta(days=300)).isoformat(),
        )
    )["id"]
    deployed = (
        await api.deploy(
            agreement_id,
            start_date=clock.today.isoformat(),
            end_date=(today - timedelta(days=1)).isoformat(),
        )
    ).json()
    await subscribe(api.client, api.world.admin_a, receiver.url("/ics"), END_EVENTS)
    timed = create_app(
        settings_for(
            database_url,
            webhook_calendar_interval_s=1,
            webhook_allow_private_addresses=True,
            webhook_allow_http=True,
        )
    )
    async with timed.router.lifespan_context(timed):
        for _ in range(100):
            if receiver.at("/ics"):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)  # another tick of the timer: still one
        await timed.state.sender.join()
    assert _told(receiver, "/ics") == Counter([("deployment.ended", deployed["id"])])


async def test_the_worker_runs_the_sweep_as_a_cron_job(
    app: FastAPI,
    api: Api,
    clock: Clock,
    local_receiver: Receiver,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    crons = {job.name: job for job in projector_worker.WorkerSettings.cron_jobs}
    job = crons["cron:announce_calendar_ends"]
    assert job.run_at_startup
    assert job.unique
    assert calendar.cron_times(app.state.settings) == ({0}, {0})  # hourly in these tests
    every = {
        interval: calendar.cron_times(
            settings_for("sqlite://", webhook_calendar_interval_s=interval)
        )
        for interval in (15, 60, 300)
    }
    assert every == {
        15: (None, {0, 15, 30, 45}),
        60: (None, {0}),
        300: (set(range(0, 60, 5)), {0}),
    }

    # A deployment made on an earlier day whose last day was yesterday (the real date).
    today = calendar.today_utc()
    clock.today = today - timedelta(days=5)
    agreement_id = (
        await api.active(
            start_date=(today - timedelta(days=10)).isoformat(),
            end_date=(today + timedelta(days=10)).isoformat(),
        )
    )["id"]
    deployed = await api.deploy(
        agreement_id,
        start_date=clock.today.isoformat(),
        end_date=(today - timedelta(days=1)).isoformat(),
    )
    assert deployed.status_code == 201, deployed.text
    await subscribe(api.client, api.world.admin_a, local_receiver.url("/ics"), ["deployment.ended"])
    ctx: Any = {"sessionmaker": sessionmaker, "settings": app.state.settings}
    assert await jobs.announce_calendar_ends(ctx) == {
        "deployments_ended": 1,
        "agreements_expired": 0,
    }
    assert await jobs.announce_calendar_ends(ctx) == {
        "deployments_ended": 0,
        "agreements_expired": 0,
    }
    assert await _announced(sessionmaker) == Counter([deployed.json()["id"]])
