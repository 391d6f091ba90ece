"""The embedded projector: the same job functions as the arq worker, run inside the API process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from typing import Any

import httpx
from arq import Retry
from sqlalchemy.ext.asyncio import AsyncEngine

from services.domain.webhooks import delivery as webhook_delivery
from services.projector.context import WorkerContext
from services.projector.registry import JOBS, JobSpec
from shared.config import Settings
from shared.db.session import make_sessionmaker

log = logging.getLogger("oneworkforce.projector")

_SEEN_LIMIT = 10_000


class InProcessRunner:
    """A small asyncio job runner with arq's semantics: unique job ids, retries on `Retry`."""

    def __init__(self, settings: Settings, engine: AsyncEngine) -> None:
        self._settings = settings
        self._engine = engine
        self._specs: dict[str, JobSpec] = {spec.name: spec for spec in JOBS}
        self._queue: asyncio.Queue[tuple[str, str, dict[str, Any], int]] = asyncio.Queue()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._tasks: list[asyncio.Task[None]] = []
        self._active = 0
        self._deferred = 0
        # Jobs waiting (queued or deferred) or running here; the queue "holds" these.
        self._held: set[str] = set()
        self._running: set[str] = set()
        self._http: httpx.AsyncClient | None = None

    def start(self) -> None:
        self._http = webhook_delivery.http_client()
        # SQLite has one writer at a time: jobs running side by side there would only queue
        # on its lock (and could time out on it), so the embedded runner takes them in turn.
        workers = 1 if self._settings.is_sqlite else max(1, self._settings.inprocess_workers)
        for index in range(workers):
            self._tasks.append(asyncio.create_task(self._work(), name=f"projector-{index}"))

    async def send(
        self, *, job_name: str, job_id: str, payload: dict[str, Any], defer_s: float = 0.0
    ) -> None:
        if job_name not in self._specs:
            raise ValueError(f"unknown job {job_name!r}")
        if job_id in self._seen:
            return
        self._seen[job_id] = None
        while len(self._seen) > _SEEN_LIMIT:
            self._seen.popitem(last=False)
        self._held.add(job_id)
        self._schedule(defer_s, (job_name, job_id, payload, 1))

    async def holds(self, job_ids: list[str]) -> set[str]:
        """Which of these jobs are waiting or running here."""
        return {job_id for job_id in job_ids if job_id in self._held}

    async def stalled(self, job_ids: list[str], *, after_s: float) -> set[str]:
        """None: a job that starts here runs in this process, which cannot die without it."""
        del job_ids, after_s
        return set()

    async def discard(self, job_ids: list[str]) -> None:
        """Forget finished or lost jobs, so the same ids can be sent again."""
        for job_id in job_ids:
            self._seen.pop(job_id, None)

    def running_here(self, job_id: str) -> bool:
        return job_id in self._running

    def _schedule(self, delay_s: float, item: tuple[str, str, dict[str, Any], int]) -> None:
        if delay_s <= 0:
            self._queue.put_nowait(item)
            return
        self._active += 1  # a deferred job counts as pending until it lands on the queue
        self._deferred += 1

        def release() -> None:
            self._queue.put_nowait(item)
            self._active -= 1
            self._deferred -= 1

        asyncio.get_running_loop().call_later(delay_s, release)

    async def depth(self) -> int:
        """Jobs waiting to run (deferred ones included)."""
        return self._queue.qsize() + self._deferred

    async def ping(self) -> None:
        return None

    async def join(self, timeout_s: float = 60.0) -> None:
        """Wait until every sent job has finished (used by tests and the CLI)."""
        async with asyncio.timeout(timeout_s):
            while self._active or not self._queue.empty():
                await asyncio.sleep(0.02)

    async def _work(self) -> None:
        while True:
            job_name, job_id, payload, attempt = await self._queue.get()
            self._active += 1
            self._running.add(job_id)
            try:
                await self._run_one(job_name, job_id, payload, attempt)
            finally:
                self._running.discard(job_id)
                self._active -= 1
                self._queue.task_done()

    async def _run_one(
        self, job_name: str, job_id: str, payload: dict[str, Any], attempt: int
    ) -> None:
        spec = self._specs[job_name]
        ctx: WorkerContext = {
            "settings": self._settings,
            "engine": self._engine,
            "sessionmaker": make_sessionmaker(self._engine, settings=self._settings),
            "runner": "inprocess",
            "sender": self,
            "job_id": job_id,
            "job_try": attempt,
        }
        if self._http is not None:
            ctx["http"] = self._http
        try:
            async with asyncio.timeout(spec.timeout_s):
                await spec.coroutine(ctx, **payload)
        except Retry as retry:
            if attempt < spec.tries(self._settings):
                delay = float(retry.defer_score or 0) / 1000 if retry.defer_score else 1.0
                log.warning("job will retry", extra={"job_id": job_id, "attempt": attempt})
                self._schedule(delay, (job_name, job_id, payload, attempt + 1))
                return
            log.error("job failed after retries", extra={"job_id": job_id})
        except Exception:
            log.exception("job failed", extra={"job_id": job_id, "attempt": attempt})
        self._held.discard(job_id)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._http is not None:
            await self._http.aclose()
            self._http = None
