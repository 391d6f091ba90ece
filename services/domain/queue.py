"""Sending jobs: the outbox relay, the reconciler and the two senders (arq on Redis, or
in-process).

Delivery survives losing Redis. An outbox row is marked sent only once the queue holds its job
(or has already run it); a send that fails leaves the row for the relay's timer. A Redis that
dies after accepting a job (a non-persistent one restarts empty) loses it silently, so the
reconciler compares what the database says is waiting (queued runs, parts and imports) with
what the queue holds, and sends again any job missing for longer than QUEUE_RECONCILE_AFTER_S.
A job a worker took and died with before starting its work (the work is still queued, the job
marked in progress) counts as lost too once it has been in progress that long.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.config import Settings
from shared.db.base import utcnow
from shared.db.session import transaction
from shared.jobs import IN_PROGRESS_TIMEOUT_S
from shared.repositories import outbox, queued_work

log = logging.getLogger("oneworkforce.queue")

# Outbox rows claimed (and locked) per transaction by the relay.
SEND_BATCH = 100


class JobSender(Protocol):
    """Something that accepts a job for execution; sending the same job id twice is harmless."""

    async def send(
        self, *, job_name: str, job_id: str, payload: dict[str, Any], defer_s: float = 0.0
    ) -> None: ...

    async def ping(self) -> None: ...

    async def holds(self, job_ids: list[str]) -> set[str]:
        """Which of these jobs the queue holds: waiting (deferred too) or running."""
        ...

    async def stalled(self, job_ids: list[str], *, after_s: float) -> set[str]:
        """Which of these jobs a worker started more than `after_s` ago (and still holds)."""
        ...

    async def discard(self, job_ids: list[str]) -> None:
        """Forget these jobs (and any kept result), so the same ids can be sent again."""
        ...

    async def close(self) -> None: ...


def redis_settings(url: str) -> Any:
    """arq's connection settings for this URL; a command on a pooled connection that Redis
    closed (it restarted) is tried again on a fresh connection instead of failing."""
    from arq.connections import RedisSettings
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    settings = RedisSettings.from_dsn(url)
    settings.retry_on_error = [RedisConnectionError, RedisTimeoutError]
    settings.retry = Retry(ExponentialBackoff(cap=1.0, base=0.1), retries=2)
    return settings


class NotQueued(Exception):
    """The queue answered but holds neither the job nor its result."""


class ArqSender:
    """Enqueues on Redis for the arq workers; arq drops a second job with the same id."""

    def __init__(self, redis_url: str, queue_name: str) -> None:
        self._redis_url = redis_url
        self._queue_name = queue_name
        self._pool: Any = None

    async def _get_pool(self) -> Any:
        if self._pool is None:
            from arq import create_pool

            settings = redis_settings(self._redis_url)
            settings.conn_retries = 1
            settings.conn_timeout = 2
            self._pool = await create_pool(settings, default_queue_name=self._queue_name)
        return self._pool

    async def send(
        self, *, job_name: str, job_id: str, payload: dict[str, Any], defer_s: float = 0.0
    ) -> None:
        pool = await self._get_pool()
        job = await pool.enqueue_job(
            job_name,
            _job_id=job_id,
            _queue_name=self._queue_name,
            _defer_by=defer_s or None,
            **payload,
        )
        if job is not None:
            return
        # arq dropped it as a duplicate: fine if the job is queued, running or has run.
        if await self.holds([job_id]) or await self._has_result(job_id):
            return
        raise NotQueued(f"the queue did not keep job {job_id}")

    async def holds(self, job_ids: list[str]) -> set[str]:
        from arq.constants import in_progress_key_prefix, job_key_prefix

        if not job_ids:
            return set()
        pool = await self._get_pool()
        async with pool.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.exists(job_key_prefix + job_id, in_progress_key_prefix + job_id)
                pipe.zscore(self._queue_name, job_id)
            answers = await pipe.execute()
        return {
            job_id
            for job_id, keys, score in zip(job_ids, answers[::2], answers[1::2], strict=True)
            if keys or score is not None
        }

    async def stalled(self, job_ids: list[str], *, after_s: float) -> set[str]:
        from arq.constants import in_progress_key_prefix

        if not job_ids:
            return set()
        pool = await self._get_pool()
        async with pool.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.pttl(in_progress_key_prefix + job_id)
            ttls = await pipe.execute()
        # The mark is set for IN_PROGRESS_TIMEOUT_S when the job starts: what is gone of it
        # is how long the job has been in progress. -2 (no mark) and -1 (no expiry) are not.
        return {
            job_id
            for job_id, ttl_ms in zip(job_ids, ttls, strict=True)
            if ttl_ms >= 0 and IN_PROGRESS_TIMEOUT_S - ttl_ms / 1000 > after_s
        }

    async def _has_result(self, job_id: str) -> bool:
        from arq.constants import result_key_prefix

        pool = await self._get_pool()
        return bool(await pool.exists(result_key_prefix + job_id))

    async def discard(self, job_ids: list[str]) -> None:
        """Drop jobs whose worker died, or that were lost (see discard_arq_jobs)."""
        await discard_arq_jobs(await self._get_pool(), self._queue_name, job_ids)

    async def depth(self) -> int:
        """Jobs waiting in the queue (deferred ones included), not yet taken by a worker."""
        pool = await self._get_pool()
        return int(await asyncio.wait_for(pool.zcard(self._queue_name), timeout=2))

    async def ping(self) -> None:
        pool = await self._get_pool()
        await asyncio.wait_for(pool.ping(), timeout=2)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None


class OutboxRelay:
    """Moves committed outbox rows to the queue: right after a commit, and on a timer."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        sender: JobSender,
        *,
        settings: Settings | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._sender = sender
        self._settings = settings

    async def send(
        self, ids: Sequence[uuid.UUID] | None = None, *, older_than_s: float | None = None
    ) -> int:
        """Send unsent rows (these ids, or all older than a cut-off); return how many.

        Rows go in batches of SEND_BATCH, each in its own short transaction, so one change
        that queued thousands of jobs (a bulk import's webhooks) is sent in full, now; a pass
        stops early when the queue is unreachable or a send failed (the timer retries).
        """
        sent = 0
        if ids is not None:
            unique = list(dict.fromkeys(ids))
            for start in range(0, len(unique), SEND_BATCH):
                count, complete = await self._send_batch(
                    ids=unique[start : start + SEND_BATCH], older_than_s=older_than_s
                )
                sent += count
                if not complete:
                    break
            return sent
        while True:
            count, complete = await self._send_batch(ids=None, older_than_s=older_than_s)
            sent += count
            if not complete or count < SEND_BATCH:
                return sent

    async def _send_batch(
        self, *, ids: Sequence[uuid.UUID] | None, older_than_s: float | None
    ) -> tuple[int, bool]:
        """One batch: (rows sent, whether every row claimed was sent)."""
        sent = 0
        async with transaction(self._sessionmaker) as session:
            cutoff = outbox.stale_cutoff(older_than_s) if older_than_s is not None else None
            rows = await outbox.claim_unsent(session, ids=ids, older_than=cutoff, limit=SEND_BATCH)
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
                    if _unreachable(exc):
                        break  # the queue is down: the rest wait for the next pass
                else:
                    await outbox.mark_sent(session, message_id=row.id)
                    sent += 1
        return sent, sent == len(rows)

    async def reconcile(self, *, after_s: float) -> int:
        """Send again the jobs of work still waiting `after_s` after its job was sent, that
        the queue no longer holds; returns how many."""
        async with transaction(self._sessionmaker) as session:
            expected = await queued_work.expected_job_ids(session)
            cutoff = utcnow() - timedelta(seconds=after_s)
            rows = await outbox.sent_before(session, job_ids=expected, cutoff=cutoff)
            if not rows:
                return 0
            held = await self._sender.holds([row.job_id for row in rows])
            # A job a worker took but whose work is still waiting after `after_s` had its
            # worker die before it started the work (starting it is the first thing a job
            # does): the mark would keep the job from every other worker for the job timeout.
            stalled = await self._sender.stalled(sorted(held), after_s=after_s)
            lost = [row for row in rows if row.job_id not in held or row.job_id in stalled]
            if not lost:
                return 0
            # A result kept from an attempt that ended without starting the work would make
            # the queue drop the job again as a duplicate; a stalled job's mark goes with it.
            await self._sender.discard([row.job_id for row in lost])
            await outbox.mark_unsent(
                session,
                message_ids=[row.id for row in lost],
                note=f"the queue no longer held this job {after_s:.0f}s after it was sent",
            )
        log.warning(
            "queue lost jobs; sending them again",
            extra={
                "jobs": len(lost),
                "job_ids": [row.job_id for row in lost][:20],
                "stalled": len(stalled),
            },
        )
        await self.send([row.id for row in lost])
        return len(lost)

    async def run_forever(self, interval_s: float) -> None:
        """Send what is unsent on a timer; reconcile with the queue at the same pace."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.send(older_than_s=interval_s / 2)
            except Exception:
                log.exception("outbox relay pass failed")
            if self._settings is None:
                continue
            try:
                await self.reconcile(after_s=self._settings.queue_reconcile_after_s)
            except Exception as exc:
                log.warning(
                    "queue reconcile pass failed",
                    extra={"error": f"{type(exc).__name__}: {exc}"},
                )


def _unreachable(exc: BaseException) -> bool:
    """A connection failure (as opposed to a refused job): later rows would fail the same way."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError | TimeoutError)


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
