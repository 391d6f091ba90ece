"""A projector worker process killed (SIGKILL) in the middle of a run: the reaper re-queues the
run, a fresh worker finishes it, and exactly one complete result set is stored.

Needs PostgreSQL (the worker is a separate process sharing the database) and Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from arq.connections import RedisSettings
from arq.constants import (
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from arq.worker import Worker
from redis.asyncio import Redis
from sqlalchemy import distinct, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.domain.demo import DEMO_ICB, demo_dates, load_demo
from services.domain.projections import runs as projection_runs
from services.domain.queue import ArqSender, OutboxRelay
from services.domain.reference.loader import ReferenceLoadSummary
from services.projector import pipeline
from services.projector import worker as projector_worker
from shared.db.session import transaction
from shared.jobs import run_projection_job_id
from shared.models import ProjectionExplain, ProjectionRun, ProjectionSeries, RunStatus
from shared.repositories import projections as projections_repo
from shared.vocab.measures import MEASURES
from tests.helpers import settings_for

# Enough Monte Carlo runs over the demo ICB (about 1,000 organisations, 15,000 lines) that the
# model step takes seconds, so the kill lands while the first attempt is computing.
ITERATIONS = 2000
# The demo's returns end at the last 31 March; the population projections run to 2043.
BASE_YEAR = demo_dates(date.today())[1].year
HORIZON = min(15, 2043 - BASE_YEAR)
# The worker process beats every quarter of this; the reaper below uses a shorter timeout.
WORKER_HEARTBEAT_TIMEOUT_S = 2.0
REAPER_TIMEOUT_S = 1.0
DEADLINE_S = 120.0


async def _run_row(
    sessionmaker: async_sessionmaker[AsyncSession], run_id: uuid.UUID
) -> ProjectionRun:
    async with sessionmaker() as session:
        run = await projections_repo.get_run(session, run_id=run_id)
        assert run is not None
        return run


async def _count(sessionmaker: async_sessionmaker[AsyncSession], query: Any) -> int:
    async with sessionmaker() as session:
        return int((await session.execute(query)).scalar_one())


def _worker_command() -> list[str]:
    script = Path(sys.executable).with_name("oneworkforce")
    assert script.exists(), f"the oneworkforce command is not installed beside {sys.executable}"
    return [str(script), "worker"]


@contextlib.contextmanager
def _worker_process(
    database_url: str, redis_url: str, queue: str, log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`oneworkforce worker` as its own process on this queue; killed if still alive at exit."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "QUEUE_NAME": queue,
        "RUN_HEARTBEAT_TIMEOUT_S": str(WORKER_HEARTBEAT_TIMEOUT_S),
        "LOG_JSON": "true",
    }
    with log_path.open("wb") as log:
        # cwd outside the checkout, so no .env file there can change the worker's settings.
        process = subprocess.Popen(
            _worker_command(),
            env=env,
            cwd=log_path.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


async def drop_cron_jobs(redis: Redis, queue: str) -> None:
    """Take the cron jobs a worker process scheduled out of the queue."""
    crons = [item for item in await redis.zrange(queue, 0, -1) if item.startswith(b"cron:")]
    if crons:
        await redis.zrem(queue, *crons)
        await redis.delete(*(job_key_prefix.encode() + item for item in crons))


async def _delete_queue_keys(redis: Redis, queue: str, job_ids: list[str]) -> None:
    queued = [item.decode() for item in await redis.zrange(queue, 0, -1)]
    keys = [queue, f"{queue}:health-check"]
    for job_id in {*job_ids, *queued}:
        keys += [
            prefix + job_id
            for prefix in (job_key_prefix, in_progress_key_prefix, result_key_prefix)
        ]
        keys.append(retry_key_prefix + job_id)
    await redis.delete(*keys)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_killed_worker_leaves_one_complete_result_set_after_the_retry(
    database_url: str,
    db: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    reference: ReferenceLoadSummary,
    seeded_roles: list[str],
    redis_url: str,
    tmp_path: Path,
) -> None:
    assert database_url.startswith("postgresql")
    started = time.monotonic()
    queue = f"oneworkforce:test:kill:{uuid.uuid4().hex}"
    async with transaction(sessionmaker) as session:
        await load_demo(session, ics_code=DEMO_ICB)
    async with transaction(sessionmaker) as session:
        run = await projection_runs.create_run(
            session,
            scenario=await projection_runs.baseline(session),
            scope=DEMO_ICB,
            base_year=BASE_YEAR,
            horizon=HORIZON,
            iterations=ITERATIONS,
            seed=7,
            key_id=None,
            actor="test",
        )
    run_id = run.id
    first_job, second_job = run_projection_job_id(run_id, 1), run_projection_job_id(run_id, 2)
    redis = Redis.from_url(redis_url)
    sender = ArqSender(redis_url, queue)
    relay = OutboxRelay(sessionmaker, sender)
    log_path = tmp_path / "worker.log"
    try:
        # 1. The first attempt, on a real worker process, killed while it computes.
        with _worker_process(database_url, redis_url, queue, log_path) as process:
            assert await relay.send(older_than_s=0) == 1
            while True:
                assert time.monotonic() - started < DEADLINE_S, log_path.read_text()
                assert process.poll() is None, log_path.read_text()
                seen = await _run_row(sessionmaker, run_id)
                if seen.status == RunStatus.running and seen.progress > 0:
                    break
                assert seen.status in (RunStatus.queued, RunStatus.running), seen.error
                await asyncio.sleep(0.05)
            os.kill(process.pid, signal.SIGKILL)
            assert process.wait(timeout=30) == -signal.SIGKILL
        # The dead worker's cron entries (the reapers) are not this test's jobs: the burst
        # worker below runs the job functions only.
        await drop_cron_jobs(redis, queue)
        assert seen.attempts == 1
        assert seen.heartbeat_at is not None
        assert 0 < seen.progress < 1
        killed = await _run_row(sessionmaker, run_id)
        assert killed.status == RunStatus.running
        assert killed.attempts == 1
        run_results = select(func.count()).select_from(ProjectionSeries)
        run_results = run_results.where(ProjectionSeries.run_id == run_id)
        assert await _count(sessionmaker, run_results) == 0
        # arq still holds the dead job as in progress (until its timeout, an hour away); the
        # retry below has its own job id, so that does not block it.
        assert await redis.exists(in_progress_key_prefix + first_job) == 1

        # 2. The reaper sees the heartbeat stop and re-queues the run as attempt 2.
        reaper_settings = settings_for(database_url, run_heartbeat_timeout_s=REAPER_TIMEOUT_S)
        while True:
            assert time.monotonic() - started < DEADLINE_S
            counts = await projection_runs.reap(
                sessionmaker, settings=reaper_settings, discard=sender.discard
            )
            if counts["requeued"]:
                break
            assert counts == {"requeued": 0, "failed": 0}
            await asyncio.sleep(0.2)
        assert counts == {"requeued": 1, "failed": 0}
        assert (await _run_row(sessionmaker, run_id)).status == RunStatus.queued
        assert await relay.send(older_than_s=0) == 1
        assert await redis.exists(job_key_prefix + second_job) == 1
        # The reaper also took the dead attempt's job out of the queue, so nothing waits on it.
        assert await redis.exists(in_progress_key_prefix + first_job) == 0
        assert await redis.zscore(queue, first_job) is None

        # The killed worker's next cron passes (reapers, reconciler) wait in the queue; the burst
        # worker below registers only the job functions, so they go.
        crons = [item for item in await redis.zrange(queue, 0, -1) if item.startswith(b"cron:")]
        if crons:
            await redis.zrem(queue, *crons)

        # 3. A fresh worker in burst mode runs the retry and stops: the queue is empty after it.
        worker = Worker(
            functions=projector_worker.WorkerSettings.functions,
            redis_settings=RedisSettings.from_dsn(redis_url),
            queue_name=queue,
            on_startup=projector_worker.startup,
            on_shutdown=projector_worker.shutdown,
            ctx={"settings": settings_for(database_url, redis_url=redis_url, queue_name=queue)},
            handle_signals=False,
            poll_delay=0.05,
            burst=True,
        )
        try:
            await asyncio.wait_for(worker.main(), timeout=DEADLINE_S)
        finally:
            await worker.close()
        assert (worker.jobs_complete, worker.jobs_failed, worker.jobs_retried) == (1, 0, 0)

        # 4. One complete result set.
        done = await _run_row(sessionmaker, run_id)
        assert done.status == RunStatus.succeeded, done.error
        assert done.attempts == 2
        assert done.progress == 1.0
        async with sessionmaker() as session:
            loaded = await pipeline.load_inputs(session, done, DEMO_ICB)
        inputs = loaded.inputs
        n_roles = len(inputs.role_codes)
        groups = (
            len(set((inputs.cell_area * n_roles + inputs.cell_role).tolist()))  # LAD x role
            + len(set(inputs.cell_area.tolist()))  # LAD, all roles
            + len(set(inputs.cell_role.tolist()))  # ICB x role
            + 1  # ICB, all roles
        )
        expected_series = groups * len(MEASURES)
        assert await _count(sessionmaker, run_results) == expected_series
        assert done.timings["series"] == expected_series
        explain_rows = select(func.count()).select_from(ProjectionExplain)
        explain_rows = explain_rows.where(ProjectionExplain.run_id == run_id)
        distinct_explain = select(
            func.count(distinct(tuple_(ProjectionExplain.area_code, ProjectionExplain.role_code)))
        ).where(ProjectionExplain.run_id == run_id)
        assert await _count(sessionmaker, explain_rows) == groups
        assert await _count(sessionmaker, distinct_explain) == groups
        # Every year of every group is there: nothing half-written by the killed attempt.
        async with sessionmaker() as session:
            rows = await projections_repo.list_results(
                session, projections_repo.ResultFilter(run_id=run_id)
            )
        assert len(rows) == expected_series * (HORIZON + 1)
        assert len({row[:5] for row in rows}) == expected_series
        assert len({row[5] for row in rows}) == HORIZON + 1
    finally:
        await sender.close()
        await _delete_queue_keys(redis, queue, [first_job, second_job])
        await redis.aclose()
