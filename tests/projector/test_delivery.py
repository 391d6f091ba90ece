"""Delivery that survives losing the queue: an outbox row reads `sent` only when the queue holds
its job, and the reconciler sends again the job of any run or import still queued that the
queue no longer holds (a Redis that restarted empty, an embedded projector that restarted)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta

from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.api.keys import service as keys_service
from services.api.returns import imports as imports_service
from services.domain.projections import runs as projection_runs
from services.domain.queue import ArqSender, OutboxRelay
from services.projector.inprocess import InProcessRunner
from shared.db.base import utcnow
from shared.db.session import transaction
from shared.jobs import IN_PROGRESS_TIMEOUT_S, import_returns_job_id, run_projection_job_id
from shared.models import ImportStatus, KeyScope, OutboxMessage, ReturnImport
from shared.schemas.keys import ApiKeyCreate, Principal
from tests.api.returns.helpers import counts, line
from tests.api.returns.test_imports import bulk_csv, orgs
from tests.factories import ICB_A
from tests.helpers import settings_for

__all__ = ["orgs"]


async def _queued_import(sessionmaker: async_sessionmaker[AsyncSession]) -> uuid.UUID:
    async def chunks() -> AsyncIterator[bytes]:
        yield bulk_csv([("RBT", "2025-03-31", line()), ("1-101010101", "2025-03-31", line())])

    async with transaction(sessionmaker) as session:
        key, _ = await keys_service.create_key(
            session,
            ApiKeyCreate(name=f"k-{uuid.uuid4().hex[:6]}", scope=KeyScope.admin),
            actor="test",
            actor_key_id=None,
        )
        principal = Principal(key_id=key.id, name=key.name, scope=KeyScope.admin)
        return (await imports_service.accept(session, chunks(), principal=principal)).id


async def _queued_run(sessionmaker: async_sessionmaker[AsyncSession]) -> uuid.UUID:
    async with transaction(sessionmaker) as session:
        run = await projection_runs.create_run(
            session,
            scenario=await projection_runs.baseline(session),
            scope=ICB_A,
            base_year=date.today().year - 1,
            horizon=3,
            iterations=10,
            seed=1,
            key_id=None,
            actor="test",
        )
        return run.id


async def _age_sent_rows(sessionmaker: async_sessionmaker[AsyncSession], seconds: float) -> None:
    """As if every sent row had been sent this long ago."""
    async with transaction(sessionmaker) as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.sent_at.is_not(None))
            .values(sent_at=utcnow() - timedelta(seconds=seconds))
        )


async def _rows(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, OutboxMessage]:
    async with sessionmaker() as session:
        rows = (await session.execute(select(OutboxMessage))).scalars().all()
        return {row.job_id: row for row in rows}


async def test_a_job_the_queue_lost_is_sent_again_after_the_timeout(
    orgs: dict[str, uuid.UUID],
    sessionmaker: async_sessionmaker[AsyncSession],
    redis_url: str,
) -> None:
    queue = f"oneworkforce:test:delivery:{uuid.uuid4().hex}"
    import_id = await _queued_import(sessionmaker)
    run_id = await _queued_run(sessionmaker)
    jobs = [import_returns_job_id(import_id, 1), run_projection_job_id(run_id, 1)]
    sender = ArqSender(redis_url, queue)
    relay = OutboxRelay(sessionmaker, sender)
    redis = Redis.from_url(redis_url)
    try:
        assert await relay.send(older_than_s=0) == 2
        assert await sender.holds(jobs) == set(jobs)
        # Held jobs are never sent again, however long they wait for a worker.
        await _age_sent_rows(sessionmaker, 3600)
        assert await relay.reconcile(after_s=60) == 0

        # Redis restarts empty: both jobs are gone, while the database still says queued.
        await redis.delete(queue, *(job_key_prefix + job for job in jobs))
        assert await sender.holds(jobs) == set()
        # A result kept from an earlier delivery would make arq drop the re-send as a duplicate.
        await redis.set(result_key_prefix + jobs[0], b"stale")
        await _age_sent_rows(sessionmaker, 30)
        assert await relay.reconcile(after_s=60) == 0  # not yet: within the timeout
        await _age_sent_rows(sessionmaker, 61)
        assert await relay.reconcile(after_s=60) == 2
        assert await sender.holds(jobs) == set(jobs)
        rows = await _rows(sessionmaker)
        assert set(rows) == set(jobs)  # the same jobs again, not new ones
        for job in jobs:
            assert rows[job].sent_at is not None
            assert rows[job].send_attempts == 2
        # Work that has started is no longer waiting for its job: nothing to reconcile.
        async with transaction(sessionmaker) as session:
            await session.execute(
                update(ReturnImport)
                .where(ReturnImport.id == import_id)
                .values(status=ImportStatus.running, attempts=1)
            )
        await redis.delete(queue, *(job_key_prefix + job for job in jobs))
        await _age_sent_rows(sessionmaker, 61)
        assert await relay.reconcile(after_s=60) == 1
        assert await sender.holds(jobs) == {run_projection_job_id(run_id, 1)}
    finally:
        await sender.discard(jobs)
        await redis.delete(queue)
        await sender.close()
        await redis.aclose()


async def test_a_job_whose_worker_died_before_starting_the_work_is_sent_again(
    orgs: dict[str, uuid.UUID],
    sessionmaker: async_sessionmaker[AsyncSession],
    redis_url: str,
) -> None:
    """A worker took the job (arq marked it in progress) and died before claiming the run:
    the mark would hide the job from every other worker for the job timeout."""
    queue = f"oneworkforce:test:delivery:{uuid.uuid4().hex}"
    run_id = await _queued_run(sessionmaker)
    job = run_projection_job_id(run_id, 1)
    sender = ArqSender(redis_url, queue)
    relay = OutboxRelay(sessionmaker, sender)
    redis = Redis.from_url(redis_url)
    try:
        assert await relay.send(older_than_s=0) == 1
        await _age_sent_rows(sessionmaker, 3600)

        async def taken(seconds_ago: float) -> None:
            # What arq's worker writes when it starts a job, as if that were `seconds_ago`.
            left_ms = int((IN_PROGRESS_TIMEOUT_S - seconds_ago) * 1000)
            await redis.psetex(in_progress_key_prefix + job, left_ms, b"1")

        await taken(5)
        assert await sender.stalled([job], after_s=60) == set()
        assert await relay.reconcile(after_s=60) == 0  # a live worker is about to claim it
        await taken(90)
        assert await sender.stalled([job], after_s=60) == {job}
        assert await relay.reconcile(after_s=60) == 1
        # Sent again: waiting in the queue for any worker, the dead one's mark gone.
        assert not await redis.exists(in_progress_key_prefix + job)
        assert await redis.zscore(queue, job) is not None
        assert (await _rows(sessionmaker))[job].send_attempts == 2
    finally:
        await sender.discard([job])
        await redis.delete(queue)
        await sender.close()
        await redis.aclose()


async def test_a_send_is_confirmed_only_when_the_queue_holds_the_job(
    orgs: dict[str, uuid.UUID],
    sessionmaker: async_sessionmaker[AsyncSession],
    redis_url: str,
) -> None:
    queue = f"oneworkforce:test:delivery:{uuid.uuid4().hex}"
    run_id = await _queued_run(sessionmaker)
    job = run_projection_job_id(run_id, 1)
    sender = ArqSender(redis_url, queue)
    try:
        redis = Redis.from_url(redis_url)
        try:
            payload = {"run_id": str(run_id)}
            await sender.send(job_name="run_projection", job_id=job, payload=payload)
            assert await sender.holds([job]) == {job}
            # A second send of a held job is dropped by arq and still confirmed.
            await sender.send(job_name="run_projection", job_id=job, payload=payload)
            assert await redis.zcard(queue) == 1
            await redis.delete(queue, job_key_prefix + job)
            assert await sender.holds([job]) == set()
            await sender.send(job_name="run_projection", job_id=job, payload=payload)
            assert await sender.holds([job]) == {job}
        finally:
            await redis.aclose()
        # A queue that cannot be reached confirms nothing: the row stays unsent.
        broken = ArqSender("redis://127.0.0.1:1/0", queue)
        try:
            assert await OutboxRelay(sessionmaker, broken).send(older_than_s=0) == 0
        finally:
            await broken.close()
        row = (await _rows(sessionmaker))[job]
        assert row.sent_at is None
        assert row.last_error
    finally:
        await sender.discard([job])
        await sender.close()


async def test_an_embedded_projector_that_restarted_gets_its_waiting_import_again(
    orgs: dict[str, uuid.UUID],
    sessionmaker: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    database_url: str,
) -> None:
    settings = settings_for(database_url)
    import_id = await _queued_import(sessionmaker)
    job = import_returns_job_id(import_id, 1)
    # The API process that sent the job stopped before running it: its queue was in memory.
    before = InProcessRunner(settings, engine)
    assert await OutboxRelay(sessionmaker, before).send(older_than_s=0) == 1
    assert await before.holds([job]) == {job}
    await before.close()
    after = InProcessRunner(settings, engine)
    after.start()
    try:
        relay = OutboxRelay(sessionmaker, after)
        assert await after.holds([job]) == set()
        await _age_sent_rows(sessionmaker, 61)
        assert await relay.reconcile(after_s=60) == 1
        await after.join()
        async with sessionmaker() as session:
            row = await session.get(ReturnImport, import_id)
            assert row is not None
            assert (row.status, row.attempts) == (ImportStatus.succeeded, 1)
        assert await counts(sessionmaker) == (2, 2, 0)
        assert await relay.reconcile(after_s=0) == 0
    finally:
        await after.close()
