"""The access gate: everything the API decides about a request before its body is read.

For each request the gate finds the route, and before a single body byte is received:
authenticates the key the route needs (401 without one), checks its scope (403), applies the
rate limits (429), refuses control characters in the path and query (422), and then lets the
body through under the route's size limit (413): the upload limit only for the CSV upload
routes sent as CSV, the JSON limit for every other route whatever its Content-Type says.
Answers given before the body is read keep the connection; the server discards the rest of
the body as it arrives, in constant memory.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.errors import problem_for, unavailable_response
from services.api.keys import service as keys
from services.api.ratelimit import RateLimiter
from shared.db.faults import is_unavailable
from shared.db.session import transaction
from shared.errors import (
    ControlCharacter,
    DomainError,
    InsufficientScope,
    PayloadTooLarge,
    field_error,
)
from shared.models import KeyScope
from shared.schemas.keys import Principal

log = logging.getLogger("oneworkforce.api")

F = TypeVar("F", bound=Callable[..., Any])

UPLOAD_TYPES = ("text/csv", "multipart/form-data", "application/octet-stream")
# C0 controls other than tab, line feed and carriage return, and DEL.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Probes and scrapers that must answer even when a client address is over its limit.
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
ANY_KEY = "any"


def upload_route(endpoint: F) -> F:
    """Marks an endpoint that accepts CSV uploads up to the upload size limit."""
    endpoint.__dict__["accepts_upload"] = True
    return endpoint


def requires_scope(scope: KeyScope | str) -> Callable[[F], F]:
    """Marks a dependency as the key check of the routes that use it (read by the gate)."""

    def mark(check: F) -> F:
        check.__dict__["required_scope"] = scope
        return check

    return mark


@dataclass(frozen=True)
class RoutePolicy:
    required: KeyScope | str | None  # None: no key needed
    accepts_upload: bool


_RANK = {KeyScope.read: 0, KeyScope.submit: 1, KeyScope.admin: 2}


def _stricter(a: KeyScope | str | None, b: KeyScope | str | None) -> KeyScope | str | None:
    if a is None or a == ANY_KEY:
        return b if b is not None else a
    if b is None or b == ANY_KEY:
        return a
    return a if _RANK[KeyScope(a)] >= _RANK[KeyScope(b)] else b


def _required(dependant: Dependant) -> KeyScope | str | None:
    found: KeyScope | str | None = getattr(dependant.call, "required_scope", None)
    for child in dependant.dependencies:
        found = _stricter(found, _required(child))
    return found


def policy_of(route: APIRoute) -> RoutePolicy:
    return RoutePolicy(
        required=_required(route.dependant),
        accepts_upload=bool(getattr(route.endpoint, "accepts_upload", False)),
    )


_OPEN = RoutePolicy(required=None, accepts_upload=False)


def flatten(routes: list[BaseRoute]) -> list[BaseRoute]:
    """The application's routes in matching order, with included routers opened up."""
    flat: list[BaseRoute] = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            flat.extend(flatten(included.routes))
        else:
            flat.append(route)
    return flat


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.strip() not in (b"", b"0")
        if name == b"transfer-encoding":
            return True
    return False


def _control_characters(scope: Scope) -> str | None:
    """Where a control character is, if the path or query has one."""
    if CONTROL_CHARACTERS.search(scope["path"]):
        return "path"
    query = scope.get("query_string", b"")
    if query and CONTROL_BYTES.search(unquote_to_bytes(query.replace(b"+", b" "))):
        return "query"
    return None


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class AccessGate:
    """Pure ASGI middleware; see the module docstring."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, max_upload_bytes: int, limiter: RateLimiter
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes
        self.limiter = limiter
        self._table: list[tuple[BaseRoute, RoutePolicy]] | None = None

    def _routes(self, scope: Scope) -> list[tuple[BaseRoute, RoutePolicy]]:
        if self._table is None:
            self._table = [
                (route, policy_of(route) if isinstance(route, APIRoute) else _OPEN)
                for route in flatten(scope["app"].router.routes)
            ]
        return self._table

    def _policy(self, scope: Scope) -> RoutePolicy:
        for route, policy in self._routes(scope):
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return policy
        return _OPEN

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        try:
            refusal = await self._check(scope)
        except Exception as exc:
            if is_unavailable(exc):
                log.warning("database unavailable while authenticating: %s", type(exc).__name__)
                refusal = unavailable_response()
            else:
                raise
        if refusal is not None:
            await self._refuse(scope, receive, send, refusal)
            return
        policy = self._policy(scope)
        await self._limited(scope, receive, send, policy)

    async def _check(self, scope: Scope) -> Any:
        policy = self._policy(scope)
        principal: Principal | None = None
        if policy.required is not None:
            token = _bearer(scope)
            try:
                if token is None:
                    raise keys.missing_credentials()
                principal = await authenticate(scope, token)
            except DomainError as exc:
                limited = await self.limiter.hit_address(client_address(scope))
                return limited or problem_for(exc, instance=scope["path"])
            limited = await self.limiter.hit_key(str(principal.key_id))
            if limited is not None:
                return limited
            if policy.required != ANY_KEY and not principal.has(KeyScope(policy.required)):
                return problem_for(
                    InsufficientScope(f"This needs a key with the '{policy.required}' scope."),
                    instance=scope["path"],
                )
            scope.setdefault("state", {})["principal"] = principal
        elif scope["path"] not in UNLIMITED_PATHS:
            limited = await self.limiter.hit_address(client_address(scope))
            if limited is not None:
                return limited
        where = _control_characters(scope)
        if where is not None:
            error = ControlCharacter(
                f"The {where} holds a control character, which no field accepts.",
                errors=[
                    field_error(where, ControlCharacter.code, "control characters are not allowed")
                    | {"in": where}
                ],
            )
            return problem_for(error, instance=scope["path"])
        return None

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, response: Any) -> None:
        # The body is never read by the application. The connection is kept: the server
        # discards whatever of the body still arrives, chunk by chunk, and the client reads the
        # answer. (Closing a socket with unread input resets it, and the answer is lost.)
        await response(scope, receive, send)

    async def _limited(
        self, scope: Scope, receive: Receive, send: Send, policy: RoutePolicy
    ) -> None:
        if scope["method"] in ("GET", "HEAD") or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        upload = policy.accepts_upload and content_type.startswith(UPLOAD_TYPES)
        limit = self.max_upload_bytes if upload else self.max_body_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, _too_large(limit))
            return
        scan = _JsonControlScan() if _is_json(content_type) else None
        received = 0
        refusal: Any = None
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, refusal
            if refusal is not None:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    refusal = _too_large(limit)
                elif scan is not None and scan.finds(chunk):
                    refusal = _control_in_json()
                if refusal is not None:
                    # Tell the app the client went away; the gate answers instead.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if refusal is not None:
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if refusal is None:
                raise
        if refusal is not None and not response_started:
            await refusal(scope, receive, send)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip()
    return media == "application/json" or media.endswith("+json")


class _JsonControlScan:
    """Finds a JSON escape of a control character (\\u0000 and the like) in a streamed body.

    Raw control characters are already invalid JSON; escaped ones would reach the database.
    Tab, line feed and carriage return stay allowed. The last bytes of each chunk are kept so
    an escape split across two chunks is still seen."""

    PATTERN = re.compile(rb"(?<!\\)(?:\\\\)*\\u00(?:0[0-8bBcCeEfF]|1[0-9a-fA-F]|7[fF])")
    KEEP = 32

    def __init__(self) -> None:
        self.tail = b""

    def finds(self, chunk: bytes) -> bool:
        window = self.tail + chunk
        self.tail = window[-self.KEEP :]
        return self.PATTERN.search(window) is not None


def _control_in_json() -> Any:
    return problem_for(
        ControlCharacter(
            "A text value in the JSON body holds a control character (such as \\u0000).",
            errors=[
                field_error("body", ControlCharacter.code, "control characters are not allowed")
                | {"in": "body"}
            ],
        )
    )


def _too_large(limit: int) -> Any:
    return problem_for(
        PayloadTooLarge(
            f"The body is larger than the limit of {limit} bytes for this route.", limit=limit
        )
    )


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return str(token.strip())
            return None
    return None


async def authenticate(scope: Scope, token: str) -> Principal:
    """The principal for a bearer token, from the short-lived key cache or the database."""
    state = scope["app"].state
    principal: Principal | None = state.key_cache.get(token)
    if principal is None:
        async with transaction(state.sessionmaker) as session:
            principal = await keys.authenticate(session, token=token)
        state.key_cache.put(token, principal)
    return principal
