"""Creating projection runs and keeping them alive: requests, the reaper and stale marking.

Shared by the API, the CLI, the projector and the return-loading code; the projection model
itself runs in services/projector/pipeline.py.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.domain.projections import errors
from services.domain.webhooks import events as webhook_events
from services.domain.webhooks.events import EventType
from shared import metrics
from shared.config import Settings, get_settings
from shared.db.base import utcnow
from shared.db.session import transaction
from shared.errors import DomainError
from shared.jobs import (
    JobName,
    ProjectIcsPayload,
    RunProjectionPayload,
    combine_projection_job_id,
    project_ics_job_id,
    run_projection_job_id,
)
from shared.models import BASELINE, ENGLAND_CODE, AreaType, ProjectionRun, RunStatus, Scenario
from shared.reference import files as reference_files
from shared.repositories import audit, outbox, scenarios
from shared.repositories import population as population_repo
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
# Requests: the one path the API, the command line and the automatic recompute all take


async def request_run(
    session: AsyncSession,
    *,
    scenario: Scenario,
    scope: str,
    base_year: int | None,
    horizon: int | None,
    iterations: int,
    seed: int,
    key_id: uuid.UUID | None,
    actor: str,
    defer_s: float = 0.0,
) -> ProjectionRun:
    """Validate a run against the areas, returns and population it will use, and queue it.

    Defaults: base year = the latest return year in scope; horizon 20 years, or as far as the
    population data go when that is sooner. Raises Unprocessable, having written nothing,
    when the run could not succeed.
    """
    area = await repo.area_of(session, code=scope)
    if area is None or area.type not in (AreaType.icb, AreaType.country):
        raise errors.InvalidScope("scope must be an ICB code or E92000001.", field="scope")
    dataset = await population_repo.get_dataset_by_name(
        session, name=reference_files.BUNDLED_DATASET_NAME
    )
    if dataset is None:
        raise errors.NoPopulation("The population projections are not loaded.", field="scope")
    if base_year is None:
        base_year = await repo.latest_return_year(
            session, ics_code=None if scope == ENGLAND_CODE else scope
        )
        if base_year is None:
            raise errors.NoReturns("There are no workforce returns in this scope.", field="scope")
    if base_year < dataset.first_year or base_year > dataset.last_year:
        raise errors.BaseYearOutOfRange(
            f"base_year must be within the population data, {dataset.first_year}-"
            f"{dataset.last_year}.",
            field="base_year",
        )
    horizon = horizon or min(DEFAULT_HORIZON, dataset.last_year - base_year)
    if horizon < 1 or base_year + horizon > dataset.last_year:
        raise errors.HorizonBeyondPopulation(
            f"The population data end in {dataset.last_year}: horizon may be at most "
            f"{dataset.last_year - base_year} from base year {base_year}.",
            field="horizon",
        )
    return await create_run(
        session,
        scenario=scenario,
        scope=scope,
        base_year=base_year,
        horizon=horizon,
        iterations=iterations,
        seed=seed,
        key_id=key_id,
        actor=actor,
        defer_s=defer_s,
    )


# ---------------------------------------------------------------------------------------------
# Inputs changed: stale runs and a coalesced recompute
#
# A run is stale as soon as any input it used changes: a return of an organisation in its
# scope, a new version of its scenario, the population dataset, a role's demand driver, or an
# agreement that changes sharing in its scope. Each change marks the runs it touches in the
# same transaction as the change itself, and queues one baseline recompute for every scope it
# touches that has had a baseline run.


async def _mark_stale(session: AsyncSession, *, condition: Any, reason: str) -> list[uuid.UUID]:
    """Mark the runs stale; subscribers hear of each finished run that just went stale."""
    marked = await repo.mark_stale(session, condition=condition)
    if marked:
        log.info("projection runs stale", extra={"runs": len(marked), "reason": reason})
    # A running run marked here announces it when it succeeds (webhook_events.run_succeeded).
    await webhook_events.runs_stale(session, await repo.succeeded_runs(session, run_ids=marked))
    return marked


async def _stale_and_recompute(
    session: AsyncSession, *, condition: Any, recompute: Sequence[str] | None, reason: str
) -> list[uuid.UUID]:
    marked = await _mark_stale(session, condition=condition, reason=reason)
    scopes = await repo.scopes_with_runs(session, scenario=BASELINE, scopes=recompute)
    await recompute_scopes(session, scopes=scopes, reason=reason)
    return marked


def _covering(ics_codes: Sequence[str]) -> list[str]:
    """The scopes whose runs read an ICS's data: the ICS itself and England."""
    return sorted({*ics_codes, ENGLAND_CODE})


async def returns_accepted(session: AsyncSession, *, ics_codes: Sequence[str]) -> None:
    """New returns in these ICSs: runs of the ICSs and of England are stale."""
    codes = sorted(set(ics_codes))
    if not codes:
        return
    scopes = _covering(codes)
    await _stale_and_recompute(
        session, condition=repo.runs_of_scopes(scopes), recompute=scopes, reason="returns"
    )


async def import_accepted(session: AsyncSession, *, import_id: uuid.UUID) -> None:
    """A bulk import loaded: the same as returns_accepted for every ICS it touched."""
    await returns_accepted(
        session, ics_codes=await repo.ics_of_import(session, import_id=import_id)
    )


async def scenario_changed(session: AsyncSession, *, scenario: Scenario) -> None:
    """A new version of a scenario: runs of its earlier versions are stale."""
    await _stale_and_recompute(
        session,
        condition=repo.runs_of_scenario_before(scenario.id, scenario.version),
        recompute=None if scenario.name == BASELINE else [],
        reason="scenario",
    )


async def population_changed(session: AsyncSession, *, dataset_name: str) -> None:
    """The population dataset runs read was loaded again or replaced: every run is stale."""
    if dataset_name != reference_files.BUNDLED_DATASET_NAME:
        return
    await _stale_and_recompute(
        session, condition=repo.all_runs(), recompute=None, reason="population"
    )


async def role_driver_changed(session: AsyncSession, *, role_code: str) -> None:
    """A role's default demand driver changed: runs that projected the role are stale."""
    marked = await _mark_stale(
        session, condition=repo.runs_using_role(role_code), reason="role_driver"
    )
    scopes = await repo.scopes_of_runs(session, run_ids=marked, scenario=BASELINE)
    await recompute_scopes(session, scopes=scopes, reason="role_driver")


async def agreements_changed(session: AsyncSession, *, ics_code: str) -> None:
    """Sharing in an ICS changed (an agreement started, stopped or changed terms)."""
    scopes = _covering([ics_code])
    await _stale_and_recompute(
        session, condition=repo.runs_of_scopes(scopes), recompute=scopes, reason="agreements"
    )


async def recompute_scopes(session: AsyncSession, *, scopes: Sequence[str], reason: str) -> None:
    """Queue one baseline run per scope through the request path, deferred by
    recompute_delay_s; a burst of changes shares the run still queued. A request that would be
    refused is logged (WARNING) and skipped: the change that triggered it still stands."""
    settings = settings_of(session)
    if not settings.auto_recompute or not scopes:
        return
    delay_s = max(settings.recompute_delay_s, 0.0)
    scenario: Scenario | None = None
    for scope in scopes:
        if await repo.find_queued(session, scope=scope, scenario=BASELINE):
            continue
        previous = await repo.latest_of_scope(session, scope=scope, scenario=BASELINE)
        if previous is None:
            continue
        scenario = scenario or await baseline(session)
        try:
            run = await request_run(
                session,
                scenario=scenario,
                scope=scope,
                base_year=None,
                horizon=None,
                iterations=previous.iterations,
                seed=previous.seed,
                key_id=None,
                actor="recompute",
                defer_s=delay_s,
            )
        except DomainError as exc:
            log.warning(
                "automatic recompute refused",
                extra={"scope": scope, "reason": reason, "code": exc.code, "error": str(exc)},
            )
            continue
        log.info(
            "recompute queued",
            extra={"scope": scope, "run_id": str(run.id), "reason": reason, "defer_s": delay_s},
        )


# ---------------------------------------------------------------------------------------------
# Ending a run, and the reaper


async def fail_run(
    sessionmaker: async_sessionmaker[AsyncSession],
    run_id: uuid.UUID,
    message: str,
    *,
    failed_part: str | None = None,
    send_pending: Callable[[list[uuid.UUID]], Awaitable[Any]] | None = None,
) -> bool:
    """End a queued or running run as failed, with its reason: no part stays open (the failing
    one is failed, the rest cancelled) and no partial result rows stay behind. False when the
    run had already ended. `send_pending` sends the jobs the transaction queued (webhooks) at
    once; the relay's timer does otherwise."""
    async with transaction(sessionmaker) as session:
        ended = await _fail_locked(session, run_id, message, failed_part=failed_part)
        pending = outbox.take_pending(session)
    if ended is not None:
        _log_failure(run_id, message, ended)
    if pending and send_pending is not None:
        try:
            await send_pending(pending)
        except Exception:
            log.exception("sending follow-up jobs failed; the relay will retry")
    return ended is not None


async def _fail_locked(
    session: AsyncSession, run_id: uuid.UUID, message: str, *, failed_part: str | None = None
) -> ProjectionRun | None:
    """fail_run inside the caller's transaction: locks the run row, then its parts."""
    run = await repo.get_run(session, run_id=run_id, lock=True)
    if run is None or run.status not in (RunStatus.queued, RunStatus.running):
        return None
    await repo.update_run(
        session, run_id=run_id, status=RunStatus.failed, finished_at=utcnow(), error=message[:2000]
    )
    await repo.end_open_parts(session, run_id=run_id, failed_part=failed_part)
    await repo.delete_results(session, run_id=run_id)
    await webhook_events.projection_event(
        session, EventType.projection_failed, run, status="failed", error=message[:2000]
    )
    return run


def _log_failure(run_id: uuid.UUID, message: str, run: ProjectionRun) -> None:
    metrics.run_ended(
        scope=run.scope,
        status=RunStatus.failed,
        seconds=None if run.started_at is None else (utcnow() - run.started_at).total_seconds(),
        automatic=run.requested_by_key_id is None,
    )
    log.error(
        "projection run failed",
        extra={
            "run_id": str(run_id),
            "scope": run.scope,
            "scenario": run.scenario_name,
            "automatic": run.requested_by_key_id is None,
            "error": message,
        },
    )


@dataclass
class _Reaping:
    """One pass of the reaper: what it re-queued, failed and abandoned."""

    settings: Settings
    cutoff: datetime
    counts: dict[str, int] = field(default_factory=lambda: {"requeued": 0, "failed": 0})
    abandoned: list[str] = field(default_factory=list)
    failures: list[tuple[uuid.UUID, str, ProjectionRun]] = field(default_factory=list)

    def silent(self, heartbeat_at: datetime | None) -> bool:
        return heartbeat_at is None or heartbeat_at < self.cutoff

    async def fail(
        self,
        session: AsyncSession,
        run: ProjectionRun,
        message: str,
        *,
        failed_part: str | None = None,
    ) -> None:
        if await _fail_locked(session, run.id, message, failed_part=failed_part):
            self.failures.append((run.id, message, run))
            self.counts["failed"] += 1

    async def run(self, session: AsyncSession, run_id: uuid.UUID) -> None:
        """An ICB run whose worker stopped beating."""
        run = await repo.get_run(session, run_id=run_id, lock=True)
        if run is None or run.status != RunStatus.running or not self.silent(run.heartbeat_at):
            return
        self.abandoned.append(run_projection_job_id(run.id, run.attempts))
        if run.attempts >= self.settings.job_max_tries:
            await self.fail(session, run, "the worker stopped responding on every attempt")
            return
        await repo.update_run(session, run_id=run.id, status=RunStatus.queued)
        await enqueue_run(session, run)
        self.counts["requeued"] += 1

    async def parts(self, session: AsyncSession, run_id: uuid.UUID, codes: list[str]) -> None:
        """Parts of an England run whose worker stopped beating (run row first, then parts)."""
        run = await repo.get_run(session, run_id=run_id, lock=True)
        if run is None:
            return
        if run.status != RunStatus.running:
            # Leftovers of a run that has ended: nothing will finish them.
            await repo.end_open_parts(session, run_id=run_id)
            return
        for code in codes:
            part = await repo.get_part(session, run_id=run_id, ics_code=code, lock=True)
            if part is None or part.status != RunStatus.running:
                continue
            if not self.silent(part.heartbeat_at):
                continue
            self.abandoned.append(project_ics_job_id(run_id, code, part.attempts))
            if part.attempts >= self.settings.job_max_tries:
                message = f"the worker for {code} stopped responding on every attempt"
                await self.fail(session, run, message, failed_part=code)
                return
            await repo.update_part(session, run_id=run_id, ics_code=code, status=RunStatus.queued)
            attempt = part.attempts + 1
            await outbox.add(
                session,
                job_name=JobName.project_ics,
                job_id=project_ics_job_id(run_id, code, attempt),
                payload=ProjectIcsPayload(run_id=run_id, ics_code=code, attempt=attempt).model_dump(
                    mode="json"
                ),
            )
            self.counts["requeued"] += 1

    async def combine(self, session: AsyncSession, run_id: uuid.UUID) -> None:
        """An England run whose parts all succeeded but which nobody has combined since."""
        run = await repo.get_run(session, run_id=run_id, lock=True)
        if run is None or run.status != RunStatus.running or not self.silent(run.heartbeat_at):
            return
        if run.combine_attempts >= self.settings.job_max_tries:
            message = "combining the ICB parts stopped responding on every attempt"
            await self.fail(session, run, message)
            return
        if run.combine_attempts:
            self.abandoned.append(combine_projection_job_id(run_id, run.combine_attempts))
        attempt = run.combine_attempts + 1
        await repo.update_run(
            session, run_id=run_id, combine_attempts=attempt, heartbeat_at=utcnow()
        )
        await outbox.add(
            session,
            job_name=JobName.combine_projection,
            job_id=combine_projection_job_id(run_id, attempt),
            payload=RunProjectionPayload(run_id=run_id, attempt=attempt).model_dump(mode="json"),
        )
        self.counts["requeued"] += 1


async def reap(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    settings: Settings,
    discard: Callable[[list[str]], Awaitable[None]] | None = None,
) -> dict[str, int]:
    """Re-queue runs, parts and combine steps whose worker stopped beating, or fail the run
    after max tries. One transaction per run, locking the run row before its parts."""
    reaping = _Reaping(
        settings=settings, cutoff=utcnow() - timedelta(seconds=settings.run_heartbeat_timeout_s)
    )
    async with sessionmaker() as session:
        stuck_runs = await repo.stuck_runs(session, heartbeat_before=reaping.cutoff)
        stuck_parts = await repo.stuck_parts(session, heartbeat_before=reaping.cutoff)
        stuck_combines = await repo.stuck_combines(session, heartbeat_before=reaping.cutoff)
    for run_id in stuck_runs:
        async with transaction(sessionmaker) as session:
            await reaping.run(session, run_id)
    for run_id, codes in stuck_parts.items():
        async with transaction(sessionmaker) as session:
            await reaping.parts(session, run_id, codes)
    for run_id in stuck_combines:
        async with transaction(sessionmaker) as session:
            await reaping.combine(session, run_id)

    for run_id, message, run in reaping.failures:
        _log_failure(run_id, message, run)
    counts = reaping.counts
    if counts["requeued"] or counts["failed"]:
        log.warning("reaped stuck projection work", extra=counts)
    if reaping.abandoned and discard is not None:
        # The dead attempts' jobs would otherwise sit in the queue, marked in progress, until
        # their timeout, and keep a burst worker from finishing.
        try:
            await discard(reaping.abandoned)
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
