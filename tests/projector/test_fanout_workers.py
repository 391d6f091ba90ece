"""England fans out over two `oneworkforce worker` processes at WORKER_MAX_JOBS=4 on
PostgreSQL and Redis, five times: every run succeeds with exactly one complete result set and
the numbers of a run done one job at a time. The workers' JSON log lines name the job, the run
and the request that caused it, and each serves its own /metrics."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from services.domain.reference.loader import ReferenceLoadSummary
from tests.faults import ProjectorWorker, free_port
from tests.helpers import KeyFactory
from tests.projector.england import (
    assert_one_complete_result_set,
    england_app,
    england_run,
    expected_rows,
    open_parts,
    request_england,
    result_numbers,
    setup_england,
    wait_until_ended,
)

ICB_COUNT = 12
HORIZON = 5
ITERATIONS = 40
REPEATS = 5


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for raw in text.splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


async def drop_queue(redis_url: str, queue: str, runs: list[uuid.UUID]) -> None:
    """This test's queue and the jobs and results of its runs."""
    redis = Redis.from_url(redis_url)
    try:
        keys = [queue, f"{queue}:health-check"]
        for run_id in runs:
            keys += [key async for key in redis.scan_iter(match=f"arq:*{run_id}*")]
        await redis.delete(*keys)
    finally:
        await redis.aclose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_england_on_two_worker_processes_succeeds_every_time(
    database_url: str,
    db: AsyncEngine,
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
    redis_url: str,
    tmp_path: Path,
) -> None:
    admin = await make_key("admin")
    async with england_app(database_url, workers=1) as (app, client):
        shape = await setup_england(client, app.state.sessionmaker, admin, icb_count=ICB_COUNT)
        one_at_a_time = await england_run(
            app, client, admin, horizon=HORIZON, iterations=ITERATIONS
        )
        reference_numbers = await result_numbers(app.state.sessionmaker, one_at_a_time)
    expected = expected_rows(shape, HORIZON)

    queue = f"oneworkforce:test:fanout:{uuid.uuid4().hex}"
    ports = [free_port(), free_port()]
    environment = {
        "DATABASE_URL": database_url.replace("+asyncpg", ""),
        "REDIS_URL": redis_url,
        "QUEUE_NAME": queue,
        "WORKER_MAX_JOBS": "4",
        "AUTO_RECOMPUTE": "false",
    }
    workers = [
        ProjectorWorker(
            tmp_path / f"worker-{index}.log", WORKER_METRICS_PORT=str(port), **environment
        )
        for index, port in enumerate(ports)
    ]
    runs: list[uuid.UUID] = []
    try:
        with workers[0], workers[1]:
            async with england_app(
                database_url, workers=1, redis_url=redis_url, queue_name=queue
            ) as (app, client):
                sessionmaker = app.state.sessionmaker
                for index in range(REPEATS):
                    run_id = await request_england(
                        client,
                        admin,
                        horizon=HORIZON,
                        iterations=ITERATIONS,
                        request_id=f"fanout-{index}",
                    )
                    runs.append(run_id)
                    ended = await wait_until_ended(sessionmaker, run_id, timeout_s=180)
                    logs = "\n".join(worker.log()[-3000:] for worker in workers)
                    assert ended.error is None, logs
                    await assert_one_complete_result_set(
                        sessionmaker, run_id, expected=expected, icbs=shape.icbs
                    )
                    assert await open_parts(sessionmaker, run_id) == 0
                    assert await result_numbers(sessionmaker, run_id) == reference_numbers
            async with httpx.AsyncClient() as http:
                scraped = [
                    (await http.get(f"http://127.0.0.1:{port}/metrics")).text for port in ports
                ]
            assert all(worker.alive for worker in workers)
    finally:
        await drop_queue(redis_url, queue, runs)

    # Both processes took parts of the runs, and said so in JSON lines naming the job, the
    # run, the ICB and the request that caused it.
    finished_parts = []
    for worker in workers:
        lines = json_lines(worker.log())
        parts = [
            line
            for line in lines
            if line.get("msg") == "job finished" and line.get("job_name") == "project_ics"
        ]
        assert parts, worker.log()[-2000:]
        finished_parts.extend(parts)
        started = [line for line in lines if line.get("msg") == "projector worker started"]
        assert started[0]["max_jobs"] == 4
        # The parts' models ran in the worker's model processes (one per CPU by default), and
        # gave the same numbers as the reference run's threads (above).
        assert started[0]["model_processes"] == min(4, len(os.sched_getaffinity(0)))
    assert len(finished_parts) == REPEATS * ICB_COUNT
    for line in finished_parts:
        index = runs.index(uuid.UUID(line["run_id"]))
        assert line["request_id"] == f"fanout-{index}"
        assert line["job_id"] == f"project_ics:{line['run_id']}:{line['ics_code']}:1"
        assert line["ics_code"] in shape.icbs
    # Each worker's own /metrics counts the jobs it ran and reads the runs from the database.
    counted = 0.0
    for text in scraped:
        for row in text.splitlines():
            if row.startswith('oneworkforce_jobs_total{job="project_ics",outcome="succeeded"}'):
                counted += float(row.rsplit(" ", 1)[1])
        assert 'oneworkforce_projection_runs{status="succeeded"}' in text
        assert "oneworkforce_outbox_oldest_unsent_age_seconds" in text
        assert "oneworkforce_queue_depth" in text
    assert counted == REPEATS * ICB_COUNT
