"""The insight views as tables: the rows their CSV and xlsx downloads carry, built once from
the (already suppressed) response, so every format shows the same figures."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.schemas.insights import AreaDataGaps, AreaEquality, AreaPayParity, AreaUnpaidCare


@dataclass(frozen=True)
class Table:
    name: str
    header: tuple[str, ...]
    rows: list[list[Any]]


def unpaid_care_tables(result: AreaUnpaidCare) -> list[Table]:
    header = ("area_code", "band", "label", "persons", "assumed_hours_per_week", "hours_per_week")
    rows = [
        [result.area_code, b.band, b.label, b.persons, b.assumed_hours_per_week, b.hours_per_week]
        for b in result.bands
    ]
    return [Table("unpaid care", header, rows)]


def pay_parity_tables(result: AreaPayParity) -> list[Table]:
    header = (
        "area_code",
        "nhs_role",
        "nhs_hourly_pay",
        "nhs_returns",
        "care_role",
        "care_hourly_pay",
        "care_returns",
        "difference_per_hour",
    )
    rows = [
        [
            result.area_code,
            p.nhs.role_code,
            p.nhs.hourly_pay,
            p.nhs.returns,
            p.care.role_code,
            p.care.hourly_pay,
            p.care.returns,
            p.difference_per_hour,
        ]
        for p in result.pairs
    ]
    return [Table("pay parity", header, rows)]


def data_gaps_tables(result: AreaDataGaps) -> list[Table]:
    coverage_header = (
        "area_code",
        "group",
        "registered",
        "reporting",
        "never_reported",
        "coverage",
        "thin",
    )

    def coverage(rows: Sequence[Any]) -> list[list[Any]]:
        return [
            [
                result.area_code,
                c.group,
                c.registered,
                c.reporting,
                c.never_reported,
                c.coverage,
                c.thin,
            ]
            for c in rows
        ]

    return [
        Table("coverage by sector", coverage_header, coverage(result.by_sector)),
        Table("coverage by kind", coverage_header, coverage(result.by_kind)),
        Table(
            "missing fields",
            ("area_code", "field", "lines", "missing", "missing_share"),
            [
                [result.area_code, f.field, f.lines, f.missing, f.missing_share]
                for f in result.fields
            ],
        ),
        Table(
            "return age",
            ("area_code", "returns", "median_age_days", "oldest_as_at", "older_than_12_months"),
            [
                [
                    result.area_code,
                    result.age.returns,
                    result.age.median_age_days,
                    result.age.oldest_as_at,
                    result.age.older_than_12_months,
                ]
            ],
        ),
        Table(
            "projection flags",
            ("area_code", "sector", "coverage", "message"),
            [[result.area_code, f.sector, f.coverage, f.message] for f in result.projection_flags],
        ),
    ]


def equality_tables(result: AreaEquality) -> list[Table]:
    header = (
        "area_code",
        "characteristic",
        "by",
        "group",
        "label",
        "staff",
        "category",
        "count",
        "share_of_stated",
        "lower",
        "upper",
        "population_share",
        "representation_ratio",
    )
    rows = [
        [
            result.area_code,
            result.characteristic,
            result.by,
            g.group,
            g.label,
            g.staff,
            f.category,
            f.count,
            f.share_of_stated,
            f.lower,
            f.upper,
            f.population_share,
            f.representation_ratio,
        ]
        for g in [*result.groups, result.total]
        for f in g.categories
    ]
    return [Table("equality", header, rows)]


def csv_rows(tables: Sequence[Table]) -> tuple[tuple[str, ...], list[list[Any]]]:
    """One CSV: a single table as it is, several as one with a leading `table` column."""
    if len(tables) == 1:
        return tables[0].header, tables[0].rows
    width = max(len(t.header) for t in tables)
    header = ("table", *(f"c{i + 1}" for i in range(width)))
    rows: list[list[Any]] = []
    for table in tables:
        rows.append([table.name, *table.header])
        rows += [[table.name, *row] for row in table.rows]
    return header, rows


def _cell(value: Any) -> Any:
    """Numbers, text and booleans as they are; dates and the rest as text."""
    if value is None or isinstance(value, int | float | str | bool):
        return value
    return str(value)


def xlsx_bytes(tables: Sequence[Table], about: Sequence[tuple[str, str]]) -> bytes:
    """A workbook: a sheet per table and an `about` sheet stating method, units and source."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    for table in tables:
        sheet = workbook.create_sheet(table.name[:31])
        sheet.append(list(table.header))
        for row in table.rows:
            sheet.append([_cell(v) for v in row])
    sheet = workbook.create_sheet("about")
    for key, value in about:
        sheet.append([key, value])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
