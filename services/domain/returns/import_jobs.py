"""Running a staged bulk import as a job, and recovering it when its worker dies.

An import is claimed (queued -> running, attempt n), loaded in one transaction while a
heartbeat records that the worker is alive, and ends `succeeded` or `failed` with its reason.
Whatever happens, a finished import leaves no staging rows:

- bad lines fail it at once, with every problem by row and column;
- a lost database connection (a restart, a failover) puts it back in the queue as attempt n+1,
  up to JOB_MAX_TRIES, then fails it; these state changes are retried with backoff, so they
  survive the database coming back a little later;
- any other error fails it at once with the error as its reason;
- a worker killed mid-load stops beating: the reaper re-queues the import (or fails it after
  the last attempt) once it has been silent for RUN_HEARTBEAT_TIMEOUT_S.

Each attempt commits only if it is still the import's current one, so an attempt the reaper
gave up on can never load the file a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, PendingRollbackError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.domain.projections import runs as projection_runs
from services.domain.returns.importer import ImportOutcome, validate_and_load
from services.domain.webhooks import events as webhook_events
from services.domain.webhooks.events import EventType
from shared.config import Settings
from shared.db.base import utcnow
from shared.db.session import transaction
from shared.jobs import ImportReturnsPayload, JobName, import_returns_job_id
from shared.models import ImportStatus, ReturnImport
from shared.repositories import imports, outbox
from shared.repositories import returns as returns_repo

log = logging.getLogger("oneworkforce.imports")

T = TypeVar("T")

# Sends committed outbox rows now; None leaves them to the relay's timer.
SendPending = Callable[[list[uuid.UUID]], Awaitable[object]]


class _Rejected(Exception):
    def __init__(self, outcome: ImportOutcome) -> None:
        self.outcome = outcome


class _Superseded(Exception):
    """This attempt is no longer the import's current one: roll back and leave it."""


# SQLSTATEs of a server going away or not yet back: connection exceptions (class 08), admin or
# crash shutdown and "cannot connect now" (57P01-57P03), too many connections (53300).
_TRANSIENT_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")


def is_transient(exc: BaseException) -> bool:
    """An error that another try may not meet: the database (or the network to it) went away.

    The error raised may be a consequence (a statement on a connection that died meanwhile), so
    the causes count too.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if _transient_itself(current):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _transient_itself(exc: BaseException) -> bool:
    if isinstance(exc, PendingRollbackError):
        return True  # only raised once the connection under a transaction was invalidated
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
            return True
        sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
        return sqlstate.startswith(_TRANSIENT_SQLSTATES)
    return isinstance(exc, OSError | TimeoutError)


def reason_of(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")[:500]


async def with_backoff(
    work: Callable[[], Awaitable[T]], *, deadline_s: float, first_delay_s: float = 0.2
) -> T:
    """Run `work`, retrying transient database errors with exponential backoff until the
    deadline; other errors, and the last transient one, are raised."""
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + max(deadline_s, first_delay_s)
    delay = first_delay_s
    while True:
        try:
            return await work()
        except Exception as exc:
            if not is_transient(exc) or loop.time() + delay > give_up_at:
                raise
            log.warning(
                "database unavailable; retrying",
                extra={"error": reason_of(exc), "retry_in_s": round(delay, 2)},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def heartbeat_interval(settings: Settings) -> float:
    return max(0.05, min(5.0, settings.run_heartbeat_timeout_s / 4))


class _Heartbeat:
    """Beats on its own connection while the load's transaction is open.

    Not on SQLite: the load holds its single write lock, so a beat could only wait; there the
    reaper asks the in-process runner which jobs it is running instead.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        import_id: uuid.UUID,
        attempt: int,
        interval_s: float,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._import_id = import_id
        self._attempt = attempt
        self._interval_s = interval_s
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.lost = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._beat(), name=f"import-heartbeat-{self._import_id}")

    async def _beat(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self._interval_s)
            if self._stop.is_set():
                return
            try:
                async with transaction(self._sessionmaker) as session:
                    alive = await imports.beat(
                        session, import_id=self._import_id, attempt=self._attempt
                    )
            except Exception as exc:  # the next beat may get through; the reaper decides
                log.warning(
                    "import heartbeat failed",
                    extra={"import_id": str(self._import_id), "error": reason_of(exc)},
                )
                continue
            if not alive:
                self.lost = True
                return

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task


async def _claim(
    sessionmaker: async_sessionmaker[AsyncSession], import_id: uuid.UUID, attempt: int
) -> ReturnImport | ImportStatus:
    """Mark the import running on this attempt; or say why this attempt has nothing to do."""
    async with transaction(sessionmaker) as session:
        row = await imports.get(session, import_id=import_id, lock=True)
        if row is None:
            return ImportStatus.failed
        if row.status in (ImportStatus.succeeded, ImportStatus.failed):
            return row.status
        if attempt <= row.attempts:
            # This attempt already ran (or is running) or a newer one owns the import: each
            # attempt claims it once, and the reaper's re-queue is the next attempt.
            return row.status
        now = utcnow()
        await imports.update(
            session,
            row,
            status=ImportStatus.running,
            attempts=attempt,
            started_at=row.started_at or now,
            heartbeat_at=now,
        )
        return row


async def _announce_returns(
    session: AsyncSession, import_id: uuid.UUID
) -> list[webhook_events.StoredReturn]:
    """return.accepted (and return.superseded) for every return the import stored, as for a
    single submission, queued in bulk in the import's transaction; the returns it stored."""
    started = time.perf_counter()
    stored = [
        webhook_events.StoredReturn(*row)
        for row in await returns_repo.stored_by_import(session, import_id=import_id)
    ]
    deliveries = await webhook_events.returns_stored(session, stored)
    if deliveries:
        log.info(
            "import returns announced",
            extra={
                "import_id": str(import_id),
                "returns": len(stored),
                "deliveries": deliveries,
                "seconds": round(time.perf_counter() - started, 3),
            },
        )
    return stored


def _stored_parts(stored: list[webhook_events.StoredReturn]) -> list[webhook_events.ImportPart]:
    """Per ICS, the organisations a global key's import stored returns for, and how many."""
    organisations: dict[str, set[uuid.UUID]] = defaultdict(set)
    returns: Counter[str] = Counter()
    for item in stored:
        if item.ics_code is not None:
            organisations[item.ics_code].add(item.organisation_id)
            returns[item.ics_code] += 1
    return [
        webhook_events.ImportPart(
            ics_code=ics_code,
            organisation_ids=tuple(sorted(organisations[ics_code])),
            return_count=returns[ics_code],
        )
        for ics_code in sorted(organisations)
    ]


async def _failed_parts(
    session: AsyncSession, import_id: uuid.UUID, errors: list[dict[str, object]]
) -> list[webhook_events.ImportPart]:
    """Per ICS, the organisations a global key's failed import named (read from its staged
    lines, before they go) and how many of the problems it reports are on their lines."""
    known = await returns_repo.organisations_by_code(session)
    organisations: dict[str, set[uuid.UUID]] = defaultdict(set)
    codes_of: dict[str, set[str]] = defaultdict(set)
    for code in await returns_repo.staged_organisation_codes(session, import_id=import_id):
        if code in known:
            organisation_id, ics_code, _ = known[code]
            organisations[ics_code].add(organisation_id)
            codes_of[ics_code].add(code)
    return [
        webhook_events.ImportPart(
            ics_code=ics_code,
            organisation_ids=tuple(sorted(organisations[ics_code])),
            error_count=sum(1 for e in errors if e.get("organisation_code") in codes_of[ics_code]),
        )
        for ics_code in sorted(organisations)
    ]


async def _load(
    sessionmaker: async_sessionmaker[AsyncSession],
    claimed: ReturnImport,
    attempt: int,
    heartbeat: _Heartbeat | None,
) -> list[uuid.UUID]:
    """Load in one transaction; returns the outbox rows it committed (a recompute)."""
    async with transaction(sessionmaker) as session:
        outcome = await validate_and_load(
            session,
            import_id=claimed.id,
            ics_code=claimed.ics_code,
            key_id=claimed.submitted_by_key_id,
            actor="import",
        )
        if not outcome.ok:
            raise _Rejected(outcome)
        stored = await _announce_returns(session, claimed.id)
        await projection_runs.import_accepted(session, import_id=claimed.id)
        if heartbeat is not None:
            await heartbeat.stop()
        row = await imports.get(session, import_id=claimed.id, lock=True)
        if row is None or row.status != ImportStatus.running or row.attempts != attempt:
            raise _Superseded
        await imports.update(
            session,
            row,
            status=ImportStatus.succeeded,
            finished_at=utcnow(),
            heartbeat_at=utcnow(),
            return_count=outcome.return_count,
            timings={**claimed.timings, **outcome.timings},
        )
        await webhook_events.import_event(
            session,
            EventType.import_succeeded,
            import_id=row.id,
            ics_code=row.ics_code,
            parts=_stored_parts(stored) if row.ics_code is None else (),
            status="succeeded",
            return_count=outcome.return_count,
            links={"import": f"/v1/imports/{row.id}"},
        )
        return outbox.take_pending(session)


async def _finish_failed(
    session: AsyncSession,
    row: ReturnImport,
    *,
    errors: list[dict[str, object]],
    error_count: int | None = None,
    timings: dict[str, float] | None = None,
) -> None:
    """Fail the import and drop its staging rows, in the caller's transaction."""
    parts = [] if row.ics_code is not None else await _failed_parts(session, row.id, errors)
    await returns_repo.delete_staged(session, import_id=row.id)
    await imports.update(
        session,
        row,
        status=ImportStatus.failed,
        finished_at=utcnow(),
        error_count=len(errors) if error_count is None else error_count,
        errors=errors,
        timings=row.timings if timings is None else timings,
    )
    await webhook_events.import_event(
        session,
        EventType.import_failed,
        import_id=row.id,
        ics_code=row.ics_code,
        parts=parts,
        status="failed",
        error_count=len(errors) if error_count is None else error_count,
        links={"import": f"/v1/imports/{row.id}"},
    )


async def _record_rejection(
    sessionmaker: async_sessionmaker[AsyncSession],
    import_id: uuid.UUID,
    attempt: int,
    outcome: ImportOutcome,
    timings: dict[str, float],
) -> list[uuid.UUID]:
    """Fail the import with the problems its lines have; the outbox rows to send (its event)."""
    async with transaction(sessionmaker) as session:
        row = await imports.get(session, import_id=import_id, lock=True)
        if row is None or row.status != ImportStatus.running or row.attempts != attempt:
            return []
        await _finish_failed(
            session,
            row,
            errors=[problem.as_dict() for problem in outcome.problems],
            error_count=outcome.error_count,
            timings={**timings, **outcome.timings},
        )
        return outbox.take_pending(session)


def _retry_delay_s(attempt: int) -> float:
    return float(min(30, 2**attempt))


async def requeue(session: AsyncSession, row: ReturnImport, *, defer_s: float = 0.0) -> str:
    """Put the import back in the queue as its next attempt; returns the new job's id."""
    attempt = row.attempts + 1
    job_id = import_returns_job_id(row.id, attempt)
    await imports.update(session, row, status=ImportStatus.queued, heartbeat_at=None)
    await outbox.add(
        session,
        job_name=JobName.import_returns,
        job_id=job_id,
        payload=ImportReturnsPayload(import_id=row.id, attempt=attempt).model_dump(mode="json"),
        defer_s=defer_s,
    )
    return job_id


async def _record_error(
    sessionmaker: async_sessionmaker[AsyncSession],
    import_id: uuid.UUID,
    attempt: int,
    exc: BaseException,
    settings: Settings,
) -> tuple[ImportStatus, list[uuid.UUID]]:
    """After an unexpected error: another attempt if the database went away, else failed; the
    outbox rows to send (the next attempt's job, or the failure's event)."""
    reason = reason_of(exc)
    async with transaction(sessionmaker) as session:
        row = await imports.get(session, import_id=import_id, lock=True)
        if row is None or row.status != ImportStatus.running or row.attempts != attempt:
            return ImportStatus.failed, []
        if is_transient(exc) and attempt < settings.job_max_tries:
            await requeue(session, row, defer_s=_retry_delay_s(attempt))
            log.warning(
                "import interrupted; queued again",
                extra={"import_id": str(import_id), "attempt": attempt, "error": reason},
            )
            return ImportStatus.queued, outbox.take_pending(session)
        log.error(
            "import failed",
            extra={"import_id": str(import_id), "attempt": attempt, "error": reason},
        )
        await _finish_failed(
            session,
            row,
            errors=[
                {
                    "row": None,
                    "column": None,
                    "code": "import_failed",
                    "message": f"the import could not be completed (attempt {attempt}): {reason}",
                }
            ],
        )
        return ImportStatus.failed, outbox.take_pending(session)


async def process(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    import_id: uuid.UUID,
    settings: Settings,
    attempt: int = 1,
    send_pending: SendPending | None = None,
) -> ImportStatus:
    """Validate and load a staged import; safe to run again (a finished import is left alone)."""
    deadline_s = max(5.0, settings.run_heartbeat_timeout_s)
    claimed = await with_backoff(
        partial(_claim, sessionmaker, import_id, attempt), deadline_s=deadline_s
    )
    if not isinstance(claimed, ReturnImport):
        return claimed
    heartbeat: _Heartbeat | None = None
    if not settings.is_sqlite:
        heartbeat = _Heartbeat(
            sessionmaker,
            import_id=import_id,
            attempt=attempt,
            interval_s=heartbeat_interval(settings),
        )
        heartbeat.start()
    pending: list[uuid.UUID] = []
    try:
        try:
            pending = await _load(sessionmaker, claimed, attempt, heartbeat)
        finally:
            if heartbeat is not None:
                await heartbeat.stop()
        status = ImportStatus.succeeded
    except _Superseded:
        log.warning("import attempt superseded", extra={"import_id": str(import_id)})
        return ImportStatus.running
    except _Rejected as rejected:
        pending = await with_backoff(
            partial(
                _record_rejection,
                sessionmaker,
                import_id,
                attempt,
                rejected.outcome,
                dict(claimed.timings),
            ),
            deadline_s=deadline_s,
        )
        status = ImportStatus.failed
    except Exception as exc:
        # Recorded with backoff, so a database that is restarting gets time to come back; if it
        # does not, the heartbeat has stopped and the reaper finishes the job later.
        status, pending = await with_backoff(
            partial(_record_error, sessionmaker, import_id, attempt, exc, settings),
            deadline_s=deadline_s,
        )
    if pending and send_pending is not None:
        try:
            await send_pending(pending)
        except Exception:
            log.exception("sending follow-up jobs failed; the relay will retry")
    return status


# ---------------------------------------------------------------------------------------------
# The reaper


async def reap(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    settings: Settings,
    discard: Callable[[list[str]], Awaitable[None]] | None = None,
    running_here: Callable[[str], bool] | None = None,
    send_pending: SendPending | None = None,
) -> dict[str, int]:
    """Re-queue imports whose worker stopped beating, or fail them after the last attempt.

    `running_here` names the jobs this process is running (the in-process runner), which are
    alive even when they could not beat (SQLite's single writer).
    """
    cutoff = utcnow() - timedelta(seconds=settings.run_heartbeat_timeout_s)
    counts = {"requeued": 0, "failed": 0}
    abandoned: list[str] = []
    async with transaction(sessionmaker) as session:
        for row in await imports.stuck(session, heartbeat_before=cutoff):
            current_job = import_returns_job_id(row.id, row.attempts)
            if running_here is not None and running_here(current_job):
                continue
            abandoned.append(current_job)
            if row.attempts >= settings.job_max_tries:
                await _finish_failed(
                    session,
                    row,
                    errors=[
                        {
                            "row": None,
                            "column": None,
                            "code": "import_abandoned",
                            "message": (
                                f"the worker stopped responding on every attempt ({row.attempts})"
                            ),
                        }
                    ],
                )
                counts["failed"] += 1
                continue
            await requeue(session, row)
            counts["requeued"] += 1
        pending = outbox.take_pending(session)
    if counts["requeued"] or counts["failed"]:
        log.warning("reaped stuck imports", extra=counts)
    if abandoned and discard is not None:
        try:
            await discard(abandoned)
        except Exception:
            log.exception("could not discard abandoned import jobs; they expire with their timeout")
    if pending and send_pending is not None:
        try:
            await send_pending(pending)
        except Exception:
            log.exception("sending re-queued imports failed; the relay will retry")
    return counts


def reaper_interval_s(settings: Settings) -> float:
    return max(1.0, min(60.0, settings.run_heartbeat_timeout_s / 2))


async def reap_forever(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    settings: Settings,
    discard: Callable[[list[str]], Awaitable[None]] | None = None,
    running_here: Callable[[str], bool] | None = None,
    send_pending: SendPending | None = None,
) -> None:
    """The API's import reaper timer (the arq worker runs the same pass as a cron job)."""
    while True:
        await asyncio.sleep(reaper_interval_s(settings))
        try:
            await reap(
                sessionmaker,
                settings=settings,
                discard=discard,
                running_here=running_here,
                send_pending=send_pending,
            )
        except Exception as exc:
            log.warning("import reaper pass failed", extra={"error": reason_of(exc)})
