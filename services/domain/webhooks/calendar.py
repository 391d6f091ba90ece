"""Events the calendar causes: a deployment's or an agreement's end date passing.

Nothing is written on the day a date passes, so a sweep looks for ends nobody has announced
yet, on a timer in the API and in every arq worker (WEBHOOK_CALENDAR_INTERVAL_S):

- a deployment whose last day (`end_date`) was before today, not ended early: deployment.ended
  (an early end, by hand or by the agreement's termination, was announced when it happened);
- an agreement that was in force (active, suspended or awaiting signatures again) and is past
  its end date, so reads `expired`: agreement.terminated with `expired: true`.

Each end is claimed by a conditional UPDATE of its `end_announced_at` mark, and its events are
written in the same transaction, so it is announced exactly once, however many sweeps run at
once: a sweep that loses the race for a row claims nothing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.domain.webhooks import events as webhook_events
from services.domain.webhooks.events import EventType
from shared.config import Settings
from shared.db.base import utcnow
from shared.db.session import transaction
from shared.repositories import agreements as repo
from shared.repositories import outbox

log = logging.getLogger("oneworkforce.webhooks")

# Ends claimed per transaction: a backlog (after downtime) is announced in several commits.
BATCH = 500

SendPending = Callable[[list[uuid.UUID]], Awaitable[object]]


def today_utc() -> date:
    """The date by which agreements expire and deployments end (as the API's `today`)."""
    return utcnow().date()


async def _announce_batch(session: AsyncSession, *, today: date) -> tuple[int, int]:
    """Claim up to BATCH deployment ends and BATCH agreement ends; queue their events."""
    now = utcnow()
    deployment_ids = await repo.claim_passed_deployment_ends(
        session, today=today, at=now, limit=BATCH
    )
    agreement_ids = await repo.claim_passed_agreement_ends(
        session, today=today, at=now, limit=BATCH
    )
    deployments = await repo.deployments_by_id(session, deployment_ids=deployment_ids)
    agreements = await repo.agreements_with_parties(
        session, agreement_ids=[*agreement_ids, *(d.agreement_id for d in deployments)]
    )
    events = [
        webhook_events.agreement_event_of(
            EventType.deployment_ended, deployment, agreements[deployment.agreement_id]
        )
        for deployment in deployments
    ]
    events += [
        webhook_events.agreement_event_of(
            EventType.agreement_terminated,
            agreements[agreement_id],
            agreements[agreement_id],
            expired=True,
        )
        for agreement_id in agreement_ids
    ]
    await webhook_events.emit_many(session, events)
    return len(deployment_ids), len(agreement_ids)


async def sweep(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    today: date | None = None,
    send_pending: SendPending | None = None,
) -> dict[str, int]:
    """Announce every end that `today` (UTC by default) has brought and nobody announced yet;
    how many deployments ended and agreements expired this pass announced."""
    day = today or today_utc()
    counts = {"deployments_ended": 0, "agreements_expired": 0}
    pending: list[uuid.UUID] = []
    while True:
        async with transaction(sessionmaker) as session:
            ended, expired = await _announce_batch(session, today=day)
            pending += outbox.take_pending(session)
        counts["deployments_ended"] += ended
        counts["agreements_expired"] += expired
        if ended < BATCH and expired < BATCH:
            break
    if counts["deployments_ended"] or counts["agreements_expired"]:
        log.info("calendar ends announced", extra={**counts, "today": day.isoformat()})
    if pending and send_pending is not None:
        try:
            await send_pending(pending)
        except Exception:
            log.exception("sending calendar events failed; the relay will retry")
    return counts


def interval_s(settings: Settings) -> float:
    return settings.webhook_calendar_interval_s


def cron_times(settings: Settings) -> tuple[set[int] | None, set[int]]:
    """arq cron (minute, second) sets that run the sweep about every `interval_s`: seconds of
    every minute up to a minute, else minutes of every hour at second 0."""
    every = int(interval_s(settings))
    if every <= 60:
        return None, set(range(0, 60, every))
    return set(range(0, 60, min(60, every // 60))), {0}


async def sweep_forever(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    settings: Settings,
    send_pending: SendPending | None = None,
) -> None:
    """The API's calendar timer (every arq worker runs the same pass as a cron job)."""
    while True:
        await asyncio.sleep(interval_s(settings))
        try:
            await sweep(sessionmaker, send_pending=send_pending)
        except Exception:
            log.exception("calendar sweep failed")
