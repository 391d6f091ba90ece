"""Rate limits per API key and, for requests without a valid key, per client address.

Counts live in Redis in full mode (shared by every API process) and in memory in the embedded
mode, through the `limits` library's moving window (exact: no burst at a window's edge). A
limit that is hit is answered 429 with `Retry-After`. If Redis cannot be reached the request
is let through (and logged): losing the limiter must not take the API down with it.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from fastapi.responses import JSONResponse
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import ConnectionPool

from services.api.errors import problem_for
from shared.config import Settings
from shared.errors import RateLimited

log = logging.getLogger("oneworkforce.api")

KEY_PREFIX = "oneworkforce:ratelimit"


class RateLimiter:
    """Checks and counts one request against the caller's limit."""

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limit_enabled
        self.per_key: RateLimitItem = parse(settings.rate_limit_per_key)
        self.per_address: RateLimitItem = parse(settings.rate_limit_per_address)
        self._pool: ConnectionPool | None = None
        self.storage: Storage
        if settings.redis_url:
            # Our own pool, so the API can close its connections when it stops.
            self._pool = ConnectionPool.from_url(settings.redis_url)
            options: dict[str, Any] = {"connection_pool": self._pool}
            self.storage = RedisStorage(
                "async+" + settings.redis_url,
                implementation="redispy",
                key_prefix=KEY_PREFIX,
                **options,
            )
        else:
            self.storage = MemoryStorage()
        self.strategy = MovingWindowRateLimiter(self.storage)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.disconnect()

    async def hit_key(self, key_id: str) -> JSONResponse | None:
        """None when the key is within its limit, else the 429 answer."""
        return await self._hit(self.per_key, "key", key_id)

    async def hit_address(self, address: str) -> JSONResponse | None:
        """None when the address is within the limit for requests without a valid key."""
        return await self._hit(self.per_address, "address", address)

    async def _hit(self, limit: RateLimitItem, kind: str, identity: str) -> JSONResponse | None:
        if not self.enabled:
            return None
        try:
            if await self.strategy.hit(limit, kind, identity):
                return None
            stats = await self.strategy.get_window_stats(limit, kind, identity)
        except Exception as exc:
            log.warning("rate limiter unavailable; request let through: %s", type(exc).__name__)
            return None
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        return problem_for(
            RateLimited(
                f"Too many requests for this {kind}: the limit is {limit}. "
                f"Retry after {retry_after} s.",
                headers={"Retry-After": str(retry_after)},
                limit=str(limit),
            )
        )
