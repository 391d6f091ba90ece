"""Workforce return validation, set-based in SQL over the staging table.

The same rules serve a single organisation's return (a few hundred lines) and a bulk load of a
million lines: every line is staged as text exactly as sent, then each rule is one predicate.
A first pass counts the lines that break any rule (one scan); only when there are some does a
second pass fetch them rule by rule, so a clean load costs a single scan.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import TextClause, Uuid, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.vocab.return_lines import (
    AGE_COLUMNS,
    BULK_COLUMNS,
    DECIMAL_COLUMNS,
    INT_COLUMNS,
    OPTIONAL_COLUMNS,
)

MAX_REPORTED = 1000
# Lines examined rule by rule once the fast check has found errors.
MAX_BAD_LINES = 5000


@dataclass(frozen=True)
class Problem:
    """One broken rule: where (row and column, or field), a stable code and a message."""

    code: str
    message: str
    row: int | None = None
    column: str | None = None
    value: str | None = None
    organisation_code: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        for key in ("row", "column", "value", "organisation_code"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


_COLUMN_ORDER = {column: position for position, column in enumerate(BULK_COLUMNS)}


def in_row_order(problems: Sequence[Problem]) -> list[Problem]:
    """Problems by line, then by column as a line lays them out (whole-return problems first);
    the order rules found them in breaks ties."""
    return sorted(
        problems,
        key=lambda p: (
            -1 if p.row is None else p.row,
            _COLUMN_ORDER.get(p.column or "", -1 if p.column is None else len(_COLUMN_ORDER)),
        ),
    )


class Dialect:
    """The few SQL expressions that differ between PostgreSQL and SQLite."""

    def __init__(self, name: str) -> None:
        self.pg = name == "postgresql"

    def blank(self, col: str) -> str:
        return f"COALESCE({col}, '') = ''"

    # PostgreSQL: at most this many digits before the point, so every value that passes can
    # be cast (to integer or double precision) without an error; longer ones are out of range.
    MAX_DIGITS = 9

    def is_int(self, col: str) -> str:
        if self.pg:
            return f"({col} ~ '^[0-9]{{1,{self.MAX_DIGITS}}}$')"
        return f"({col} <> '' AND {col} NOT GLOB '*[^0-9]*')"

    def is_decimal(self, col: str) -> str:
        if self.pg:
            return f"({col} ~ '^[0-9]{{1,{self.MAX_DIGITS}}}(\\.[0-9]+)?$')"
        return (
            f"({col} <> '' AND {col} NOT GLOB '*[^0-9.]*' AND {col} NOT GLOB '*.*.*'"
            f" AND {col} NOT GLOB '.*' AND {col} NOT GLOB '*.')"
        )

    def too_long(self, col: str) -> str:
        """A number with more digits than MAX_DIGITS (PostgreSQL; SQLite casts any of them)."""
        if self.pg:
            return f"({col} ~ '^[0-9]{{{self.MAX_DIGITS + 1},}}(\\.[0-9]+)?$')"
        return "(1 = 0)"

    def is_negative(self, col: str) -> str:
        if self.pg:
            return f"({col} ~ '^-[0-9]+(\\.[0-9]+)?$')"
        return f"(substr({col}, 1, 1) = '-' AND {self.is_decimal(f'substr({col}, 2)')})"

    def num(self, col: str) -> str:
        """The value as a number, or NULL when it is not one (so rules on it stay silent)."""
        kind = "double precision" if self.pg else "REAL"
        return f"(CASE WHEN {self.is_decimal(col)} THEN CAST({col} AS {kind}) END)"

    def whole(self, col: str) -> str:
        """A whole number, or NULL (a fractional headcount is reported once, not again here)."""
        kind = "double precision" if self.pg else "REAL"
        return f"(CASE WHEN {self.is_int(col)} THEN CAST({col} AS {kind}) END)"

    def cast(self, col: str) -> str:
        """A value already known to be a number (or empty), as a number."""
        kind = "double precision" if self.pg else "REAL"
        return f"CAST(NULLIF({col}, '') AS {kind})"

    def row_pattern(self) -> str:
        """PostgreSQL: one regular expression that a line with well-typed numbers matches."""
        parts = []
        for col in (*INT_COLUMNS, *DECIMAL_COLUMNS):
            digits = f"[0-9]{{1,{self.MAX_DIGITS}}}"
            part = digits if col in INT_COLUMNS else digits + "(\\.[0-9]+)?"
            parts.append(f"({part})?" if col in OPTIONAL_COLUMNS else part)
        return "^" + "\\|".join(parts) + "$"

    def row_string(self) -> str:
        return " || '|' || ".join(
            f"COALESCE(s.{col}, '')" for col in (*INT_COLUMNS, *DECIMAL_COLUMNS)
        )

    def days_before(self, date_sql: str, days: int) -> str:
        if self.pg:
            return f"(CAST({date_sql} AS date) - {days})"
        return f"date({date_sql}, '-{days} days')"


@dataclass(frozen=True)
class Rule:
    code: str
    column: str
    predicate: str
    message: Callable[[dict[str, Any]], str]
    columns: tuple[str, ...] = ()


def staged_sql(statement: str) -> TextClause:
    """A text query over one import; the id is bound as a UUID so SQLite matches its storage."""
    clause = text(statement)
    if ":import_id" in statement:
        clause = clause.bindparams(bindparam("import_id", type_=Uuid()))
    return clause


RuleBuilder = Callable[[Dialect, Callable[[str], str], Callable[[str], str]], list[Rule]]


def format_number(value: Any) -> str:
    """A figure as a message shows it: 32.5, 40 (not 40.0)."""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _row_expr(d: Dialect) -> str:
    return "s.line_no"


class Validation:
    """Runs every rule over one staged import and collects problems, capped for the answer.

    The rules come from the caller: `type_rules(d)` check each value's form, and
    `business_rules(d, num, whole)` relate the figures, written over the given number
    expressions so PostgreSQL's fast path can cast values already known to be numbers.
    """

    def __init__(
        self,
        session: AsyncSession,
        import_id: uuid.UUID,
        *,
        bulk: bool,
        type_rules: Callable[[Dialect], list[Rule]],
        business_rules: RuleBuilder,
    ) -> None:
        self.session = session
        self.import_id = import_id
        self.bulk = bulk
        self._type_rules = type_rules
        self._business_rules = business_rules
        self.d = Dialect(session.get_bind().dialect.name)
        self.problems: list[Problem] = []
        self.total = 0
        self.lines_truncated = False

    def add(self, problem: Problem) -> None:
        self.total += 1
        if len(self.problems) < MAX_REPORTED:
            self.problems.append(problem)

    def in_row_order(self) -> list[Problem]:
        return in_row_order(self.problems)

    async def _fetch(self, sql: str, **params: Any) -> Sequence[Any]:
        if ":import_id" in sql:
            params["import_id"] = self.import_id
        result = await self.session.execute(staged_sql(sql), params)
        return result.mappings().all()

    def _any_error_sql(self) -> str:
        """A predicate true for a line that breaks any rule, cheap enough for a million lines."""
        d = self.d
        if not d.pg:
            return " OR ".join(f"({rule.predicate})" for rule in self._line_rules())
        # One regular expression checks every number on the line; only then are the values
        # cast (CASE keeps the casts away from lines that failed the pattern).
        typed = f"({d.row_string()}) ~ '{d.row_pattern()}' AND NOT {d.blank('s.role_code')}"
        business = " OR ".join(
            f"({rule.predicate})" for rule in self._business_rules(d, d.cast, d.cast)
        )
        return f"(CASE WHEN {typed} THEN ({business}) ELSE TRUE END)"

    def _line_rules(self) -> list[Rule]:
        return self._type_rules(self.d) + self._business_rules(self.d, self.d.num, self.d.whole)

    async def line_rules(self) -> None:
        rules = self._line_rules()
        bad_sql = (
            "SELECT s.id AS id FROM return_staging s WHERE s.import_id = :import_id "
            f"AND {self._any_error_sql()} ORDER BY s.id LIMIT {MAX_BAD_LINES}"
        )
        bad_ids = [int(found["id"]) for found in await self._fetch(bad_sql)]
        if not bad_ids:
            return
        self.lines_truncated = len(bad_ids) == MAX_BAD_LINES
        id_list = ", ".join(str(i) for i in bad_ids)
        row = _row_expr(self.d)
        ages = " + ".join(self.d.num(f"s.{col}") for col in AGE_COLUMNS)
        numeric = ", ".join(
            f"{self.d.num(f's.{col}')} AS {col}" for col in (*INT_COLUMNS, *DECIMAL_COLUMNS)
        )
        for rule in rules:
            sql = (
                f"SELECT {row} AS row_no, s.organisation_code AS organisation_code, "
                f"s.{rule.column} AS value, s.role_code AS role_code, ({ages}) AS age_sum, "
                f"{numeric} FROM return_staging s "
                f"WHERE s.id IN ({id_list}) AND ({rule.predicate}) "
                f"ORDER BY s.id LIMIT {MAX_REPORTED}"
            )
            for found in await self._fetch(sql):
                values = dict(found)
                age_sum = values.get("age_sum")
                if isinstance(age_sum, float):
                    values["age_sum"] = format_number(age_sum)
                self.add(
                    Problem(
                        code=rule.code,
                        message=rule.message(values),
                        row=int(found["row_no"]),
                        column=rule.column,
                        value=None if found["value"] is None else str(found["value"]),
                        organisation_code=found["organisation_code"] if self.bulk else None,
                    )
                )

    async def duplicate_roles(self, org_key: str) -> None:
        """The same role twice in one return (one organisation, one date)."""
        row = _row_expr(self.d)
        sql = f"""
            SELECT {row} AS row_no, s.role_code AS role_code, s.organisation_code AS org_code
            FROM return_staging s
            JOIN (
                SELECT {org_key} AS org_key, as_at, role_code, MIN(id) AS first_id
                FROM return_staging s
                WHERE import_id = :import_id AND COALESCE(role_code, '') <> ''
                GROUP BY {org_key}, as_at, role_code HAVING COUNT(*) > 1
            ) dup ON dup.org_key = {org_key} AND dup.as_at = s.as_at
                 AND dup.role_code = s.role_code AND s.id <> dup.first_id
            WHERE s.import_id = :import_id
            ORDER BY s.id LIMIT {MAX_REPORTED}
        """
        for found in await self._fetch(sql):
            self.add(
                Problem(
                    code="duplicate_role_line",
                    message=f"Role {found['role_code']!r} appears more than once in this return.",
                    row=int(found["row_no"]),
                    column="role_code",
                    value=found["role_code"],
                    organisation_code=found["org_code"] if self.bulk else None,
                )
            )

    async def distinct_values(self, column: str) -> list[str | None]:
        sql = f"SELECT DISTINCT {column} AS v FROM return_staging WHERE import_id = :import_id"
        return [found["v"] for found in await self._fetch(sql)]

    async def rows_with_value(
        self, column: str, values: Sequence[str | None], *, code: str, message: str
    ) -> None:
        """Report every line whose `column` is one of `values` (bad dates, unknown codes)."""
        if not values:
            return
        row = _row_expr(self.d)
        names = {f"v{i}": value for i, value in enumerate(values) if value is not None}
        conditions = [f"s.{column} IN ({', '.join(':' + n for n in names)})"] if names else []
        if None in values:
            conditions.append(f"COALESCE(s.{column}, '') = ''")
        sql = (
            f"SELECT {row} AS row_no, s.{column} AS value, s.organisation_code AS org_code "
            f"FROM return_staging s WHERE s.import_id = :import_id "
            f"AND ({' OR '.join(conditions)}) ORDER BY s.id LIMIT {MAX_REPORTED}"
        )
        for found in await self._fetch(sql, **names):
            value = found["value"]
            self.add(
                Problem(
                    code=code,
                    message=message.format(value=value or ""),
                    row=int(found["row_no"]),
                    column=column,
                    value=value,
                    organisation_code=found["org_code"] if self.bulk else None,
                )
            )
