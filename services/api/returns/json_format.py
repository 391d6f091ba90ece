"""A JSON return, read so that every problem is reported at once.

Only the envelope is checked here (an object with `as_at` and a list of line objects). Each
line's values are kept as the text a CSV cell would hold, so the same rules judge both formats
and a text value in a number is one problem among the others, not a stop. Fields no line may
carry are problems of their own, in the same list.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.repositories.return_rules import Problem
from shared.vocab.return_lines import LINE_COLUMNS

UNKNOWN_FIELD = "unknown_field"
MAX_LINES = 5000


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_at: date
    lines: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_LINES)


def _constant_as_text(name: str) -> str:
    """NaN and Infinity (not JSON, though common) become text the number rules reject."""
    return name


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
    """A JSON value as the text a CSV cell would hold; numbers never in exponent form."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, separators=(",", ":"))


def parse(body: bytes) -> tuple[date, list[dict[str, str | int | None]], list[Problem]]:
    """The return's date, its lines as text (numbered from 1) and the unknown fields."""
    try:
        data = json.loads(body, parse_constant=_constant_as_text)
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
        for name in line:
            if name not in LINE_COLUMNS:
                problems.append(
                    Problem(
                        code=UNKNOWN_FIELD,
                        message=f"{name!r} is not a field of a return line.",
                        row=index,
                        column=name,
                    )
                )
    return envelope.as_at, rows, problems
