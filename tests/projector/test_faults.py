"""Faults with real processes: each import or run ends `succeeded` (after a retry or a re-send)
or `failed` with a reason, with nothing half-written and no staging rows left.

- a worker killed with SIGKILL in the middle of an import;
- PostgreSQL restarted in the middle of an import;
- Redis stopped (losing everything) while an import or a projection run is waiting in the queue
  and while another is running, then started again: the worker rides it out and the lost jobs
  are sent again by the reconciler.

The workers are `oneworkforce worker` processes; Redis and (for the restart) PostgreSQL are
private servers started by the test (tests/faults.py), never the shared ones. The heartbeat and
reconcile timeouts are shortened through the same settings an operator would use.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.api.keys import service as keys_service
from services.api.returns import imports as imports_service
from services.domain.projections import runs as projection_runs
from services.domain.queue import ArqSender, OutboxRelay
from services.domain.reference.loader import ReferenceLoadSummary
from services.domain.returns import import_jobs
from shared.db import migrate
from shared.db.session import make_engine, make_sessionmaker, transaction
from shared.models import (
    ImportStatus,
    KeyScope,
    Organisation,
    OutboxMessage,
    ProjectionRun,
    ProjectionSeries,
    ReturnImport,
    ReturnLine,
    RunStatus,
    WorkforceReturn,
)
from shared.models.return_staging import return_staging
from shared.schemas.keys import ApiKeyCreate, Principal
from tests.api.returns.helpers import line
from tests.api.returns.test_imports import bulk_csv
from tests.factories import ICB_A, LAD_A1, LAD_A2, ensure_small_geography, make_role
from tests.faults import PrivatePostgres, PrivateRedis, ProjectorWorker, oneworkforce_command
from tests.helpers import settings_for

pytestmark = pytest.mark.slow

T = TypeVar("T")

# The shortened RUN_HEARTBEAT_TIMEOUT_S and QUEUE_RECONCILE_AFTER_S of the worker processes.
HEARTBEAT_TIMEOUT_S = 3.0
RECONCILE_AFTER_S = 2.0
DEADLINE_S = 120.0
# About 100,000 lines: the load takes long enough on PostgreSQL for a fault to land inside it.
IMPORT_ORGANISATIONS = 1000
IMPORT_ROLES = 100


# ---------------------------------------------------------------------------------------------
# Helpers


async def _wait_for(
    what: str,
    probe: Callable[[], Awaitable[T | None]],
    *,
    worker: ProjectorWorker | None = None,
    deadline_s: float = DEADLINE_S,
    interval_s: float = 0.05,
) -> T:
    started = time.monotonic()
    while True:
        found = await probe()
        if found is not None:
            return found
        if time.monotonic() - started > deadline_s:
            log = worker.log()[-6000:] if worker is not None else ""
            raise AssertionError(f"timed out after {deadline_s}s waiting for {what}\n{log}")
        await asyncio.sleep(interval_s)


async def _seed_organisations(
    sessionmaker: async_sessionmaker[AsyncSession], *, organisations: int, roles: int
) -> tuple[list[str], list[str]]:
    """Organisations (ODS codes) in ICB_A's two LADs and roles; returns both code lists."""
    await ensure_small_geography(sessionmaker)
    role_codes = [f"fault-role-{index:03d}" for index in range(roles)]
    for code in role_codes:
        await make_role(sessionmaker, code)
    ods_codes = [f"F{index:05d}" for index in range(organisations)]
    async with transaction(sessionmaker) as session:
        session.add_all(
            Organisation(
                name=f"Fault test provider {code}",
                kind="care_provider",
                sector="social_care",
                home_lad_code=LAD_A1 if index % 2 else LAD_A2,
                ics_code=ICB_A,
                ods_code=code,
                opened_on=date(2000, 1, 1),
            )
            for index, code in enumerate(ods_codes)
        )
    return ods_codes, role_codes


def _import_csv(ods_codes: list[str], role_codes: list[str], as_at: str) -> bytes:
    return bulk_csv([(ods, as_at, line(role)) for ods in ods_codes for role in role_codes])


async def _stage(sessionmaker: async_sessionmaker[AsyncSession], body: bytes) -> uuid.UUID:
    """An upload accepted as the API accepts it: staged, queued, its job in the outbox."""

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 1 << 20):
            yield body[start : start + (1 << 20)]

    async with transaction(sessionmaker) as session:
        key, _ = await keys_service.create_key(
            session,
            ApiKeyCreate(name=f"fault-{uuid.uuid4().hex[:8]}", scope=KeyScope.admin),
            actor="test",
            actor_key_id=None,
        )
        principal = Principal(key_id=key.id, name=key.name, scope=KeyScope.admin)
        row = await imports_service.accept(session, chunks(), principal=principal)
        return row.id


async def _import(
    sessionmaker: async_sessionmaker[AsyncSession], import_id: uuid.UUID
) -> ReturnImport:
    async with sessionmaker() as session:
        row = await session.get(ReturnImport, import_id, populate_existing=True)
        assert row is not None
        return row


async def _count(sessionmaker: async_sessionmaker[AsyncSession], query: object) -> int:
    async with sessionmaker() as session:
        return int((await session.execute(query)).scalar_one())  # type: ignore[call-overload]


async def _assert_loaded_once(
    sessionmaker: async_sessionmaker[AsyncSession],
    import_id: uuid.UUID,
    *,
    organisations: int,
    lines: int,
) -> ReturnImport:
    """Succeeded, every line in exactly once, nothing left in staging."""
    row = await _import(sessionmaker, import_id)
    assert row.status == ImportStatus.succeeded, row.errors
    assert row.return_count == organisations
    returns = select(func.count()).select_from(WorkforceReturn)
    returns = returns.where(WorkforceReturn.import_id == import_id)
    assert await _count(sessionmaker, returns) == organisations
    moved = (
        select(func.count())
        .select_from(ReturnLine)
        .join(WorkforceReturn, WorkforceReturn.id == ReturnLine.return_id)
        .where(WorkforceReturn.import_id == import_id)
    )
    assert await _count(sessionmaker, moved) == lines
    staged = select(func.count()).select_from(return_staging)
    assert await _count(sessionmaker, staged) == 0
    return row


def _worker(
    tmp_path: Path, name: str, *, database_url: str, redis: PrivateRedis, queue: str
) -> ProjectorWorker:
    return ProjectorWorker(
        tmp_path / f"{name}.log",
        DATABASE_URL=database_url,
        REDIS_URL=redis.url(),
        QUEUE_NAME=queue,
        RUN_HEARTBEAT_TIMEOUT_S=str(HEARTBEAT_TIMEOUT_S),
        QUEUE_RECONCILE_AFTER_S=str(RECONCILE_AFTER_S),
        JOB_MAX_TRIES="3",
        WORKER_HEALTH_FILE=str(tmp_path / f"{name}.alive"),
        AUTO_RECOMPUTE="false",
    )


def _health_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [oneworkforce_command(), "worker", "--check"],
        env={**os.environ, "WORKER_HEALTH_FILE": str(path)},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def _running(
    sessionmaker: async_sessionmaker[AsyncSession], import_id: uuid.UUID, attempt: int
) -> ReturnImport | None:
    row = await _import(sessionmaker, import_id)
    assert row.status != ImportStatus.failed, row.errors
    if row.status == ImportStatus.running and row.attempts == attempt:
        return row
    return None


async def _finished(
    sessionmaker: async_sessionmaker[AsyncSession], import_id: uuid.UUID
) -> ReturnImport | None:
    row = await _import(sessionmaker, import_id)
    return row if row.status in (ImportStatus.succeeded, ImportStatus.failed) else None


# ---------------------------------------------------------------------------------------------
# A worker killed with SIGKILL during an import


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_worker_killed_during_an_import_leaves_it_to_the_next_attempt(
    database_url: str,
    db: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    ods, roles = await _seed_organisations(
        sessionmaker, organisations=IMPORT_ORGANISATIONS, roles=IMPORT_ROLES
    )
    lines = len(ods) * len(roles)
    import_id = await _stage(sessionmaker, _import_csv(ods, roles, "2025-03-31"))
    queue = f"oneworkforce:fault:{uuid.uuid4().hex}"
    with PrivateRedis(tmp_path / "redis") as redis:
        sender = ArqSender(redis.url(), queue)
        try:
            first = _worker(tmp_path, "first", database_url=database_url, redis=redis, queue=queue)
            with first:
                assert await OutboxRelay(sessionmaker, sender).send(older_than_s=0) == 1
                await _wait_for(
                    "attempt 1 to start",
                    lambda: _running(sessionmaker, import_id, 1),
                    worker=first,
                    interval_s=0.02,
                )
                await asyncio.sleep(0.3)  # well inside the load
                assert first.kill() < 0
            killed_at = time.monotonic()
            killed = await _import(sessionmaker, import_id)
            assert (killed.status, killed.attempts) == (ImportStatus.running, 1), (
                "the load finished before the kill: make the import bigger"
            )
            # Nothing of the killed attempt is visible: its transaction died with it.
            half = select(func.count()).select_from(WorkforceReturn)
            assert await _count(sessionmaker, half) == 0

            # A fresh worker's reaper sees the silence, re-queues attempt 2 and runs it.
            second = _worker(
                tmp_path, "second", database_url=database_url, redis=redis, queue=queue
            )
            with second:
                requeued = await _wait_for(
                    "the reaper to re-queue the import",
                    lambda: _running(sessionmaker, import_id, 2),
                    worker=second,
                )
                assert requeued.attempts == 2
                # Re-queued no sooner than the heartbeat timeout after the last beat.
                assert killed.heartbeat_at is not None
                assert requeued.started_at is not None
                done = await _wait_for(
                    "attempt 2 to finish", lambda: _finished(sessionmaker, import_id), worker=second
                )
                assert done.status == ImportStatus.succeeded, (done.errors, second.log()[-4000:])
                recovered_s = time.monotonic() - killed_at
        finally:
            await sender.close()
    row = await _assert_loaded_once(sessionmaker, import_id, organisations=len(ods), lines=lines)
    assert row.attempts == 2
    assert row.error_count == 0
    assert recovered_s < DEADLINE_S


# ---------------------------------------------------------------------------------------------
# PostgreSQL restarted during an import


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    with PrivatePostgres() as server:
        yield server


# The restart cuts the connections this test itself holds; asyncpg then leaves their sockets to
# the garbage collector, which warns. That is the fault under test, not a leak.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_postgres_restarted_during_an_import_ends_in_one_load(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    url = settings_for(
        private_postgres.create_database(f"faults_{uuid.uuid4().hex[:8]}")
    ).database_url
    await asyncio.to_thread(migrate.upgrade, url)
    engine = make_engine(url)
    sessionmaker = make_sessionmaker(engine)
    queue = f"oneworkforce:fault:{uuid.uuid4().hex}"
    try:
        ods, roles = await _seed_organisations(
            sessionmaker, organisations=IMPORT_ORGANISATIONS, roles=IMPORT_ROLES
        )
        lines = len(ods) * len(roles)
        import_id = await _stage(sessionmaker, _import_csv(ods, roles, "2025-03-31"))
        with PrivateRedis(tmp_path / "redis") as redis:
            sender = ArqSender(redis.url(), queue)
            worker = _worker(tmp_path, "worker", database_url=url, redis=redis, queue=queue)
            try:
                with worker:
                    assert await OutboxRelay(sessionmaker, sender).send(older_than_s=0) == 1
                    await _wait_for(
                        "attempt 1 to start",
                        lambda: _running(sessionmaker, import_id, 1),
                        worker=worker,
                        interval_s=0.02,
                    )
                    await asyncio.sleep(0.3)
                    await asyncio.to_thread(private_postgres.restart, "fast")
                    done = await _wait_for(
                        "the import to finish after the restart",
                        lambda: _finished(sessionmaker, import_id),
                        worker=worker,
                        interval_s=0.2,
                    )
                    assert done.status == ImportStatus.succeeded, (
                        done.errors,
                        worker.log()[-4000:],
                    )
                    assert worker.alive
            finally:
                await sender.close()
        row = await _assert_loaded_once(
            sessionmaker, import_id, organisations=len(ods), lines=lines
        )
        # The restart cut attempt 1 short; the next attempt loaded the file.
        assert row.attempts >= 2, worker.log()[-4000:]
        assert "import interrupted; queued again" in worker.log()
    finally:
        await engine.dispose()


# ---------------------------------------------------------------------------------------------
# Redis stopped (data lost) and started again


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_redis_lost_while_imports_wait_and_run(
    database_url: str,
    db: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    ods, roles = await _seed_organisations(sessionmaker, organisations=600, roles=100)
    queue = f"oneworkforce:fault:{uuid.uuid4().hex}"
    with PrivateRedis(tmp_path / "redis") as redis:
        sender = ArqSender(redis.url(), queue)
        relay = OutboxRelay(sessionmaker, sender)
        try:
            # 1. An import queued just before Redis dies: its job is gone with Redis.
            waiting = await _stage(sessionmaker, _import_csv(ods[:50], roles[:10], "2024-03-31"))
            assert await relay.send(older_than_s=0) == 1
            redis.stop()
            redis.start()
            assert await sender.holds([f"import_returns:{waiting}:1"]) == set()

            worker = _worker(
                tmp_path, "worker", database_url=database_url, redis=redis, queue=queue
            )
            with worker:
                # 2. Another import is running when Redis dies again.
                running = await _stage(sessionmaker, _import_csv(ods, roles, "2025-03-31"))
                assert await relay.send(older_than_s=0) == 1
                await _wait_for(
                    "the second import to start",
                    lambda: _running(sessionmaker, running, 1),
                    worker=worker,
                    interval_s=0.02,
                )
                redis.stop()
                # The load only needs the database: it finishes while Redis is away.
                done = await _wait_for(
                    "the running import to finish without Redis",
                    lambda: _finished(sessionmaker, running),
                    worker=worker,
                )
                assert done.status == ImportStatus.succeeded, done.errors
                assert worker.alive, worker.log()[-4000:]
                # Its healthcheck says alive (the loop turns), with Redis down.
                health = await asyncio.to_thread(_health_check, tmp_path / "worker.alive")
                assert health.returncode == 0, health.stdout + health.stderr
                assert "redis down" in health.stdout
                assert worker.alive, worker.log()[-4000:]
                redis.start()

                # 3. The worker reconnects, and the reconciler sends the lost job again.
                lost = await _wait_for(
                    "the lost import to be sent again and loaded",
                    lambda: _finished(sessionmaker, waiting),
                    worker=worker,
                )
                assert lost.status == ImportStatus.succeeded, lost.errors
                assert worker.alive
                log = worker.log()
            assert "redis unavailable" in log
            assert "redis reachable again" in log
            assert "queue lost jobs; sending them again" in log
            # No worker has marked this file: unhealthy.
            missing = await asyncio.to_thread(_health_check, tmp_path / "nobody.alive")
            assert missing.returncode == 1
            assert "no worker has started here" in missing.stderr
        finally:
            await sender.close()
    await _assert_loaded_once(
        sessionmaker, running, organisations=len(ods), lines=len(ods) * len(roles)
    )
    row = await _import(sessionmaker, waiting)
    assert (row.status, row.attempts, row.return_count) == (ImportStatus.succeeded, 1, 50)


async def _run_status(
    sessionmaker: async_sessionmaker[AsyncSession], run_id: uuid.UUID, *statuses: RunStatus
) -> ProjectionRun | None:
    async with sessionmaker() as session:
        run = await session.get(ProjectionRun, run_id, populate_existing=True)
        assert run is not None
        if run.status == RunStatus.failed:
            raise AssertionError(f"run failed: {run.error}")
        return run if run.status in statuses else None


async def _new_run(sessionmaker: async_sessionmaker[AsyncSession], *, iterations: int) -> uuid.UUID:
    async with transaction(sessionmaker) as session:
        run = await projection_runs.create_run(
            session,
            scenario=await projection_runs.baseline(session),
            scope=ICB_A,
            base_year=2025,
            horizon=10,
            iterations=iterations,
            seed=3,
            key_id=None,
            actor="test",
        )
        return run.id


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_redis_lost_while_runs_wait_and_run(
    database_url: str,
    db: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    reference: ReferenceLoadSummary,
    tmp_path: Path,
) -> None:
    # Returns for ICB_A's providers, loaded through the bulk path.
    ods, roles = await _seed_organisations(sessionmaker, organisations=300, roles=30)
    loaded = await _stage(sessionmaker, _import_csv(ods, roles, "2025-03-31"))
    settings = settings_for(database_url, auto_recompute=False)
    assert (
        await import_jobs.process(sessionmaker, import_id=loaded, settings=settings) == "succeeded"
    )
    async with transaction(sessionmaker) as session:
        await session.execute(delete(OutboxMessage))  # the import's job, run here directly
    queue = f"oneworkforce:fault:{uuid.uuid4().hex}"
    with PrivateRedis(tmp_path / "redis") as redis:
        sender = ArqSender(redis.url(), queue)
        relay = OutboxRelay(sessionmaker, sender)
        try:
            # 1. A run queued just before Redis dies.
            waiting = await _new_run(sessionmaker, iterations=50)
            assert await relay.send(older_than_s=0) == 1
            redis.stop()
            redis.start()

            worker = _worker(
                tmp_path, "worker", database_url=database_url, redis=redis, queue=queue
            )
            with worker:
                # 2. Another is computing when Redis dies again.
                running = await _new_run(sessionmaker, iterations=1500)
                assert await relay.send(older_than_s=0) == 1
                await _wait_for(
                    "the second run to start",
                    lambda: _run_status(sessionmaker, running, RunStatus.running),
                    worker=worker,
                    interval_s=0.02,
                )
                redis.stop()
                done = await _wait_for(
                    "the running run to finish without Redis",
                    lambda: _run_status(sessionmaker, running, RunStatus.succeeded),
                    worker=worker,
                )
                assert worker.alive, worker.log()[-4000:]
                redis.start()
                lost = await _wait_for(
                    "the lost run to be sent again and computed",
                    lambda: _run_status(sessionmaker, waiting, RunStatus.succeeded),
                    worker=worker,
                )
                assert worker.alive
        finally:
            await sender.close()
    assert lost.attempts == 1
    assert done.attempts == 1
    for run in (lost, done):
        series = select(func.count()).select_from(ProjectionSeries)
        series = series.where(ProjectionSeries.run_id == run.id)
        stored = await _count(sessionmaker, series)
        assert stored == run.timings["series"] > 0
