"""RFC 9457 problem+json for every error, each with a stable `code`."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.context import request_id_var
from shared.db import faults
from shared.errors import DomainError

log = logging.getLogger("oneworkforce.api")

PROBLEM_JSON = "application/problem+json"

STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    428: "precondition_required",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}


def problem(
    status: int,
    *,
    code: str | None = None,
    detail: str | None = None,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
    **extra: Any,
) -> JSONResponse:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or phrase,
        "status": status,
        "code": code or STATUS_CODES.get(status, "error"),
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


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for err in exc.errors():
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
        title=exc.title,
        detail=exc.message,
        errors=exc.errors,
        headers=exc.headers,
        instance=instance,
        **exc.extra,
    )


def unavailable_response() -> JSONResponse:
    return problem(
        503,
        code="database_unavailable",
        detail="The database is unavailable for a moment. Retry after the time given.",
        headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE_S)},
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
        return problem(
            409,
            code="already_exists",
            detail="Something with the same unique name or code already exists.",
            instance=request.url.path,
        )
    if faults.is_bad_character(exc):
        return problem(
            422,
            code="control_character",
            detail="A text value holds a character that cannot be stored.",
            instance=request.url.path,
        )
    if faults.is_out_of_range(exc):
        return problem(
            422,
            code="number_out_of_range",
            detail="A number is outside the range that can be stored.",
            instance=request.url.path,
        )
    return await _unhandled(request, exc)


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problem(
        422,
        code="validation_failed",
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
        code="internal_error",
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
