"""Domain errors: one class per stable `code`, each carrying its HTTP status.

A domain declares its errors in its own `errors.py` as subclasses of one of the status
families below (`class CapExceeded(Conflict)`), with a docstring saying what the error means
and a `fix` saying what the caller should do. The API renders any of them as RFC 9457
problem+json, documents each code at `/problems/{code}`, and every router declares the
classes its operations can raise, so the OpenAPI document lists them per operation.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

# One title per status, whatever the code.
TITLES: dict[int, str] = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    412: "Precondition failed",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    428: "Precondition required",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}

FieldError = dict[str, Any]


def field_error(field: str, code: str, message: str, **more: Any) -> FieldError:
    """One entry of a problem's `errors[]`: the field's dotted path, a code and a message."""
    return {"field": field, "code": code, "message": message, **more}


class DomainError(Exception):
    """A request that cannot be served as sent."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    fix: ClassVar[str] = "Correct the request as the detail says and send it again."
    # Every concrete code, so the API can document each one at /problems/{code}.
    registry: ClassVar[dict[str, type[DomainError]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" not in cls.__dict__:
            raise TypeError(f"{cls.__name__} must set its own code")
        if cls.status not in TITLES:
            raise TypeError(f"{cls.__name__} has a status without a title: {cls.status}")
        taken = DomainError.registry.get(cls.code)
        if taken is not None and taken.__qualname__ != cls.__qualname__:
            raise TypeError(f"code {cls.code!r} is used by {taken.__name__} and {cls.__name__}")
        DomainError.registry[cls.code] = cls

    def __init__(
        self,
        detail: str | None = None,
        *,
        field: str | None = None,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        if "code" in extra or "status" in extra:
            raise TypeError("a code or status is a class: declare one in the domain's errors.py")
        self.detail = detail or self.meaning()
        if field is not None and errors is None:
            errors = [field_error(field, self.code, self.detail)]
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra
        super().__init__(self.detail)

    @property
    def title(self) -> str:
        return TITLES[self.status]

    @property
    def message(self) -> str:
        return self.detail

    @classmethod
    def meaning(cls) -> str:
        """What the code means: the class docstring."""
        return inspect.cleandoc(cls.__doc__ or TITLES[cls.status])


# Status families. Each is also the generic error of its status (its code is the one a
# request gets when no more specific rule applies, for example a path the API does not have).


class BadRequest(DomainError):
    """The request is malformed."""

    status, code = 400, "bad_request"


class Unauthorized(DomainError):
    """The request has no valid API key."""

    status, code = 401, "unauthorized"
    fix = "Send a valid key as 'Authorization: Bearer <key>'."


class Forbidden(DomainError):
    """The API key may not do this."""

    status, code = 403, "forbidden"
    fix = "Use a key whose scope and binding cover this resource."


class NotFound(DomainError):
    """Nothing exists at this address."""

    status, code = 404, "not_found"
    fix = "Check the path against the API reference."


class MethodNotAllowed(DomainError):
    """The resource exists but does not accept this method."""

    status, code = 405, "method_not_allowed"
    fix = "Use one of the methods listed in the Allow header."


class NotAcceptable(DomainError):
    """The API cannot answer in any media type the Accept header allows."""

    status, code = 406, "not_acceptable"
    fix = "Accept application/json (or text/csv where the operation offers it)."


class Conflict(DomainError):
    """The request conflicts with the current state of the resource."""

    status, code = 409, "conflict"
    fix = "Read the resource again, then send a request that fits its current state."


class PreconditionFailed(DomainError):
    """A precondition header does not match the resource."""

    status, code = 412, "precondition_failed"
    fix = "Read the resource again and retry with its current ETag."


class PayloadTooLarge(DomainError):
    """The body is larger than this API accepts."""

    status, code = 413, "payload_too_large"
    fix = "Send a smaller body, or use the bulk import for large files."


class UnsupportedMediaType(DomainError):
    """The body's Content-Type is not one this operation accepts."""

    status, code = 415, "unsupported_media_type"
    fix = "Send the body with a Content-Type the operation lists."


class Unprocessable(DomainError):
    """The request is well formed but breaks a rule."""

    status, code = 422, "unprocessable"


class PreconditionRequired(DomainError):
    """This change needs a precondition header."""

    status, code = 428, "precondition_required"
    fix = "Send If-Match with the ETag you last read."


class TooManyRequests(DomainError):
    """Too many requests in a short time."""

    status, code = 429, "too_many_requests"
    fix = "Wait for the number of seconds in Retry-After, then retry."


class InternalError(DomainError):
    """The server failed unexpectedly."""

    status, code = 500, "internal_error"
    fix = "Retry later; if it persists, report it quoting the request_id."


class ServiceUnavailable(DomainError):
    """The service cannot answer now."""

    status, code = 503, "service_unavailable"
    fix = "Retry after a short wait."


# Errors every domain raises.


class ValidationFailed(Unprocessable):
    """One or more fields of the request are invalid; `errors[]` lists each one."""

    code = "validation_failed"
    fix = "Correct every field listed in errors[] (field is its dotted path) and send it again."


class InsufficientScope(Forbidden):
    """The API key's scope does not allow this operation."""

    code = "insufficient_scope"
    fix = "Use a key with the scope the detail names (read < submit < admin)."


class CsvNotUtf8(Unprocessable):
    """The CSV file is not UTF-8 text."""

    code = "csv_not_utf8"
    fix = "Save the file as UTF-8 (a byte-order mark is allowed) and send it again."


class CsvEmpty(Unprocessable):
    """The CSV file has a header but no lines, or nothing at all."""

    code = "csv_empty"
    fix = "Send a file with the header and at least one line."


class CsvMalformed(Unprocessable):
    """The CSV file cannot be parsed (for example an unterminated quoted field)."""

    code = "csv_malformed"
    fix = "Check the quoting on the reported row; quote fields containing commas or newlines."

    @classmethod
    def for_lines(cls, problems: list[dict[str, Any]]) -> CsvMalformed:
        """Every unreadable line counted, the first thousand listed."""
        return cls(
            f"{len(problems)} line(s) of the CSV could not be read.",
            errors=problems[:1000],
            error_count=len(problems),
        )


class CsvHeaderMismatch(Unprocessable):
    """The CSV header is not the one this operation expects; `expected_header` lists it."""

    code = "csv_header_mismatch"
    fix = "Use exactly the header in expected_header, in that order."


class ControlCharacter(Unprocessable):
    """A text value (path, query, JSON or CSV) holds a control character such as NUL."""

    code = "control_character"
    fix = "Remove control characters; only tab, line feed and carriage return are allowed."


class NumberOutOfRange(Unprocessable):
    """A number is not finite (NaN, Infinity) or is outside the documented range."""

    code = "number_out_of_range"
    fix = "Send a finite number within the range the API reference gives for the field."


class CsvLineTooLong(Unprocessable):
    """A CSV line is longer than the line limit (often a file without line breaks)."""

    code = "csv_line_too_long"
    fix = "Check the file's line endings; each line must be shorter than the limit given."


class AlreadyExists(Conflict):
    """Something with the same unique name or code was created at the same moment."""

    code = "already_exists"
    fix = "Read the existing resource, or choose another name or code."


class RateLimited(TooManyRequests):
    """This key, or this client address without a key, sent too many requests."""

    code = "rate_limited"
    fix = "Wait for the number of seconds in Retry-After, then retry."


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be reached for a moment (for example while it restarts)."""

    code = "database_unavailable"
    fix = "Retry after the number of seconds in Retry-After."


class FieldErrors:
    """Every broken field rule of one request, so one answer reports them all.

    The problem's code is the first rule's code; `errors[]` lists each field in order.
    """

    def __init__(self) -> None:
        self.errors: list[FieldError] = []
        self._first: type[DomainError] | None = None

    def add(
        self,
        error: type[DomainError],
        field: str,
        message: str,
        *,
        first: bool = False,
        location: str | None = None,
    ) -> None:
        entry = field_error(field, error.code, message)
        if location is not None:
            entry["in"] = location
        if first:
            self.errors.insert(0, entry)
        else:
            self.errors.append(entry)
        if first or self._first is None:
            self._first = error

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self, detail: str, **extra: Any) -> None:
        if self._first is not None:
            raise self._first(detail, errors=self.errors, **extra)


def generic_error(status: int) -> type[DomainError]:
    """The status family's own error (for example NotFound for any 404)."""
    for family in DomainError.__subclasses__():
        if family.status == status:
            return family
    return InternalError if status >= 500 else BadRequest
