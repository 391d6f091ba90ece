"""A 304 for the latest projection answered before routing, from the caches alone.

Integrations poll `/v1/areas/{code}/projections/latest` with If-None-Match. When the key, the
area and "which run is the latest" are all in the short-lived caches, whether the client's
copy is current is a dictionary lookup: this middleware answers that 304 itself, without the
router, dependency injection or the middleware below it. Anything else (no If-None-Match, a
cache miss, a changed version, a bad parameter, a cross-origin request) goes down the normal
path, which gives the same answers with every check; so the shortcut can only ever say "not
modified" when the full route would have said it too. Its requests count against the key's
rate limit like any other.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from services.api.cache import KeyCache, TtlCache
from services.api.http import etag_matches
from services.api.projections import router as latest_route
from services.api.projections import service
from shared.errors import DomainError
from shared.models import ALL_ROLES

_PATH = re.compile(r"^/v1/areas/([A-Za-z0-9]{1,16})/projections/latest$")
# What the request-metrics middleware labels the answer with (the route's template).
_ROUTE = SimpleNamespace(path="/v1/areas/{code}/projections/latest")


class _CacheMiss(Exception):
    """A cache could not answer: take the full path."""


async def _no_session() -> AsyncSession:
    raise _CacheMiss


_PARSED: dict[tuple[bytes, bytes | None], latest_route.LatestQuery] = {}


def _parsed(query_string: bytes, accept: bytes | None) -> latest_route.LatestQuery:
    """The checked parameters, remembered by their raw bytes (pollers repeat them)."""
    key = (query_string, accept)
    query = _PARSED.get(key)
    if query is None:
        query = latest_route.parse_latest_query(
            QueryParams(query_string.decode("latin-1")),
            None if accept is None else accept.decode("latin-1"),
        )
        if len(_PARSED) > 1000:
            _PARSED.clear()
        _PARSED[key] = query
    return query


class LatestNotModifiedMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            match = _PATH.match(scope["path"])
            if match is not None:
                headers = await self._not_modified(scope, match.group(1))
                if headers is not None:
                    scope["route"] = _ROUTE
                    await send({"type": "http.response.start", "status": 304, "headers": headers})
                    await send({"type": "http.response.body", "body": b""})
                    return
        await self.app(scope, receive, send)

    async def _not_modified(self, scope: Scope, code: str) -> list[tuple[bytes, bytes]] | None:
        headers = dict(scope["headers"])
        if_none_match = headers.get(b"if-none-match")
        if if_none_match is None or b"origin" in headers:
            return None
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        state = scope["app"].state
        key_cache: KeyCache = state.key_cache
        principal = key_cache.get(token.strip()) if scheme.lower() == "bearer" else None
        if principal is None or b"%" in scope["query_string"]:
            # Unknown keys and encoded parameters (checked for control characters by the
            # gate) take the full path.
            return None
        limiter = getattr(state, "rate_limiter", None)
        if limiter is not None and await limiter.hit_key(str(principal.key_id)) is not None:
            return None  # over the limit: the gate answers 429
        accept = headers.get(b"accept")
        try:
            query = _parsed(scope["query_string"], accept)
            if query.roles:
                areas_cache: TtlCache = state.areas_cache
                known = areas_cache.get(("role-codes",))
                wanted = {role for role in query.roles if role != ALL_ROLES}
                if not isinstance(known, frozenset) or not wanted <= known:
                    return None
            found = await service.latest_for_area(
                _no_session,
                principal=principal,
                area_code=code,
                scenario=query.scenario,
                areas_cache=state.areas_cache,
                latest_cache=state.latest_cache,
            )
        except (_CacheMiss, DomainError):
            return None
        if found is None:
            return None
        run_id, area_code, stale, _ = found
        if stale:
            return None  # its version names the fresh run on its way: the full path looks it up
        etag = latest_route.latest_etag(run_id, area_code, stale, query)
        if not etag_matches(if_none_match.decode("latin-1"), etag):
            return None
        gzipped = b"gzip" in headers.get(b"accept-encoding", b"")
        return [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in latest_route.latest_headers(etag, gzipped=gzipped).items()
        ]
