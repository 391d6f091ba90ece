"""Sending jobs: the outbox relay and the two senders (arq on Redis, or in-process)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.session import transaction
from shared.repositories import outbox

log = logging.getLogger("oneworkforce.queue")


class JobSender(Protocol):
    """Something that accepts a job for execution; sending the same job id twice is harmless."""

    async def send(
        self, *, job_name: str, job_id: str, payload: dict[str, Any], defer_s: float = 0.0
    ) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class ArqSender:
    """Enqueues on Redis for the arq workers; arq drops a second job with the same id."""

    def __init__(self, redis_url: str, queue_name: str) -> None:
        self._redis_url = redis_url
        self._queue_name = queue_name
        self._pool: Any = None

    async def _get_pool(self) -> Any:
        if self._pool is None:
            from arq import create_pool
            from arq.connections import RedisSettings

            settings = RedisSettings.from_dsn(self._redis_url)
            settings.conn_retries = 1
            settings.conn_timeout = 2
            self._pool = await create_pool(settings, default_queue_name=self._queue_name)
        return self._pool

    async def send(
        self, *, job_name: str, job_id: str, payload: dict[str, Any], defer_s: float = 0.0
    ) -> None:
        pool = await self._get_pool()
        await pool.enqueue_job(
            job_name,
            _job_id=job_id,
            _queue_name=self._queue_name,
            _defer_by=defer_s or None,
            **payload,
        )

    async def discard(self, job_ids: list[str]) -> None:
        """Drop jobs whose worker died (see discard_arq_jobs)."""
        await discard_arq_jobs(await self._get_pool(), self._queue_name, job_ids)

    async def ping(self) -> None:
        pool = await self._get_pool()
        await asyncio.wait_for(pool.ping(), timeout=2)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None


class OutboxRelay:
    """Moves committed outbox rows to the queue: right after a commit, and on a timer."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], sender: JobSender) -> None:
        self._sessionmaker = sessionmaker
        self._sender = sender

    async def send(
        self, ids: Sequence[uuid.UUID] | None = None, *, older_than_s: float | None = None
    ) -> int:
        """Send unsent rows (these ids, or all older than a cut-off); return how many."""
        sent = 0
        async with transaction(self._sessionmaker) as session:
            cutoff = outbox.stale_cutoff(older_than_s) if older_than_s is not None else None
            rows = await outbox.claim_unsent(session, ids=ids, older_than=cutoff)
            for row in rows:
                try:
                    await self._sender.send(
                        job_name=row.job_name,
                        job_id=row.job_id,
                        payload=dict(row.payload),
                        defer_s=row.defer_s,
                    )
                except Exception as exc:  # the timer retries; one bad send must not stop others
                    log.warning(
                        "outbox send failed",
                        extra={"job_id": row.job_id, "error": f"{type(exc).__name__}: {exc}"},
                    )
                    await outbox.mark_failed(session, message_id=row.id, error=repr(exc))
                else:
                    await outbox.mark_sent(session, message_id=row.id)
                    sent += 1
        return sent

    async def run_forever(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.send(older_than_s=interval_s / 2)
            except Exception:
                log.exception("outbox relay pass failed")


async def discard_arq_jobs(redis: Any, queue_name: str, job_ids: Sequence[str]) -> None:
    """Take jobs whose worker died out of an arq queue, with their bookkeeping keys."""
    from arq.constants import (
        in_progress_key_prefix,
        job_key_prefix,
        result_key_prefix,
        retry_key_prefix,
    )

    if not job_ids:
        return
    await redis.zrem(queue_name, *job_ids)
    keys = [
        prefix + job_id
        for job_id in job_ids
        for prefix in (in_progress_key_prefix, job_key_prefix, retry_key_prefix, result_key_prefix)
    ]
    await redis.delete(*keys)
