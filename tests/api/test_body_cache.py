"""The cache of finished runs' serialised bodies stays within BODY_CACHE_MB."""

from __future__ import annotations

from services.api.cache import BodyCache
from services.api.main import create_app
from tests.helpers import settings_for


def test_the_body_cache_never_holds_more_than_its_bound() -> None:
    cache = BodyCache(max_bytes=1000)
    for index in range(50):
        cache.put(f"etag-{index}", bytes(300))
        held = sum(len(body) for etag in map(str, range(50)) if (body := cache.get(f"etag-{etag}")))
        assert held <= 1000
    # The most recently used stay; the oldest went first.
    assert cache.get("etag-49") is not None
    assert cache.get("etag-0") is None
    # A body larger than the bound is never kept.
    cache.put("huge", bytes(1001))
    assert cache.get("huge") is None


def test_the_bound_comes_from_the_settings() -> None:
    app = create_app(settings_for("sqlite+aiosqlite://", body_cache_mb=3))
    assert app.state.body_cache.max_bytes == 3 * 1024 * 1024
    off = create_app(settings_for("sqlite+aiosqlite://", body_cache_mb=0))
    off.state.body_cache.put("etag", b"x")
    assert off.state.body_cache.get("etag") is None
