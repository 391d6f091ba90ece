"""An arq worker that rides out Redis outages instead of exiting.

arq's own worker raises out of its poll loop (and exits) at the first `ConnectionError` when
Redis goes away. This one keeps the jobs it is running (they only need the database), retries
the connection with backoff, logs once when Redis is lost and once when it is back, and carries
on polling. Work that Redis lost meanwhile (a non-persistent Redis that restarted empty) is
found by the reconciler and sent again.

It also marks its own liveness in a file (`WORKER_HEALTH_FILE`) on every turn of its loop, up
or degraded, which `oneworkforce worker --check` reads: a container healthcheck per process,
not per queue.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from arq.connections import create_pool
from arq.utils import poll
from arq.worker import Worker
from redis.exceptions import RedisError

from shared.config import Settings

log = logging.getLogger("oneworkforce.projector")

# What a lost or restarting Redis raises: redis-py's errors, and the socket's own.
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
MAX_BACKOFF_S = 2.0
# A worker whose loop has not turned for this long is wedged.
HEALTH_MAX_AGE_S = 60.0


def health_file(settings: Settings) -> Path:
    if settings.worker_health_file:
        return Path(settings.worker_health_file)
    return Path(tempfile.gettempdir()) / "oneworkforce-worker.alive"


def check_health(settings: Settings, *, max_age_s: float = HEALTH_MAX_AGE_S) -> tuple[bool, str]:
    """Is a worker on this machine (container) alive? For healthchecks."""
    path = health_file(settings)
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False, f"no worker has started here ({path} is missing)"
    state = path.read_text(encoding="utf-8").strip() or "unknown"
    if age > max_age_s:
        return False, f"the worker's loop has not turned for {age:.0f}s (last state: {state})"
    return True, f"alive {age:.1f}s ago; redis {state}"


class ResilientWorker(Worker):
    """arq's Worker with a poll loop that survives Redis going away and coming back."""

    def __init__(self, *args: Any, health_path: Path | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._health_path = health_path
        self._health_state: str | None = None
        self._redis_down_since: float | None = None
        self._backoff_s = 0.5
        self.redis_outages = 0

    def _mark_alive(self, state: str) -> None:
        """Touch the health file; when the state changes, replace it whole.

        The file is never truncated in place, so a healthcheck reading it mid-write never sees
        it empty: a new state is written beside it and renamed over it.
        """
        path = self._health_path
        if path is None:
            return
        try:
            if state == self._health_state and path.exists():
                os.utime(path)
                return
            fresh = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            fresh.write_text(state, encoding="utf-8")
            os.replace(fresh, path)
            self._health_state = state
        except OSError:  # a read-only or full disk must not stop the worker
            log.debug("could not write the worker health file", exc_info=True)

    async def _redis_unavailable(self, exc: BaseException) -> None:
        if self._redis_down_since is None:
            self._redis_down_since = time.monotonic()
            self.redis_outages += 1
            log.warning(
                "redis unavailable; running jobs carry on, polling resumes when it is back",
                extra={"error": f"{type(exc).__name__}: {exc}", "jobs_running": len(self.tasks)},
            )
        self._mark_alive("down")
        await asyncio.sleep(self._backoff_s)
        self._backoff_s = min(self._backoff_s * 2, MAX_BACKOFF_S)

    def _redis_available(self) -> None:
        if self._redis_down_since is not None:
            log.warning(
                "redis reachable again; polling resumed",
                extra={"down_s": round(time.monotonic() - self._redis_down_since, 1)},
            )
        self._redis_down_since = None
        self._backoff_s = 0.5
        self._mark_alive("up")

    async def _connect(self) -> None:
        while self._pool is None:
            try:
                self._pool = await create_pool(
                    self.redis_settings,
                    job_deserializer=self.job_deserializer,
                    job_serializer=self.job_serializer,
                    default_queue_name=self.queue_name,
                    expires_extra_ms=self.expires_extra_ms,
                )
            except REDIS_ERRORS as exc:
                await self._redis_unavailable(exc)

    async def main(self) -> None:
        await self._connect()
        log.info(
            "starting worker",
            extra={
                "functions": sorted(self.functions),
                "queue": self.queue_name,
                "pid": os.getpid(),
            },
        )
        self.ctx["redis"] = self.pool
        if self.on_startup:
            await self.on_startup(self.ctx)
        self._mark_alive("up")
        async for _ in poll(self.poll_delay_s):
            try:
                await self._poll_iteration()
                if self.burst and await self._burst_done():
                    return
            except REDIS_ERRORS as exc:
                await self._redis_unavailable(exc)
                continue
            self._redis_available()

    async def _burst_done(self) -> bool:
        if 0 <= self.max_burst_jobs <= self._jobs_started():
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
            return True
        if await self.pool.zcard(self.queue_name) == 0:
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
            return True
        return False

    async def close(self) -> None:
        try:
            await super().close()
        except REDIS_ERRORS as exc:
            # Shutting down while Redis is away: the jobs are done; nothing else to tidy.
            log.warning("redis unavailable at shutdown", extra={"error": f"{exc}"})
            if self.on_shutdown:
                await self.on_shutdown(self.ctx)
            self._pool = None
