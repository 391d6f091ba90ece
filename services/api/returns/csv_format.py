"""The returns CSV format: template columns, decoding and parsing with clear errors."""

from __future__ import annotations

import csv
import io

from services.domain.returns.lines import CONTROL_CHARACTERS, control_character
from shared.errors import CsvEmpty, CsvHeaderMismatch, CsvMalformed, CsvNotUtf8
from shared.vocab.characteristics import AFC_BAND_COLUMNS
from shared.vocab.return_lines import LINE_COLUMNS, OPTIONAL_TAIL, omitted_trailing_columns

TEMPLATE_COLUMNS: tuple[str, ...] = LINE_COLUMNS
BOM = "\ufeff"


def decode(body: bytes) -> str:
    """UTF-8 with or without a byte order mark; anything else is a clear error."""
    try:
        return body.decode("utf-8").removeprefix(BOM)
    except UnicodeDecodeError as exc:
        raise CsvNotUtf8(
            f"The CSV is not UTF-8 (byte {exc.start} is invalid). Save it as 'CSV UTF-8'.",
            errors=[
                {
                    "row": None,
                    "column": None,
                    "code": CsvNotUtf8.code,
                    "message": f"invalid UTF-8 at byte {exc.start}",
                }
            ],
        ) from exc


def check_header(header: list[str], expected: tuple[str, ...]) -> int:
    """Raises unless the header is `expected`, or `expected` without some of its trailing
    optional columns; returns how many it leaves out."""
    cleaned = [name.strip() for name in header]
    omitted = omitted_trailing_columns(cleaned, expected)
    if omitted is not None:
        return omitted
    missing = [name for name in expected if name not in cleaned and name not in OPTIONAL_TAIL]
    unknown = [name for name in cleaned if name not in expected]
    detail = "The header must be exactly: " + ",".join(expected) + "."
    detail += " The trailing columns from median_hourly_pay on may be left out."
    if missing:
        detail += f" Missing: {', '.join(missing)}."
    if unknown:
        detail += f" Unknown: {', '.join(unknown)}."
    if not missing and not unknown:
        detail += " The columns are in the wrong order."
    raise CsvHeaderMismatch(
        detail,
        errors=[{"row": 1, "column": None, "code": CsvHeaderMismatch.code, "message": detail}],
        expected_header=list(expected),
    )


def parse(body: bytes, expected: tuple[str, ...]) -> list[dict[str, str | int | None]]:
    """Rows as text keyed by column, numbered by their line in the file (header = line 1)."""
    text = decode(body)
    found = CONTROL_CHARACTERS.search(text)
    if found is not None:
        raise control_character(text.count("\n", 0, found.start()) + 1)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise CsvEmpty(
            "The CSV is empty.",
            errors=[{"row": 1, "column": None, "code": CsvEmpty.code, "message": "no header"}],
        ) from None
    omitted = check_header(header, expected)
    width = len(expected) - omitted
    rows: list[dict[str, str | int | None]] = []
    problems: list[dict[str, object]] = []
    try:
        for fields in reader:
            line_no = reader.line_num
            if not fields or all(not field.strip() for field in fields):
                continue
            if len(fields) != width:
                problems.append(
                    {
                        "row": line_no,
                        "column": None,
                        "code": "csv_wrong_field_count",
                        "message": f"expected {width} fields, found {len(fields)}",
                    }
                )
                continue
            row: dict[str, str | int | None] = {
                name: value.strip()
                for name, value in zip(expected, [*fields, *[""] * omitted], strict=True)
            }
            row["line_no"] = line_no
            rows.append(row)
    except csv.Error as exc:
        problems.append(
            {"row": reader.line_num, "column": None, "code": CsvMalformed.code, "message": str(exc)}
        )
    if problems:
        raise CsvMalformed.for_lines(problems)
    if not rows:
        raise CsvEmpty(
            "The CSV has a header but no lines.",
            errors=[{"row": 2, "column": None, "code": CsvEmpty.code, "message": "no lines"}],
        )
    return rows


def template() -> str:
    example = [
        "care-worker",
        "40",
        "32.5",
        "4",
        "10",
        "8",
        "2",
        "310",
        "1.5",
        "2",
        "6",
        "9",
        "8",
        "9",
        "6",
        "2",
        "11.95",
        # Median pay, then ethnicity, disability and sex, each adding up to the headcount;
        # Agenda for Change bands stay empty for a care role.
        "11.80",
        *("4", "3", "1", "30", "1", "1"),
        *("3", "33", "4"),
        *("32", "8", "0"),
        *[""] * len(AFC_BAND_COLUMNS),
    ]
    return ",".join(TEMPLATE_COLUMNS) + "\r\n" + ",".join(example) + "\r\n"


def bulk_example() -> str:
    """A bulk file of two organisations' returns (ODS code, CQC location id)."""
    header, line = template().splitlines()
    return (
        f"organisation_code,as_at,{header}\r\n"
        f"RBT,2025-03-31,{line}\r\n"
        f"1-101234567,2025-03-31,{line}\r\n"
    )
