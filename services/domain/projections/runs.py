"""Creating projection runs and keeping them alive: requests, the reaper and stale marking.

Shared by the API, the CLI, the projector and the return-loading code; the projection model
itself runs in services/projector/pipeline.py.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.domain.webhooks import events as webhook_events
from services.domain.webhooks.events import EventType
from shared.config import Settings, get_settings
from shared.db.base import utcnow
from shared.db.session import transaction
from shared.jobs import (
    JobName,
    ProjectIcsPayload,
    RunProjectionPayload,
    project_ics_job_id,
    run_projection_job_id,
)
from shared.models import BASELINE, ENGLAND_CODE, ProjectionRun, RunStatus, Scenario
from shared.repositories import audit, outbox, scenarios
from shared.repositories import projections as repo
from shared.schemas.scenario_parameters import BASELINE_PARAMETERS

log = logging.getLogger("oneworkforce.projections")

DEFAULT_HORIZON = 20
DEFAULT_ITERATIONS = 200
DEFAULT_SEED = 1


def settings_of(session: AsyncSession) -> Settings:
    """The settings the session's owner runs with (tests hand their own in), else the process'."""
    settings = session.info.get("settings")
    return settings if isinstance(settings, Settings) else get_settings()


async def baseline(session: AsyncSession) -> Scenario:
    scenario, _ = await scenarios.ensure_baseline(session, parameters=BASELINE_PARAMETERS)
    return scenario


async def enqueue_run(session: AsyncSession, run: ProjectionRun, *, defer_s: float = 0.0) -> None:
    attempt = run.attempts + 1
    await outbox.add(
        session,
        job_name=JobName.run_projection,
        job_id=run_projection_job_id(run.id, attempt),
        payload=RunProjectionPayload(run_id=run.id, attempt=attempt).model_dump(mode="json"),
        defer_s=defer_s,
    )


async def create_run(
    session: AsyncSession,
    *,
    scenario: Scenario,
    scope: str,
    base_year: int,
    horizon: int,
    iterations: int,
    seed: int,
    key_id: uuid.UUID | None,
    actor: str,
    defer_s: float = 0.0,
) -> ProjectionRun:
    """A queued run with its job in the outbox, in the caller's transaction."""
    run = await repo.add_run(
        session,
        ProjectionRun(
            scenario_id=scenario.id,
            scenario_name=scenario.name,
            scenario_version=scenario.version,
            scope=scope,
            ics_code=None if scope == ENGLAND_CODE else scope,
            base_year=base_year,
            horizon=horizon,
            iterations=iterations,
            seed=seed,
            status=RunStatus.queued,
            attempts=0,
            queued_at=utcnow(),
            requested_by_key_id=key_id,
        ),
    )
    await enqueue_run(session, run, defer_s=defer_s)
    await audit.record(
        session,
        key_id=key_id,
        actor=actor,
        action="projection.request",
        resource_type="projection_run",
        resource_id=str(run.id),
        detail={
            "scope": scope,
            "scenario": scenario.name,
            "scenario_version": scenario.version,
            "base_year": base_year,
            "horizon": horizon,
            "iterations": iterations,
            "seed": seed,
        },
    )
    return run


# ---------------------------------------------------------------------------------------------
# Returns accepted: stale runs and a coalesced recompute


async def returns_accepted(session: AsyncSession, *, ics_codes: Sequence[str]) -> None:
    """New returns for these ICSs: their runs are stale; queue one baseline recompute each.

    Only an ICS that has had a baseline run gets one, and a burst of returns within
    recompute_delay_s shares one queued run, whose job is deferred by that delay.
    """
    codes = sorted(set(ics_codes))
    if not codes:
        return
    becoming_stale = await repo.fresh_succeeded_runs(session, ics_codes=codes)
    await repo.mark_stale(session, ics_codes=codes)
    for run in becoming_stale:
        await webhook_events.projection_event(
            session, EventType.projection_stale, run, status="succeeded", stale=True
        )
    settings = settings_of(session)
    if not settings.auto_recompute:
        return
    delay_s = max(settings.recompute_delay_s, 0.0)
    bucket_s = max(delay_s, 1.0)
    since = utcnow() - timedelta(seconds=bucket_s)
    for code in codes:
        if not await repo.has_runs(session, ics_code=code, scenario=BASELINE):
            continue
        if await repo.find_queued(session, ics_code=code, scenario=BASELINE, requested_after=since):
            continue
        scenario = await baseline(session)
        previous = await repo.latest_return_year(session, ics_code=code)
        run = await create_run(
            session,
            scenario=scenario,
            scope=code,
            base_year=previous or utcnow().year,
            horizon=DEFAULT_HORIZON,
            iterations=DEFAULT_ITERATIONS,
            seed=DEFAULT_SEED,
            key_id=None,
            actor="recompute",
            defer_s=delay_s,
        )
        log.info("recompute queued", extra={"ics_code": code, "run_id": str(run.id)})


async def import_accepted(session: AsyncSession, *, import_id: uuid.UUID) -> None:
    """A bulk import loaded: the same as returns_accepted for every ICS it touched."""
    await returns_accepted(
        session, ics_codes=await repo.ics_of_import(session, import_id=import_id)
    )


# ---------------------------------------------------------------------------------------------
# The reaper


async def reap(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    settings: Settings,
    discard: Callable[[list[str]], Awaitable[None]] | None = None,
) -> dict[str, int]:
    """Re-queue runs and parts whose worker stopped beating, or fail them after max tries."""
    cutoff = utcnow() - timedelta(seconds=settings.run_heartbeat_timeout_s)
    counts = {"requeued": 0, "failed": 0}
    abandoned: list[str] = []
    async with transaction(sessionmaker) as session:
        for stuck in await repo.stuck_runs(session, heartbeat_before=cutoff):
            run = await repo.get_run(session, run_id=stuck.id, lock=True)
            if run is None or run.status != RunStatus.running:
                continue
            if run.heartbeat_at is not None and run.heartbeat_at >= cutoff:
                continue
            if run.attempts >= settings.job_max_tries:
                await repo.update_run(
                    session,
                    run_id=run.id,
                    status=RunStatus.failed,
                    finished_at=utcnow(),
                    error="the worker stopped responding on every attempt",
                )
                counts["failed"] += 1
                continue
            abandoned.append(run_projection_job_id(run.id, run.attempts))
            await repo.update_run(session, run_id=run.id, status=RunStatus.queued)
            await enqueue_run(session, run)
            counts["requeued"] += 1
        for stuck_part in await repo.stuck_parts(session, heartbeat_before=cutoff):
            part = await repo.get_part(
                session, run_id=stuck_part.run_id, ics_code=stuck_part.ics_code, lock=True
            )
            if part is None or part.status != RunStatus.running:
                continue
            if part.attempts >= settings.job_max_tries:
                await repo.update_part(
                    session, run_id=part.run_id, ics_code=part.ics_code, status=RunStatus.failed
                )
                await repo.update_run(
                    session,
                    run_id=part.run_id,
                    status=RunStatus.failed,
                    finished_at=utcnow(),
                    error=f"the worker for {part.ics_code} stopped responding on every attempt",
                )
                counts["failed"] += 1
                continue
            abandoned.append(project_ics_job_id(part.run_id, part.ics_code, part.attempts))
            await repo.update_part(
                session, run_id=part.run_id, ics_code=part.ics_code, status=RunStatus.queued
            )
            attempt = part.attempts + 1
            await outbox.add(
                session,
                job_name=JobName.project_ics,
                job_id=project_ics_job_id(part.run_id, part.ics_code, attempt),
                payload=ProjectIcsPayload(
                    run_id=part.run_id, ics_code=part.ics_code, attempt=attempt
                ).model_dump(mode="json"),
            )
            counts["requeued"] += 1
    if counts["requeued"] or counts["failed"]:
        log.warning("reaped stuck projection work", extra=counts)
    if abandoned and discard is not None:
        # The dead attempts' jobs would otherwise sit in the queue, marked in progress, until
        # their timeout, and keep a burst worker from finishing.
        try:
            await discard(abandoned)
        except Exception:
            log.exception("could not discard abandoned jobs; they expire with their timeout")
    return counts


async def reap_forever(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    settings: Settings,
    discard: Callable[[list[str]], Awaitable[None]] | None = None,
) -> None:
    """The API's reaper timer (the arq worker runs the same pass as a cron job)."""
    interval_s = max(1.0, min(60.0, settings.run_heartbeat_timeout_s / 2))
    while True:
        await asyncio.sleep(interval_s)
        try:
            await reap(sessionmaker, settings=settings, discard=discard)
        except Exception:
            log.exception("projection reaper pass failed")
