"""Read and validate a population file in long form (area_code,year,sex,age_band,population).

The file is streamed row by row into compact arrays (no per-row objects); every problem is
reported by row (the line number in the file, the header being line 1) and column, and the
whole file is checked before anything is written.
"""

from __future__ import annotations

import csv
import math
import uuid
from array import array
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt

from services.domain.reference.errors import InvalidPopulationFile
from shared.reference.bands import AGE_BANDS, SEXES
from shared.reference.files import open_csv_text

HEADER: tuple[str, ...] = ("area_code", "year", "sex", "age_band", "population")
MIN_YEAR, MAX_YEAR = 1900, 2200
MAX_PERSONS = 2**31 - 1  # the column is a 32-bit integer on every backend
MAX_REPORTED_ERRORS = 1000
_MISSING_SHOWN = 10
_PROGRESS_EVERY_ROWS = 25_000

# (step, done, total): the CLI draws a progress bar from these.
ProgressFn = Callable[[str, int, int], None]

_SEX_INDEX = {sex: index for index, sex in enumerate(SEXES)}
_BAND_INDEX = {band: index for index, band in enumerate(AGE_BANDS)}
_CELLS_PER_YEAR = len(SEXES) * len(AGE_BANDS)


@dataclass
class PopulationRows:
    """A validated population file as parallel arrays, one entry per row."""

    area_codes: list[str]
    area_index: npt.NDArray[np.int32]
    year: npt.NDArray[np.int32]
    sex_index: npt.NDArray[np.int8]
    band_index: npt.NDArray[np.int8]
    persons: npt.NDArray[np.int64]
    first_year: int
    last_year: int

    def __len__(self) -> int:
        return len(self.persons)

    def records(
        self, dataset_id: uuid.UUID, *, progress: ProgressFn | None = None
    ) -> Iterator[tuple[uuid.UUID, str, int, str, str, int]]:
        """Rows in the population table's column order."""
        total = len(self)
        columns = zip(
            self.area_index.tolist(),
            self.year.tolist(),
            self.sex_index.tolist(),
            self.band_index.tolist(),
            self.persons.tolist(),
            strict=True,
        )
        codes = self.area_codes
        for done, (area, year, sex, band, persons) in enumerate(columns, start=1):
            yield dataset_id, codes[area], year, SEXES[sex], AGE_BANDS[band], persons
            if progress is not None and (done % _PROGRESS_EVERY_ROWS == 0 or done == total):
                progress("write", done, total)


@dataclass
class _Problems:
    errors: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0

    def add(
        self, row: int | None, column: str | None, code: str, message: str, **extra: Any
    ) -> None:
        self.count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(
                {"row": row, "column": column, "code": code, "message": message, **extra}
            )

    def raise_if_any(self, path: Path) -> None:
        if self.count:
            self.fail(path)

    def fail(self, path: Path) -> NoReturn:
        shown = "" if self.count <= len(self.errors) else f" (the first {len(self.errors)} listed)"
        raise InvalidPopulationFile(
            f"{path.name} has {self.count} problem{'s' if self.count != 1 else ''}{shown}; "
            "nothing was loaded.",
            errors=self.errors,
            error_count=self.count,
        )


def _parse_persons(text: str) -> tuple[int | None, str | None]:
    """Persons as an integer (projections may publish fractions: rounded), or an error code."""
    try:
        value = int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            return None, "not_a_number"
        if not math.isfinite(number):
            return None, "not_a_number"
        value = round(number)
    if value < 0:
        return None, "negative_value"
    if value > MAX_PERSONS:
        return None, "value_too_large"
    return value, None


_PERSONS_MESSAGES = {
    "not_a_number": "population '{value}' is not a number",
    "negative_value": "population {value} is negative",
    "value_too_large": "population {value} is larger than any area",
}


@dataclass
class _Columns:
    """The rows read so far, as compact arrays (no per-row objects), and the areas met."""

    known_areas: Container[str]
    area_codes: list[str] = field(default_factory=list)
    area_lookup: dict[str, int] = field(default_factory=dict)
    areas: array[int] = field(default_factory=lambda: array("i"))
    years: array[int] = field(default_factory=lambda: array("i"))
    sexes: array[int] = field(default_factory=lambda: array("b"))
    bands: array[int] = field(default_factory=lambda: array("b"))
    persons: array[int] = field(default_factory=lambda: array("q"))
    lines: array[int] = field(default_factory=lambda: array("i"))

    def area(self, code: str) -> int | None:
        """The area's index, or None for a code that is not a known area."""
        area = self.area_lookup.get(code)
        if area is None and code in self.known_areas:
            area = self.area_lookup[code] = len(self.area_codes)
            self.area_codes.append(code)
        return area

    def append(self, line: int, area: int, year: int, sex: int, band: int, persons: int) -> None:
        self.areas.append(area)
        self.years.append(year)
        self.sexes.append(sex)
        self.bands.append(band)
        self.persons.append(persons)
        self.lines.append(line)

    def rows(self) -> PopulationRows:
        years = self.years
        return PopulationRows(
            area_codes=self.area_codes,
            area_index=np.frombuffer(self.areas, dtype=np.int32),
            year=np.frombuffer(years, dtype=np.int32),
            sex_index=np.frombuffer(self.sexes, dtype=np.int8),
            band_index=np.frombuffer(self.bands, dtype=np.int8),
            persons=np.frombuffer(self.persons, dtype=np.int64),
            first_year=int(np.min(years)) if len(years) else 0,
            last_year=int(np.max(years)) if len(years) else 0,
        )


def _check_header(header: list[str] | None, problems: _Problems, path: Path) -> None:
    if header is None:
        problems.add(1, None, "empty_file", "the file is empty; expected a header row")
        problems.fail(path)
    if tuple(name.strip().lower() for name in header) != HEADER:
        problems.add(
            1,
            None,
            "bad_header",
            f"the header must be exactly {','.join(HEADER)}; found {','.join(header)}",
        )
        problems.fail(path)


def _parse_year(text: str) -> int | None:
    try:
        year = int(text)
    except ValueError:
        return None
    return year if MIN_YEAR <= year <= MAX_YEAR else None


def _read_row(row: list[str], line: int, columns: _Columns, problems: _Problems) -> None:
    """Check one row, reporting each problem by column; keep it when its key is readable (a row
    whose key is readable counts as present even if its value is not, so a bad value is not
    reported a second time as a missing row)."""
    if len(row) != len(HEADER):
        if any(cell.strip() for cell in row):
            problems.add(
                line, None, "wrong_field_count", f"expected {len(HEADER)} fields, found {len(row)}"
            )
        return
    code, year_text, sex_text, band_text, persons_text = (cell.strip() for cell in row)
    area = columns.area(code)
    if area is None:
        problems.add(line, "area_code", "unknown_area", f"unknown area code '{code}'")
    year = _parse_year(year_text)
    if year is None:
        problems.add(
            line,
            "year",
            "bad_year",
            f"year '{year_text}' is not a year between {MIN_YEAR} and {MAX_YEAR}",
        )
    sex = _SEX_INDEX.get(sex_text.upper())
    if sex is None:
        problems.add(line, "sex", "bad_sex", f"sex '{sex_text}' must be F or M")
    band = _BAND_INDEX.get(band_text)
    if band is None:
        problems.add(
            line,
            "age_band",
            "bad_age_band",
            f"age band '{band_text}' must be one of {', '.join(AGE_BANDS)}",
        )
    value, value_error = _parse_persons(persons_text)
    if value_error is not None:
        problems.add(
            line,
            "population",
            value_error,
            _PERSONS_MESSAGES[value_error].format(value=persons_text),
        )
    if area is not None and year is not None and sex is not None and band is not None:
        columns.append(line, area, year, sex, band, value or 0)


def parse_population_csv(
    path: Path, *, known_areas: Container[str], progress: ProgressFn | None = None
) -> PopulationRows:
    """Read a long-form population file, or raise InvalidPopulationFile listing every problem."""
    problems = _Problems()
    columns = _Columns(known_areas)
    size = path.stat().st_size
    with open_csv_text(path) as (text, raw):
        reader = csv.reader(text)
        _check_header(next(reader, None), problems, path)
        for row in reader:
            line = reader.line_num
            _read_row(row, line, columns, problems)
            if progress is not None and line % _PROGRESS_EVERY_ROWS == 0:
                progress("read", raw.tell(), size)
    if progress is not None:
        progress("read", size, size)

    if not len(columns.areas) and not problems.count:
        problems.add(None, None, "no_rows", "the file has a header but no rows")
    rows = columns.rows()
    if len(rows):
        _check_keys(rows, np.frombuffer(columns.lines, dtype=np.int32), problems)
    problems.raise_if_any(path)
    return rows


def _check_keys(rows: PopulationRows, lines: npt.NDArray[np.int32], problems: _Problems) -> None:
    """Duplicate keys, and every area having every year x sex x band in the file's year range."""
    span = rows.last_year - rows.first_year + 1
    key = (
        (rows.area_index.astype(np.int64) * span + (rows.year - rows.first_year)) * len(SEXES)
        + rows.sex_index
    ) * len(AGE_BANDS) + rows.band_index

    order = np.argsort(key, kind="stable")
    ordered = key[order]
    repeats = np.nonzero(ordered[1:] == ordered[:-1])[0] + 1
    if len(repeats):
        run_starts = np.searchsorted(ordered, ordered[repeats], side="left")
        for position, start in zip(repeats.tolist(), run_starts.tolist(), strict=True):
            row = order[position]
            problems.add(
                int(lines[row]),
                None,
                "duplicate_row",
                f"{_describe(rows, int(row))} repeats row {int(lines[order[start]])}",
            )

    present = np.zeros(len(rows.area_codes) * span * _CELLS_PER_YEAR, dtype=bool)
    present[key] = True
    grid = present.reshape(len(rows.area_codes), span, _CELLS_PER_YEAR)
    for area in np.nonzero(~grid.all(axis=(1, 2)))[0].tolist():
        missing = np.argwhere(~grid[area])
        problems.add(
            None,
            None,
            "missing_rows",
            f"{rows.area_codes[area]} lacks {len(missing)} of {span * _CELLS_PER_YEAR} rows "
            f"for {rows.first_year}-{rows.last_year}: {_describe_missing(rows, grid[area])}",
            area_code=rows.area_codes[area],
            missing_count=len(missing),
        )


def _describe(rows: PopulationRows, row: int) -> str:
    return (
        f"{rows.area_codes[rows.area_index[row]]} {int(rows.year[row])} "
        f"{SEXES[rows.sex_index[row]]} {AGE_BANDS[rows.band_index[row]]}"
    )


def _describe_missing(rows: PopulationRows, area_grid: npt.NDArray[np.bool_]) -> str:
    parts: list[str] = []
    for offset, year_cells in enumerate(area_grid):
        year = rows.first_year + offset
        if not year_cells.any():
            parts.append(f"{year} (all)")
            continue
        for cell in np.nonzero(~year_cells)[0].tolist():
            sex, band = divmod(cell, len(AGE_BANDS))
            parts.append(f"{year} {SEXES[sex]} {AGE_BANDS[band]}")
    shown = ", ".join(parts[:_MISSING_SHOWN])
    return (
        shown
        if len(parts) <= _MISSING_SHOWN
        else f"{shown}, and {len(parts) - _MISSING_SHOWN} more"
    )
