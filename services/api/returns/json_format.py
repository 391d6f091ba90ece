"""A JSON return, read so that every problem is reported at once.

Only the envelope is checked here (an object with `as_at` and a list of line objects). Each
line's values are kept as the text a CSV cell would hold, so the same rules judge both formats
and a text value in a number is one problem among the others, not a stop. Fields no line may
carry are problems of their own, in the same list.
"""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.repositories.return_rules import Problem
from shared.vocab.return_lines import INT_COLUMNS, LINE_COLUMNS

UNKNOWN_FIELD = "unknown_field"
MAX_LINES = 5000
# Numbers in exponent form are written out up to this exponent (1e30); beyond, they stay as
# sent and the rules refuse them.
MAX_EXPONENT = 30
NUMERIC_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_at: date
    lines: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_LINES)


class _Number(str):
    """A JSON number (or NaN/Infinity, not JSON but common), kept as the text that was sent:
    no precision lost, no huge integer converted, and the same checks as a CSV cell."""


def _invalid_json(body: bytes, exc: ValueError) -> RequestValidationError:
    position = exc.pos if isinstance(exc, json.JSONDecodeError) else 0
    reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
    return RequestValidationError(
        [
            {
                "type": "json_invalid",
                "loc": ("body", position),
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": reason},
            }
        ],
        body=body.decode("utf-8", errors="replace"),
    )


def as_text(value: Any) -> str | None:
    """A JSON value as the text a CSV cell would hold; a number in exponent form is written out
    when it is of a sensible size."""
    if value is None:
        return None
    if isinstance(value, _Number):
        if "e" in value.lower():
            try:
                number = Decimal(value)
            except InvalidOperation:
                return str(value)
            if number.is_finite() and abs(number.adjusted()) <= MAX_EXPONENT:
                return format(number, "f")
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value.strip()
    return _dumps(value)


def _dumps(value: Any) -> str:
    """A list or object back as compact JSON, its numbers as they were sent."""
    if isinstance(value, _Number):
        return str(value)
    if isinstance(value, list):
        return "[" + ",".join(_dumps(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_dumps(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _text_problem(row: int, column: str, value: Any) -> Problem | None:
    """A number sent as a JSON string: the rules would take "40", the schema does not."""
    if column == "role_code" or not isinstance(value, str) or isinstance(value, _Number):
        return None
    if not NUMERIC_TEXT.fullmatch(value.strip()):
        return None  # the rules report it as not a number, with the others
    kind = "a whole number" if column in INT_COLUMNS else "a number"
    return Problem(
        code="not_an_integer" if column in INT_COLUMNS else "not_a_number",
        message=f"{column} must be {kind}, not text (got {value!r}).",
        row=row,
        column=column,
        value=value,
    )


def parse(body: bytes) -> tuple[date, list[dict[str, str | int | None]], list[Problem]]:
    """The return's date, its lines as text (numbered from 1) and the unknown fields."""
    try:
        data = json.loads(body, parse_int=_Number, parse_float=_Number, parse_constant=_Number)
    except (ValueError, RecursionError) as exc:
        reason = ValueError("too deeply nested") if isinstance(exc, RecursionError) else exc
        raise _invalid_json(body, reason) from exc
    try:
        envelope = _Envelope.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in exc.errors()]
        ) from exc
    rows: list[dict[str, str | int | None]] = []
    problems: list[Problem] = []
    for index, line in enumerate(envelope.lines, start=1):
        row: dict[str, str | int | None] = {
            column: as_text(line.get(column)) for column in LINE_COLUMNS
        }
        row["line_no"] = index
        rows.append(row)
        for name, value in line.items():
            if name in LINE_COLUMNS:
                problem = _text_problem(index, name, value)
                if problem is not None:
                    problems.append(problem)
            else:
                problems.append(
                    Problem(
                        code=UNKNOWN_FIELD,
                        message=f"{name!r} is not a field of a return line.",
                        row=index,
                        column=name,
                    )
                )
    return envelope.as_at, rows, problems
