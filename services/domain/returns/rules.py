"""The rules a workforce return keeps: each value's form, how the figures relate, and the
warnings a stored return raises against the organisation's earlier ones.

Rules are predicates over the staging table, so one set serves a return of a few hundred lines
and a bulk load of a million (shared/repositories/return_rules.py runs them).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import NumberOutOfRange
from shared.repositories.return_rules import (
    Dialect,
    Rule,
    Validation,
)
from shared.repositories.return_rules import format_number as fmt
from shared.vocab.characteristics import AFC_BAND_COLUMNS, BREAKDOWNS
from shared.vocab.return_lines import (
    AGE_COLUMNS,
    DECIMAL_COLUMNS,
    INT_COLUMNS,
    MAXIMUMS,
    OPTIONAL_COLUMNS,
)

# Roles of these sectors are not paid on Agenda for Change.
NON_NHS_SECTORS = ("social_care", "local_government", "voluntary")
# FTE in post above this multiple of the headcount is an error (overtime aside, 1.2 is generous).
MAX_FTE_PER_HEAD = 1.2
# Warnings, not errors: leavers above this share of the headcount in twelve months ...
TURNOVER_WARNING_SHARE = 0.6
# ... and headcount or FTE moving by more than this share since the previous return.
JUMP_WARNING_SHARE = 0.5


def validation(session: AsyncSession, import_id: uuid.UUID, *, bulk: bool) -> Validation:
    """Every rule, ready to run over one staged import."""
    return Validation(
        session, import_id, bulk=bulk, type_rules=type_rules, business_rules=business_rules
    )


def _msg(template: str) -> Callable[[dict[str, Any]], str]:
    return lambda values: template.format(**values)


def type_rules(d: Dialect) -> list[Rule]:
    rules: list[Rule] = [
        Rule(
            "required",
            "role_code",
            d.blank("s.role_code"),
            lambda v: "A role code is required.",
        )
    ]
    for col in (*INT_COLUMNS, *DECIMAL_COLUMNS):
        c = f"s.{col}"
        if col not in OPTIONAL_COLUMNS:
            rules.append(Rule("required", col, d.blank(c), _msg(f"{col} is required.")))
        rules.append(
            Rule(
                "negative_value",
                col,
                d.is_negative(c),
                _msg(f"{col} must not be negative (got {{value}})."),
            )
        )
        valid = d.is_int(c) if col in INT_COLUMNS else d.is_decimal(c)
        code = "not_an_integer" if col in INT_COLUMNS else "not_a_number"
        kind = "a whole number" if col in INT_COLUMNS else "a number"
        rules.append(
            Rule(
                code,
                col,
                f"(NOT {d.blank(c)} AND NOT {d.is_negative(c)} AND NOT {valid}"
                f" AND NOT {d.too_long(c)})",
                _msg(f"{col} must be {kind} (got {{value!r}})."),
            )
        )
        rules.append(_out_of_range(col, d.too_long(c)))
    return rules


def _out_of_range(column: str, predicate: str) -> Rule:
    maximum = fmt(MAXIMUMS[column])
    return Rule(
        NumberOutOfRange.code,
        column,
        predicate,
        _msg(f"{column} must be at most {maximum} (got {{value}})."),
    )


def range_rules(num: Callable[[str], str]) -> list[Rule]:
    """Each figure within its documented maximum (NaN and Infinity never pass the forms)."""
    return [
        _out_of_range(col, f"{num(f's.{col}')} > {MAXIMUMS[col]!r}")
        for col in (*INT_COLUMNS, *DECIMAL_COLUMNS)
    ]


def business_rules(
    d: Dialect, num: Callable[[str], str], whole: Callable[[str], str]
) -> list[Rule]:
    """How a line's figures must relate; `num` and `whole` turn a column into a number."""
    headcount, fte, vacant = whole("s.headcount"), num("s.fte_in_post"), num("s.vacant_fte")
    starters, leavers = whole("s.starters_12m"), whole("s.leavers_12m")
    ages = " + ".join(whole(f"s.{col}") for col in AGE_COLUMNS)
    return [
        *range_rules(num),
        Rule(
            "fte_exceeds_headcount",
            "fte_in_post",
            f"{fte} > {headcount} * {MAX_FTE_PER_HEAD}",
            lambda v: (
                f"FTE in post {fmt(v['fte_in_post'])} is more than {MAX_FTE_PER_HEAD} x headcount "
                f"{fmt(v['headcount'])}."
            ),
            ("fte_in_post", "headcount"),
        ),
        Rule(
            "age_bands_mismatch",
            "age_under_25",
            f"({ages}) <> {headcount}",
            lambda v: (
                f"Headcount by age band sums to {v['age_sum']}, not the headcount "
                f"{fmt(v['headcount'])}."
            ),
            ("headcount",),
        ),
        Rule(
            "leavers_exceed_headcount",
            "leavers_12m",
            f"{leavers} > {headcount} + {starters}",
            lambda v: (
                f"Leavers {fmt(v['leavers_12m'])} exceed headcount plus starters "
                f"({fmt(v['headcount'])} + {fmt(v['starters_12m'])})."
            ),
            ("leavers_12m", "headcount", "starters_12m"),
        ),
        Rule(
            "vacancies_implausible",
            "vacant_fte",
            f"{vacant} > {fte} AND {fte} > 0",
            lambda v: (
                f"Vacant FTE {fmt(v['vacant_fte'])} is over 100% of the FTE in post "
                f"{fmt(v['fte_in_post'])}."
            ),
            ("vacant_fte", "fte_in_post"),
        ),
        Rule(
            "sickness_days_implausible",
            "sickness_days_12m",
            f"{num('s.sickness_days_12m')} > 365 * {headcount}",
            lambda v: (
                f"Sickness days {fmt(v['sickness_days_12m'])} exceed 365 x headcount "
                f"{fmt(v['headcount'])}."
            ),
            ("sickness_days_12m", "headcount"),
        ),
        Rule(
            "leavers_to_health_care_exceed_leavers",
            "leavers_to_health_care_12m",
            f"{whole('s.leavers_to_health_care_12m')} > {leavers}",
            lambda v: (
                "Leavers to other health and care employers "
                f"{fmt(v['leavers_to_health_care_12m'])} exceed leavers {fmt(v['leavers_12m'])}."
            ),
            ("leavers_to_health_care_12m", "leavers_12m"),
        ),
        *breakdown_rules(d, whole, headcount),
        Rule(
            "unknown_role",
            "role_code",
            f"NOT {d.blank('s.role_code')} AND NOT EXISTS "
            "(SELECT 1 FROM roles r WHERE r.code = s.role_code)",
            lambda v: f"Unknown role code {v['role_code']!r}; see GET /v1/roles.",
            ("role_code",),
        ),
    ]


def breakdown_rules(d: Dialect, whole: Callable[[str], str], headcount: str) -> list[Rule]:
    """Each optional breakdown of headcount is given whole (every column) or not at all, and
    adds up to the headcount; Agenda for Change bands only on NHS-side roles."""
    rules = []
    for name, columns in BREAKDOWNS.items():
        given = " OR ".join(f"NOT {d.blank(f's.{c}')}" for c in columns)
        missing = " OR ".join(d.blank(f"s.{c}") for c in columns)
        total = " + ".join(whole(f"s.{c}") for c in columns)

        def message(
            values: dict[str, Any], name: str = name, columns: tuple[str, ...] = columns
        ) -> str:
            given = [values.get(c) for c in columns]
            if any(v is None for v in given):
                blanks = ", ".join(c for c, v in zip(columns, given, strict=True) if v is None)
                return (
                    f"The {name} breakdown must be given whole or left out: {blanks} "
                    "left empty while other columns of it are filled."
                )
            total = sum(float(v) for v in given if v is not None)
            return (
                f"The {name} breakdown adds up to {fmt(total)}, "
                f"not the headcount {fmt(values['headcount'])}."
            )

        rules.append(
            Rule(
                f"{name}_breakdown_mismatch",
                columns[0],
                f"(({given}) AND (({missing}) OR ({total}) <> {headcount}))",
                message,
                ("headcount", *columns),
            )
        )
    band_given = " OR ".join(f"NOT {d.blank(f's.{c}')}" for c in AFC_BAND_COLUMNS)
    rules.append(
        Rule(
            "afc_bands_not_nhs_role",
            AFC_BAND_COLUMNS[0],
            f"({band_given}) AND EXISTS (SELECT 1 FROM roles r WHERE r.code = s.role_code "
            f"AND r.sector IN ({', '.join(repr(x) for x in NON_NHS_SECTORS)}))",
            lambda v: (
                f"Agenda for Change bands are for NHS roles; {v['role_code']!r} is a "
                "social care, council or voluntary sector role: leave afc_band_* empty."
            ),
            ("role_code",),
        )
    )
    return rules


def warnings_for(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Warnings for stored lines, each row holding a line's figures beside the same role's in
    the organisation's previous return (prev_*) and its return of a year or more before (old_*).
    """
    warnings: list[dict[str, Any]] = []
    for row in rows:
        raw_id = row["return_id"]
        base = {
            "return_id": raw_id if isinstance(raw_id, uuid.UUID) else uuid.UUID(str(raw_id)),
            "role_code": row["role_code"],
        }
        headcount, leavers = row["headcount"], row["leavers"]
        if headcount and leavers > TURNOVER_WARNING_SHARE * headcount:
            warnings.append(
                {
                    **base,
                    "column": "leavers_12m",
                    "code": "turnover_above_60pct",
                    "message": f"Turnover {leavers / headcount:.0%} is above 60%.",
                }
            )
        for column, now, before in (
            ("headcount", headcount, row["prev_headcount"]),
            ("fte_in_post", row["fte"], row["prev_fte"]),
        ):
            if before and abs(now - before) > JUMP_WARNING_SHARE * before:
                warnings.append(
                    {
                        **base,
                        "column": column,
                        "code": "jump_over_50pct",
                        "message": f"{column} changed from {before:g} to {now:g} "
                        "(more than 50%) since the previous return.",
                    }
                )
        if (
            row["old_headcount"] is not None
            and row["old_headcount"] == headcount
            and row["old_fte"] == row["fte"]
            and row["old_vacant"] == row["vacant"]
        ):
            warnings.append(
                {
                    **base,
                    "column": "headcount",
                    "code": "figures_unchanged_12m",
                    "message": "Headcount, FTE and vacancies are unchanged from the return of "
                    "12 or more months ago: check they were updated.",
                }
            )
    return warnings


def parse_iso_date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None
