"""Pure ASGI middleware: request ids, the access log line and metrics (limits: gate.py)."""

from __future__ import annotations

import logging
import re
import time
import uuid
import zlib
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.errors import problem
from services.api.http import accepts
from shared.context import request_id_var

log = logging.getLogger("oneworkforce.access")

REQUESTS = Counter(
    "oneworkforce_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
LATENCY = Histogram(
    "oneworkforce_http_request_duration_seconds",
    "HTTP request duration",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# Metric children by label values: prometheus-client's labels() costs more than the rest of
# a cached 304, so each combination is looked up once.
_CHILDREN: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _metrics(method: str, template: str, status: int, elapsed: float) -> None:
    key = (method, template, status)
    children = _CHILDREN.get(key)
    if children is None:
        children = _CHILDREN[key] = (
            REQUESTS.labels(method, template, str(status)),
            LATENCY.labels(method, template),
        )
    children[0].inc()
    children[1].observe(elapsed)


_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestContextMiddleware:
    """Gives every request an id (echoed in X-Request-ID), logs one line and counts it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status_holder = [500]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"x-request-id" for name, _ in headers):
                    headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            _metrics(method, template, status_holder[0], elapsed)
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "request",
                    extra={
                        "method": method,
                        "path": scope["path"],
                        "status": status_holder[0],
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )


_NOT_COMPRESSED_TYPES = (
    b"application/vnd.openxmlformats",  # xlsx is a zip already
    b"application/zip",
    b"application/gzip",
    b"image/",
)


class GZipMiddleware:
    """gzip for clients that accept it, chunk by chunk, so streamed exports stay streamed.

    Responses that already carry a Content-Encoding (a body stored compressed), 304s, small
    bodies and already-compressed types pass untouched. A strong ETag becomes weak on a body
    compressed here (RFC 9110 8.8.1: the bytes differ from the identity form); If-None-Match
    compares weakly, so either form revalidates.
    """

    def __init__(self, app: ASGIApp, *, minimum_size: int = 1024, level: int = 5) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.level = level

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _accepts_gzip(scope):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        compressor: Any = None
        passthrough = False

        async def gzip_send(message: Message) -> None:
            nonlocal start, compressor, passthrough
            if message["type"] == "http.response.start":
                start = message
                headers = message.get("headers", [])
                names = {name.lower(): value for name, value in headers}
                content_type = names.get(b"content-type", b"")
                passthrough = (
                    message["status"] < 200
                    or message["status"] in (204, 304)
                    or b"content-encoding" in names
                    or content_type.startswith(_NOT_COMPRESSED_TYPES)
                )
                # A client that takes gzip sees weak ETags on every answer, 304s and small
                # bodies included, so the validator it holds is the one it is shown again.
                start = {**message, "headers": _weak_etag(headers)}
                if passthrough:
                    await send(start)
                return
            if message["type"] != "http.response.body" or passthrough:
                await send(message)
                return
            body: bytes = message.get("body", b"")
            more_body: bool = message.get("more_body", False)
            if compressor is None:
                assert start is not None
                if not more_body and len(body) < self.minimum_size:
                    passthrough = True
                    await send(start)
                    await send(message)
                    return
                compressor = zlib.compressobj(self.level, zlib.DEFLATED, 31)
                await send({**start, "headers": _gzip_headers(start.get("headers", []))})
            data = compressor.compress(body)
            if not more_body:
                data += compressor.flush()
            if data or not more_body:
                await send({"type": "http.response.body", "body": data, "more_body": more_body})

        await self.app(scope, receive, gzip_send)


def _accepts_gzip(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"accept-encoding":
            return b"gzip" in value.lower()
    return False


def _weak_etag(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [
        (name, b"W/" + value)
        if name.lower() == b"etag" and not value.startswith(b"W/")
        else (name, value)
        for name, value in headers
    ]


def _gzip_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    vary_seen = False
    for name, value in headers:
        lower = name.lower()
        if lower == b"content-length":
            continue
        if lower == b"etag" and not value.startswith(b"W/"):
            value = b"W/" + value
        if lower == b"vary":
            vary_seen = True
            if b"accept-encoding" not in value.lower():
                value = value + b", Accept-Encoding"
        out.append((name, value))
    out.append((b"content-encoding", b"gzip"))
    if not vary_seen:
        out.append((b"vary", b"Accept-Encoding"))
    return out


class AcceptMiddleware:
    """406 for a GET whose Accept allows nothing the route would answer with.

    Routes that offer several representations negotiate themselves (and answer 406 before
    doing any work); this catches the rest: the response's own type is checked against
    Accept, and an unacceptable success is replaced by a 406 problem naming what is offered.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        accept = ""
        for name, value in scope["headers"]:
            if name == b"accept":
                accept = value.decode("latin-1")
                break
        if not accept or "*/*" in accept:
            await self.app(scope, receive, send)
            return
        refused = False

        async def checked_send(message: Message) -> None:
            nonlocal refused
            if refused:
                return
            if message["type"] == "http.response.start" and 200 <= message["status"] < 300:
                content_type = ""
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        content_type = value.decode("latin-1").split(";")[0].strip().lower()
                if content_type and not accepts(accept, content_type):
                    refused = True
                    response = problem(
                        406,
                        code="not_acceptable",
                        detail="None of the media types in Accept can be produced here.",
                        available=[content_type],
                        headers={"Vary": "Accept"},
                    )
                    await response(scope, receive, send)
                    return
            await send(message)

        await self.app(scope, receive, checked_send)
