"""The contract the OpenAPI document makes, checked against what the test suite observes.

Every request a test sends through httpx's ASGI transport is recorded as (method, route,
status). At the end of the run each observed status must be declared on its operation in the
committed docs/openapi.json, so an answer the document does not list fails the suite.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx
from fastapi.routing import APIRoute

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"

Observed = set[tuple[str, str, int]]
observed: Observed = set()

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


def recording(app: ASGIApp) -> ASGIApp:
    """`app`, noting the route and status of every HTTP answer."""

    async def recorder(
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        status: list[int] = []

        async def noting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        try:
            await app(scope, receive, noting_send)
        finally:
            route = scope.get("route")
            if (
                status
                and isinstance(route, APIRoute)
                and route.include_in_schema
                and scope["method"] in (route.methods or ())
                and route.endpoint.__module__.startswith("services.")
            ):
                observed.add((scope["method"].lower(), route.path_format, status[0]))

    return recorder


def install() -> None:
    """Record through every ASGITransport the tests create."""
    original = httpx.ASGITransport.__init__
    if getattr(original, "_records", False):
        return

    def init(self: httpx.ASGITransport, app: ASGIApp, *args: Any, **kwargs: Any) -> None:
        original(self, recording(app), *args, **kwargs)

    init._records = True  # type: ignore[attr-defined]
    httpx.ASGITransport.__init__ = init  # type: ignore[method-assign]


def undeclared(document: dict[str, Any], seen: Observed) -> list[str]:
    """Observed answers that the document does not declare on their operation."""
    missing = []
    for method, path, status in sorted(seen):
        operation = document.get("paths", {}).get(path, {}).get(method)
        if operation is None:
            missing.append(f"{method.upper()} {path}: not in the document")
        elif str(status) not in operation.get("responses", {}):
            missing.append(f"{method.upper()} {path} answered {status}, which is not declared")
    return missing


def check_observed() -> list[str]:
    return undeclared(json.loads(DOCUMENT.read_text()), observed)
