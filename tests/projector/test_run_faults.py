"""Faults in the middle of an England run, with real worker processes and real servers:

- one of two `oneworkforce worker` processes killed with SIGKILL while it computes a part;
- PostgreSQL (a private cluster: never the shared one) restarted while parts run;
- Redis (a private, non-persistent server) killed while parts run and started again empty.

Each run ends succeeded (after retries and the reaper) or failed with a reason; no part is left
queued or running, and a succeeded run has exactly one complete result set.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.domain.reference.loader import ReferenceLoadSummary, load_reference
from shared.db import migrate
from shared.db.session import make_engine, make_sessionmaker
from shared.models import ProjectionRun, ProjectionRunPart, ProjectionSeries, RunStatus
from tests.faults import PrivatePostgres, PrivateRedis, ProjectorWorker
from tests.helpers import KeyFactory
from tests.projector.england import (
    EnglandShape,
    assert_one_complete_result_set,
    england_app,
    expected_rows,
    open_parts,
    request_england,
    setup_england,
)

ICB_COUNT = 10
HORIZON = 15
# Enough organisations and Monte Carlo runs that a part computes for a while.
ORGANISATIONS_PER_ICB = 40
ITERATIONS = 1000
HEARTBEAT_TIMEOUT_S = 2.0
RECONCILE_AFTER_S = 5.0
DEADLINE_S = 240.0


def _environment(database_url: str, redis_url: str, queue: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "QUEUE_NAME": queue,
        "WORKER_MAX_JOBS": "4",
        "WORKER_METRICS_PORT": "0",
        "RUN_HEARTBEAT_TIMEOUT_S": str(HEARTBEAT_TIMEOUT_S),
        "AUTO_RECOMPUTE": "false",
        "QUEUE_RECONCILE_AFTER_S": str(RECONCILE_AFTER_S),
    }


async def _run_state(
    sessionmaker: async_sessionmaker[AsyncSession], run_id: uuid.UUID
) -> tuple[ProjectionRun | None, dict[str, int]]:
    """The run and its parts by status; (None, {}) while the database does not answer."""
    try:
        async with sessionmaker() as session:
            run = await session.get(ProjectionRun, run_id)
            parts = dict(
                (
                    await session.execute(
                        select(ProjectionRunPart.status, func.count())
                        .where(ProjectionRunPart.run_id == run_id)
                        .group_by(ProjectionRunPart.status)
                    )
                ).all()
            )
    except Exception:
        return None, {}
    return run, {str(status): int(count) for status, count in parts.items()}


async def _wait_for(
    sessionmaker: async_sessionmaker[AsyncSession],
    run_id: uuid.UUID,
    condition: Callable[[ProjectionRun, dict[str, int]], bool],
    *,
    started: float,
    logs: Callable[[], str],
) -> tuple[ProjectionRun, dict[str, int]]:
    while True:
        assert time.monotonic() - started < DEADLINE_S, logs()
        run, parts = await _run_state(sessionmaker, run_id)
        if run is not None and condition(run, parts):
            return run, parts
        await asyncio.sleep(0.1)


def _ended(run: ProjectionRun, parts: dict[str, int]) -> bool:
    del parts
    return run.status in (RunStatus.succeeded, RunStatus.failed)


async def _assert_ended_cleanly(
    sessionmaker: async_sessionmaker[AsyncSession],
    run: ProjectionRun,
    shape: EnglandShape,
) -> None:
    assert await open_parts(sessionmaker, run.id) == 0
    if run.status == RunStatus.succeeded:
        await assert_one_complete_result_set(
            sessionmaker, run.id, expected=expected_rows(shape, HORIZON), icbs=shape.icbs
        )
        return
    # Failed: with its reason, and no partial results.
    assert run.error
    async with sessionmaker() as session:
        rows = (
            await session.execute(select(func.count()).where(ProjectionSeries.run_id == run.id))
        ).scalar_one()
    assert rows == 0


async def _drop_queue(redis_url: str, queue: str, run_id: uuid.UUID) -> None:
    redis = Redis.from_url(redis_url)
    try:
        keys = [queue, f"{queue}:health-check"]
        keys += [key async for key in redis.scan_iter(match=f"arq:*{run_id}*")]
        await redis.delete(*keys)
    finally:
        await redis.aclose()


@asynccontextmanager
async def _england_requested(
    database_url: str, redis_url: str, queue: str, key: dict[str, str]
) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], EnglandShape, uuid.UUID]]:
    """The API sending to these workers' queue, England's organisations and returns set up,
    and an England run requested."""
    async with england_app(
        database_url,
        workers=1,
        redis_url=redis_url,
        queue_name=queue,
        run_heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S,
        queue_reconcile_after_s=RECONCILE_AFTER_S,
    ) as (app, client):
        sessionmaker = app.state.sessionmaker
        shape = await setup_england(
            client,
            sessionmaker,
            key,
            icb_count=ICB_COUNT,
            organisations_per_icb=ORGANISATIONS_PER_ICB,
        )
        run_id = await request_england(client, key, horizon=HORIZON, iterations=ITERATIONS)
        yield sessionmaker, shape, run_id


def _running_part_jobs(log: str) -> set[str]:
    """project_ics jobs a worker's log shows started and not finished."""
    started: set[str] = set()
    finished: set[str] = set()
    for raw in log.splitlines():
        if not raw.startswith("{"):
            continue
        line = json.loads(raw)
        message = str(line.get("msg", ""))
        if line.get("logger") == "arq.worker" and "\u2192 project_ics:" in message:
            started.add(message.split("\u2192 ", 1)[1].split(":project_ics(")[0])
        if line.get("msg") == "job finished" and line.get("job_name") == "project_ics":
            finished.add(str(line.get("job_id")))
    return started - finished


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_worker_killed_in_the_middle_of_england_leaves_the_run_to_the_other(
    database_url: str,
    db: AsyncEngine,
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
    redis_url: str,
    tmp_path: Path,
) -> None:
    admin = await make_key("admin")
    queue = f"oneworkforce:test:kill-england:{uuid.uuid4().hex}"
    environment = _environment(database_url, redis_url, queue)
    doomed = ProjectorWorker(tmp_path / "doomed.log", **environment)
    survivor = ProjectorWorker(tmp_path / "survivor.log", **environment)
    run_id = uuid.uuid4()
    started = time.monotonic()

    def logs() -> str:
        return doomed.log()[-3000:] + "\n" + survivor.log()[-3000:]

    try:
        with doomed, survivor:
            async with _england_requested(database_url, redis_url, queue, admin) as (
                sessionmaker,
                shape,
                run_id,
            ):
                # Kill the first worker while it computes a part.
                while not _running_part_jobs(doomed.log()):
                    assert time.monotonic() - started < DEADLINE_S, logs()
                    run, _ = await _run_state(sessionmaker, run_id)
                    assert run is None or run.status != RunStatus.succeeded, logs()
                    await asyncio.sleep(0.05)
                assert doomed.kill() == -9
                killed_jobs = _running_part_jobs(doomed.log())
                run, _ = await _wait_for(sessionmaker, run_id, _ended, started=started, logs=logs)
                assert run.status == RunStatus.succeeded, (run.error, logs())
                await _assert_ended_cleanly(sessionmaker, run, shape)
                # The killed parts were taken over: a second attempt finished each of them.
                async with sessionmaker() as session:
                    attempts = dict(
                        (
                            await session.execute(
                                select(
                                    ProjectionRunPart.ics_code, ProjectionRunPart.attempts
                                ).where(ProjectionRunPart.run_id == run_id)
                            )
                        ).all()
                    )
                # Each killed job's part ends succeeded, by the dead worker's attempt only if it
                # committed in the instant before its "finished" line; otherwise by a later
                # attempt (a part claimed and left running is re-queued by the reaper) or by the
                # job sent again (one the dead worker took but had not started is reconciled).
                for job in killed_jobs:
                    assert job.split(":")[2] in attempts, (job, attempts)
                async with sessionmaker() as session:
                    unfinished = (
                        await session.execute(
                            select(func.count()).where(
                                ProjectionRunPart.run_id == run_id,
                                ProjectionRunPart.status != RunStatus.succeeded,
                            )
                        )
                    ).scalar_one()
                assert unfinished == 0
                assert survivor.alive
    finally:
        await _drop_queue(redis_url, queue, run_id)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_postgres_restarted_during_an_england_run(
    database_url: str,
    make_key: KeyFactory,
    redis_url: str,
    tmp_path: Path,
) -> None:
    """The run's own database is a private cluster, restarted (every connection cut) while
    parts compute; the workers retry and the run ends cleanly."""
    del database_url, make_key  # the shared database is not used here
    queue = f"oneworkforce:test:pg-restart:{uuid.uuid4().hex}"
    run_id = uuid.uuid4()
    with PrivatePostgres() as server:
        url = server.create_database("owf_restart")
        await asyncio.to_thread(migrate.upgrade, async_url(url))
        engine = make_engine(async_url(url))
        sessionmaker = make_sessionmaker(engine)
        try:
            await load_reference(sessionmaker, actor="test")
            key = await _admin_key(sessionmaker)
            environment = _environment(url, redis_url, queue)
            workers = [
                ProjectorWorker(tmp_path / f"worker-{index}.log", **environment)
                for index in range(2)
            ]
            started = time.monotonic()

            def logs() -> str:
                return "\n".join(w.log()[-3000:] for w in workers) + server.log()[-2000:]

            with workers[0], workers[1]:
                async with _england_requested(url, redis_url, queue, key) as (
                    _,
                    shape,
                    run_id,
                ):
                    await _wait_for(
                        sessionmaker,
                        run_id,
                        lambda run, parts: parts.get(RunStatus.running, 0) > 0,
                        started=started,
                        logs=logs,
                    )
                    server.restart("fast")
                    run, _ = await _wait_for(
                        sessionmaker, run_id, _ended, started=started, logs=logs
                    )
                    await _assert_ended_cleanly(sessionmaker, run, shape)
                    assert run.status == RunStatus.succeeded, (run.error, logs())
                    assert all(worker.alive for worker in workers), logs()
        finally:
            await engine.dispose()
            await _drop_queue(redis_url, queue, run_id)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_redis_lost_during_an_england_fan_out(
    database_url: str,
    db: AsyncEngine,
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
    tmp_path: Path,
) -> None:
    """Redis dies with every waiting part job while parts compute, and comes back empty: the
    workers reconnect, the reconciler sends the lost parts' jobs again, the run ends once."""
    admin = await make_key("admin")
    queue = f"oneworkforce:test:redis-england:{uuid.uuid4().hex}"
    with PrivateRedis(tmp_path / "redis") as redis:
        environment = _environment(database_url, redis.url(), queue)
        workers = [
            ProjectorWorker(tmp_path / f"worker-{index}.log", **environment) for index in range(2)
        ]
        started = time.monotonic()

        def logs() -> str:
            return "\n".join(w.log()[-3000:] for w in workers)

        with workers[0], workers[1]:
            async with _england_requested(database_url, redis.url(), queue, admin) as (
                sessionmaker,
                shape,
                run_id,
            ):
                await _wait_for(
                    sessionmaker,
                    run_id,
                    lambda run, parts: parts.get(RunStatus.running, 0) > 0,
                    started=started,
                    logs=logs,
                )
                redis.stop()
                await asyncio.sleep(2)
                redis.start()
                run, _ = await _wait_for(sessionmaker, run_id, _ended, started=started, logs=logs)
                assert run.status == RunStatus.succeeded, (run.error, logs())
                await _assert_ended_cleanly(sessionmaker, run, shape)
                assert all(worker.alive for worker in workers), logs()


def async_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


async def _admin_key(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    from services.api.keys import service as keys_service
    from shared.db.session import transaction
    from shared.models import KeyScope
    from shared.schemas.keys import ApiKeyCreate

    async with transaction(sessionmaker) as session:
        _, secret = await keys_service.create_key(
            session,
            ApiKeyCreate(name="restart", scope=KeyScope.admin),
            actor="test",
            actor_key_id=None,
        )
    return {"Authorization": f"Bearer {secret}"}
