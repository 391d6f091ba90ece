"""Projection jobs on a real arq worker (Redis), and the reaper re-queueing a run whose worker
stopped beating, with exactly one result set after the retry."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from arq.connections import RedisSettings
from arq.worker import Worker
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.domain.projections import runs as projection_runs
from services.domain.queue import ArqSender, OutboxRelay
from services.domain.reference.loader import ReferenceLoadSummary
from services.projector import pipeline
from services.projector import worker as projector_worker
from shared.db.base import utcnow
from shared.models import OutboxMessage, ProjectionRun, ProjectionSeries
from tests.api.projections.helpers import run_projection, setup_icb
from tests.factories import ICB_A
from tests.helpers import KeyFactory, settings_for


async def _result_count(sessionmaker: async_sessionmaker[AsyncSession], run_id: str) -> int:
    async with sessionmaker() as session:
        query = select(func.count()).select_from(ProjectionSeries)
        query = query.where(ProjectionSeries.run_id == uuid.UUID(run_id))
        return int((await session.execute(query)).scalar_one())


async def test_reaper_requeues_a_stuck_run_and_the_retry_leaves_one_result_set(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
) -> None:
    sessionmaker = app.state.sessionmaker
    admin = await make_key("admin")
    await setup_icb(client, sessionmaker, admin)
    run = await run_projection(client, app, admin, scope=ICB_A, horizon=3, iterations=5)
    expected = await _result_count(sessionmaker, run["id"])
    run_id = uuid.UUID(run["id"])
    # As if the worker died mid-run: running, with a heartbeat long past.
    async with sessionmaker() as session:
        await session.execute(
            update(ProjectionRun)
            .where(ProjectionRun.id == run_id)
            .values(status="running", heartbeat_at=utcnow() - timedelta(hours=1))
        )
        await session.commit()
    settings = app.state.settings
    assert await projection_runs.reap(sessionmaker, settings=settings) == {
        "requeued": 1,
        "failed": 0,
    }
    async with sessionmaker() as session:
        job_ids = set(
            (
                await session.execute(
                    select(OutboxMessage.job_id).where(OutboxMessage.sent_at.is_(None))
                )
            )
            .scalars()
            .all()
        )
    assert f"run_projection:{run_id}:2" in job_ids
    await app.state.relay.send(older_than_s=0)
    await app.state.sender.join()
    status = (await client.get(f"/v1/projections/{run_id}", headers=admin)).json()
    assert status["status"] == "succeeded"
    assert status["attempts"] == 2
    assert await _result_count(sessionmaker, run["id"]) == expected
    # The first attempt's job arriving late is a no-op.
    env = pipeline.JobEnv(sessionmaker=sessionmaker, settings=settings)
    assert await pipeline.run_projection(env, run_id=run_id, attempt=1) == "succeeded"


async def test_arq_worker_runs_an_icb_projection(
    database_url: str,
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
    redis_url: str,
) -> None:
    sessionmaker = app.state.sessionmaker
    admin = await make_key("admin")
    await setup_icb(client, sessionmaker, admin)
    queue = f"oneworkforce:test:{uuid.uuid4().hex}"
    settings = settings_for(database_url, redis_url=redis_url, queue_name=queue)
    async with sessionmaker() as session:
        run = await projection_runs.create_run(
            session,
            scenario=await projection_runs.baseline(session),
            scope=ICB_A,
            base_year=2025,
            horizon=3,
            iterations=10,
            seed=1,
            key_id=None,
            actor="test",
        )
        await session.commit()
    sender = ArqSender(redis_url, queue)
    try:
        assert await OutboxRelay(sessionmaker, sender).send(older_than_s=0) >= 1
    finally:
        await sender.close()
    worker = Worker(
        functions=projector_worker.WorkerSettings.functions,
        redis_settings=RedisSettings.from_dsn(redis_url),
        queue_name=queue,
        burst=True,
        on_startup=projector_worker.startup,
        on_shutdown=projector_worker.shutdown,
        ctx={"settings": settings},
        handle_signals=False,
        poll_delay=0.05,
    )
    try:
        await worker.main()
    finally:
        await worker.close()
    assert worker.jobs_failed == 0
    status = (await client.get(f"/v1/projections/{run.id}", headers=admin)).json()
    assert status["status"] == "succeeded"
    assert await _result_count(sessionmaker, str(run.id)) > 0
