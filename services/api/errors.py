"""RFC 9457 problem+json for every error, each with a stable `code`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.context import request_id_var
from shared.db import faults
from shared.errors import (
    TITLES,
    AlreadyExists,
    Conflict,
    ControlCharacter,
    DatabaseUnavailable,
    DomainError,
    InternalError,
    NumberOutOfRange,
    PreconditionFailed,
    PreconditionRequired,
    Unprocessable,
    ValidationFailed,
    generic_error,
)

log = logging.getLogger("oneworkforce.api")

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_PREFIX = "/problems/"


def problem_type(code: str) -> str:
    """The problem's `type`: a page of this API that explains the code and its fix."""
    return PROBLEM_TYPE_PREFIX + code


class IfMatchRequired(PreconditionRequired):
    """This change needs If-Match with the ETag last read."""

    code = "if_match_required"
    fix = "Read the resource, then send its ETag in If-Match."


class EtagMismatch(PreconditionFailed):
    """The resource changed since the ETag in If-Match was read."""

    code = "etag_mismatch"
    fix = "Read the resource again and retry with its current ETag (sent in the ETag header)."


class IdempotencyKeyInvalid(Unprocessable):
    """Idempotency-Key must be 1 to 200 characters."""

    code = "idempotency_key_invalid"
    fix = "Send a unique value such as a UUID."


class IdempotencyKeyReused(Conflict):
    """This Idempotency-Key was used with a different request."""

    code = "idempotency_key_reused"
    fix = "Use a new key for a new request; reuse a key only to retry the same request."


class IdempotencyKeyInProgress(Conflict):
    """A request with this Idempotency-Key is still being processed, or failed concurrently."""

    code = "idempotency_key_in_progress"
    fix = "Retry the same request shortly."


def problem(
    status: int,
    *,
    code: str | None = None,
    detail: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
    **extra: Any,
) -> JSONResponse:
    """An RFC 9457 problem: one title per status, a stable code and a page explaining it."""
    code = code or generic_error(status).code
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": TITLES.get(status, "Error"),
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    request_id = request_id_var.get()
    if request_id:
        body["request_id"] = request_id
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    response_headers = dict(headers or {})
    if request_id:
        response_headers.setdefault("X-Request-ID", request_id)
    return JSONResponse(body, status_code=status, headers=response_headers, media_type=PROBLEM_JSON)


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _invalid_json(err: dict[str, Any], body: Any) -> dict[str, Any]:
    """A body that is not JSON: where it breaks (line and column, as editors count them)."""
    loc = err.get("loc", ())
    position = loc[-1] if loc and isinstance(loc[-1], int) else None
    reason = str((err.get("ctx") or {}).get("error") or err.get("msg") or "invalid JSON")
    message = f"The body is not valid JSON: {reason}"
    if position is not None and isinstance(body, str | bytes):
        text = body if isinstance(body, str) else body.decode("utf-8", errors="replace")
        before = text[:position]
        line = before.count("\n") + 1
        column = position - (before.rfind("\n") + 1) + 1
        message += f" at line {line}, column {column}"
    return {"field": "body", "in": "body", "code": "json_invalid", "message": message + "."}


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            errors.append(_invalid_json(err, exc.body))
            continue
        loc = tuple(err.get("loc", ()))
        source = str(loc[0]) if loc else "body"
        errors.append(
            {
                "field": _field_path(loc),
                "in": source,
                "code": str(err.get("type", "invalid")),
                "message": str(err.get("msg", "invalid value")),
            }
        )
    return errors


# How long a client should wait before retrying when the database is unavailable.
RETRY_AFTER_UNAVAILABLE_S = 5


def problem_for(exc: DomainError, *, instance: str | None = None) -> JSONResponse:
    """The problem+json answer for a domain error."""
    return problem(
        exc.status,
        code=exc.code,
        detail=exc.detail,
        errors=exc.errors,
        headers=exc.headers,
        instance=instance,
        **exc.extra,
    )


def unavailable_response() -> JSONResponse:
    return problem_for(
        DatabaseUnavailable(
            "The database is unavailable for a moment. Retry after the time given.",
            headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE_S)},
        )
    )


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return problem_for(exc, instance=request.url.path)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """Database failures that are not the server's fault get their own answer, not a 500."""
    if faults.is_unavailable(exc):
        log.warning(
            "database unavailable",
            extra={"path": request.url.path, "error": type(exc).__name__},
        )
        return unavailable_response()
    if faults.is_unique_violation(exc):
        # Two requests raced to create the same thing; the loser is told it exists.
        return problem_for(AlreadyExists(), instance=request.url.path)
    if faults.is_bad_character(exc):
        return problem_for(
            ControlCharacter("A text value holds a character that cannot be stored."),
            instance=request.url.path,
        )
    if faults.is_out_of_range(exc):
        return problem_for(
            NumberOutOfRange("A number is outside the range that can be stored."),
            instance=request.url.path,
        )
    return await _unhandled(request, exc)


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problem(
        422,
        code=ValidationFailed.code,
        detail="The request has invalid fields.",
        errors=validation_errors(exc),
        instance=request.url.path,
    )


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    return problem(
        exc.status_code,
        detail=detail,
        headers=dict(exc.headers or {}),
        instance=request.url.path,
    )


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    # The log line carries the request id and the traceback; the body hides internals.
    log.error(
        "unhandled error",
        exc_info=(type(exc), exc, exc.__traceback__),
        extra={"path": request.url.path, "method": request.method},
    )
    # The request may have been left half read: close the connection, and say so.
    return problem(
        500,
        code=InternalError.code,
        detail="An unexpected error occurred. Quote the request id when reporting it.",
        headers={"Connection": "close"},
        instance=request.url.path,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(PoolTimeout, _database_error)
    app.add_exception_handler(OSError, _database_error)
    app.add_exception_handler(Exception, _unhandled)
