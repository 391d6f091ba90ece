"""The job path end to end: outbox row -> relay -> runner -> job writes to the database.

Once in-process (the embedded mode) and once with a real arq worker on Redis.
"""

from __future__ import annotations

import uuid

from arq.connections import RedisSettings
from arq.worker import Worker
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.domain.queue import SEND_BATCH, ArqSender, OutboxRelay
from services.projector import worker as projector_worker
from services.projector.inprocess import InProcessRunner
from shared.context import request_id_var
from shared.db.session import transaction
from shared.jobs import JobName, PingPayload, ping_job_id
from shared.models import JobExecution, OutboxMessage
from shared.repositories import outbox
from tests.helpers import settings_for


async def _enqueue_ping(sessionmaker: async_sessionmaker[AsyncSession], token: str) -> None:
    async with transaction(sessionmaker) as session:
        await outbox.add(
            session,
            job_name=JobName.ping,
            job_id=ping_job_id(token),
            payload=PingPayload(token=token).model_dump(mode="json"),
        )


async def _executions(sessionmaker: async_sessionmaker[AsyncSession], token: str) -> list[str]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(JobExecution.runner).where(JobExecution.job_id == ping_job_id(token))
        )
        return list(rows.scalars().all())


async def _unsent(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        query = (
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.sent_at.is_(None))
        )
        return int((await session.execute(query)).scalar_one())


async def test_in_process_runner_runs_a_committed_job(app: FastAPI) -> None:
    sessionmaker = app.state.sessionmaker
    token = uuid.uuid4().hex
    await _enqueue_ping(sessionmaker, token)
    assert await app.state.relay.send() == 1
    runner: InProcessRunner = app.state.sender
    await runner.join()
    assert await _executions(sessionmaker, token) == ["inprocess"]
    assert await _unsent(sessionmaker) == 0
    # Sending the same job id again is a no-op, as with arq.
    await runner.send(job_name=JobName.ping, job_id=ping_job_id(token), payload={"token": token})
    await runner.join()
    assert await _executions(sessionmaker, token) == ["inprocess"]


async def test_relay_sends_every_row_of_a_large_change_in_batches(
    app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """More rows than one batch, after the commit (by id) and on the timer: all are sent."""
    total = 2 * SEND_BATCH + 7
    tokens = [uuid.uuid4().hex for _ in range(2 * total)]
    async with transaction(sessionmaker) as session:
        ids = await outbox.add_many(
            session,
            job_name=JobName.ping,
            jobs=[(ping_job_id(t), PingPayload(token=t).model_dump(mode="json")) for t in tokens],
        )
    assert len(ids) == 2 * total
    assert await app.state.relay.send(ids[:total]) == total
    assert await _unsent(sessionmaker) == total
    assert await app.state.relay.send(older_than_s=0) == total
    assert await _unsent(sessionmaker) == 0
    await app.state.sender.join()
    assert await _executions(sessionmaker, tokens[0]) == ["inprocess"]
    assert await _executions(sessionmaker, tokens[-1]) == ["inprocess"]


async def test_relay_keeps_rows_when_the_queue_is_down_and_resends_them(
    app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    token = uuid.uuid4().hex
    await _enqueue_ping(sessionmaker, token)
    broken = ArqSender("redis://127.0.0.1:1/0", "nowhere")
    try:
        assert await OutboxRelay(sessionmaker, broken).send() == 0
    finally:
        await broken.close()
    async with sessionmaker() as session:
        row = (await session.execute(select(OutboxMessage))).scalar_one()
    assert row.sent_at is None
    assert row.send_attempts == 1
    assert row.last_error
    # The timer pass (older_than_s=0) picks the row up once the queue is back.
    assert await app.state.relay.send(older_than_s=0) == 1
    await app.state.sender.join()
    assert await _executions(sessionmaker, token) == ["inprocess"]


async def test_outbox_rows_name_the_request_that_caused_them(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Both add() and add_many() stamp the request id, and keep one the payload already has."""
    tokens = [uuid.uuid4().hex for _ in range(3)]
    token = request_id_var.set("req-outbox")
    try:
        async with transaction(sessionmaker) as session:
            await outbox.add(
                session,
                job_name=JobName.ping,
                job_id=ping_job_id(tokens[0]),
                payload={"token": "a"},
            )
            await outbox.add_many(
                session,
                job_name=JobName.ping,
                jobs=[
                    (ping_job_id(tokens[1]), {"token": "b"}),
                    (ping_job_id(tokens[2]), {"token": "c", "request_id": "req-earlier"}),
                ],
            )
    finally:
        request_id_var.reset(token)
    async with sessionmaker() as session:
        rows = (await session.execute(select(OutboxMessage.job_id, OutboxMessage.payload))).all()
    by_job = {job_id: payload.get("request_id") for job_id, payload in rows}
    assert by_job == {
        ping_job_id(tokens[0]): "req-outbox",
        ping_job_id(tokens[1]): "req-outbox",
        ping_job_id(tokens[2]): "req-earlier",
    }


async def test_rolled_back_work_sends_nothing(
    app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    token = uuid.uuid4().hex
    try:
        async with transaction(sessionmaker) as session:
            await outbox.add(
                session, job_name=JobName.ping, job_id=ping_job_id(token), payload={"token": token}
            )
            raise RuntimeError("the change behind the job failed")
    except RuntimeError:
        pass
    assert await app.state.relay.send(older_than_s=0) == 0
    assert await _executions(sessionmaker, token) == []


async def test_arq_worker_runs_the_job_from_redis(
    database_url: str,
    db: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis_url: str,
) -> None:
    queue = f"oneworkforce:test:{uuid.uuid4().hex}"
    token = uuid.uuid4().hex
    await _enqueue_ping(sessionmaker, token)
    sender = ArqSender(redis_url, queue)
    try:
        assert await OutboxRelay(sessionmaker, sender).send() == 1
        # A second send of the same job id is dropped by arq.
        await sender.send(
            job_name=JobName.ping, job_id=ping_job_id(token), payload={"token": token}
        )
    finally:
        await sender.close()
    settings = settings_for(database_url, redis_url=redis_url, queue_name=queue)
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
    assert worker.jobs_complete == 1
    assert worker.jobs_failed == 0
    assert await _executions(sessionmaker, token) == ["arq"]
