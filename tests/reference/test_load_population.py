"""Loading a further population dataset from a long-form CSV: all of it or nothing, every
problem reported by row and column, names never overwritten silently."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.domain.reference.loader import ReferenceLoadSummary, load_population_file
from shared.db.session import transaction
from shared.errors import Conflict, DomainError, Unprocessable
from shared.models import AuditEvent, Population, PopulationDataset
from shared.repositories import population as population_repo
from tests.factories import LAD_B1, population_rows
from tests.reference.conftest import WriteCsv

OWF = str(Path(sys.executable).with_name("oneworkforce"))
ROOT = Path(__file__).resolve().parents[2]
ROWS_PER_AREA_YEAR = 38


async def _load(
    sessionmaker: async_sessionmaker[AsyncSession], path: Path, name: str, **options: Any
) -> Any:
    return await load_population_file(
        sessionmaker,
        path,
        name=name,
        source=options.pop("source", "test figures"),
        base_year=options.pop("base_year", 2020),
        actor="tests",
        **options,
    )


async def _refused(
    sessionmaker: async_sessionmaker[AsyncSession], path: Path, name: str
) -> list[dict[str, Any]]:
    """Load a bad file: it must be refused with errors, and nothing stored under the name."""
    with pytest.raises(Unprocessable) as refused:
        await _load(sessionmaker, path, name)
    assert refused.value.code == "invalid_population_file"
    assert "nothing was loaded" in refused.value.message
    async with transaction(sessionmaker) as session:
        assert await population_repo.get_dataset_by_name(session, name=name) is None
    assert refused.value.errors
    return refused.value.errors


async def test_a_valid_file_becomes_a_named_dataset(
    reference: ReferenceLoadSummary,
    sessionmaker: async_sessionmaker[AsyncSession],
    write_csv: WriteCsv,
    dataset_name: str,
) -> None:
    summary = await _load(sessionmaker, write_csv(population_rows()), dataset_name, base_year=2020)
    assert (summary.rows, summary.first_year, summary.last_year) == (2 * 3 * 38, 2020, 2022)
    assert not summary.replaced
    async with transaction(sessionmaker) as session:
        dataset = await population_repo.get_dataset_by_name(session, name=dataset_name)
        assert dataset is not None
        assert (dataset.row_count, dataset.base_year, dataset.source) == (228, 2020, "test figures")
        cells = await population_repo.band_cells(
            session, dataset_id=dataset.id, area_code=LAD_B1, year_from=2021, year_to=2021
        )
        audit = (
            await session.execute(
                select(AuditEvent).where(AuditEvent.resource_id == str(dataset.id))
            )
        ).scalar_one()
    assert len(cells) == 38
    assert (2021, "F", "90+", 118) in cells
    assert audit.action == "population_dataset.load"


async def test_decimal_figures_are_rounded_and_gzip_is_read(
    reference: ReferenceLoadSummary,
    sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    dataset_name: str,
) -> None:
    import gzip

    rows = population_rows(areas=[LAD_B1], years=[2030])
    rows[0][4] = "1234.6"
    path = tmp_path / "figures.csv.gz"
    text = "area_code,year,sex,age_band,population\n" + "\n".join(",".join(r) for r in rows)
    path.write_bytes(gzip.compress(text.encode()))
    summary = await _load(sessionmaker, path, dataset_name)
    assert summary.rows == 38
    async with transaction(sessionmaker) as session:
        query = select(Population.persons).where(
            Population.dataset_id == summary.dataset_id,
            Population.sex == "F",
            Population.age_band == "0-4",
        )
        assert (await session.execute(query)).scalar_one() == 1235


@pytest.mark.parametrize(
    ("row_index", "column_index", "value", "column", "code"),
    [
        (5, 0, "E06999999", "area_code", "unknown_area"),
        (5, 1, "20x1", "year", "bad_year"),
        (5, 2, "X", "sex", "bad_sex"),
        (5, 3, "15-17", "age_band", "bad_age_band"),
        (5, 4, "-3", "population", "negative_value"),
        (5, 4, "many", "population", "not_a_number"),
        (5, 4, "", "population", "not_a_number"),
    ],
)
async def test_a_bad_value_is_reported_by_row_and_column_and_nothing_loads(
    reference: ReferenceLoadSummary,
    sessionmaker: async_sessionmaker[AsyncSession],
    write_csv: WriteCsv,
    dataset_name: str,
    row_index: int,
    column_index: int,
    value: str,
    column: str,
    code: str,
) -> None:
    rows = population_rows()
    rows[row_index][column_index] = value
    errors = await _refused(sessionmaker, write_csv(rows), dataset_name)
    # Line 1 is the header, so data row i is on line i + 2.
    assert {"row": row_index + 2, "column": column, "code": code} in [
        {key: error[key] for key in ("row", "column", "code")} for error in errors
    ]


async def test_duplicate_keys_name_both_rows(
    reference: ReferenceLoadSummary,
    sessionmaker: async_sessionmaker[AsyncSession],
    write_csv: WriteCsv,
    dataset_name: str,
) -> None:
    rows = population_rows()
    rows.append(list(rows[3]))
    errors = await _refused(sessionmaker, write_csv(rows), dataset_name)
    assert len(errors) == 1
    assert errors[0]["code"] == "duplicate_row"
    assert errors[0]["row"] == len(rows) + 1
    assert errors[0]["message"] == "E06000001 2020 F 15-19 repeats row 5"


async def test_missing_years_and_rows_are_listed_per_area(
    reference: ReferenceLoadSummary,
    sessionmaker: async_sessionmaker[AsyncSession],
    write_csv: WriteCsv,
    dataset_name: str,
) -> None:
    rows = [
        row
        for row in population_rows()
        # Hartlepool loses 2021 entirely; Middlesbrough loses one cell in 2022.
        if not (row[0] == "E06000001" and row[1] == "2021")
        and not (row[0] == "E06000002" and row[1:4] == ["2022", "M", "90+"])
    ]
    errors = await _refused(sessionmaker, write_csv(rows), dataset_name)
    by_area = {error["area_code"]: error for error in errors}
    assert {error["code"] for error in errors} == {"missing_rows"}
    assert by_area["E06000001"]["missing_count"] == ROWS_PER_AREA_YEAR
    assert "2021 (all)" in by_area["E06000001"]["message"]
    assert by_area["E06000002"]["missing_count"] == 1
    assert by_area["E06000002"]["message"].endswith("2022 M 90+")


async def test_a_year_missing_from_the_whole_file_is_reported(
    reference: ReferenceLoadSummary,
    sessionmaker: async_sessionmaker[AsyncSession],
    write_csv: WriteCsv,
    dataset_name: str,
) -> None:
    rows = population_rows(years=[2020, 2022])
    errors = await _refused(sessionmaker, write_csv(rows), dataset_name)
    assert len(errors) == 2
    assert all("2021 (all)" in error["message"] for error in errors)


async def test_every_problem_is_reported_not_just_the_first(
    reference: ReferenceLoadSummary,
    sessionmaker: async_sessionmaker[AsyncSession],
    write_csv: WriteCsv,
    dataset_name: str,
) -> None:
    rows = population_rows()
    rows[0][2] = "female"
    rows[10][4] = "-1"
    rows[20][0] = "nowhere"
    rows.append(["E06000001", "2020"])
    errors = await _refused(sessionmaker, write_csv(rows), dataset_name)
    codes = [error["code"] for error in errors]
    assert {"bad_sex", "negative_value", "unknown_area", "wrong_field_count"} <= set(codes)


async def test_a_wrong_header_is_one_clear_error(
    reference: ReferenceLoadSummary,
    sessionmaker: async_sessionmaker[AsyncSession],
    write_csv: WriteCsv,
    dataset_name: str,
) -> None:
    path = write_csv(population_rows(), header="area,year,sex,age_band,population")
    errors = await _refused(sessionmaker, path, dataset_name)
    assert [(e["row"], e["code"]) for e in errors] == [(1, "bad_header")]


async def test_an_empty_file_or_one_without_rows_is_refused(
    reference: ReferenceLoadSummary,
    sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    write_csv: WriteCsv,
    dataset_name: str,
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert [e["code"] for e in await _refused(sessionmaker, empty, dataset_name)] == ["empty_file"]
    header_only = write_csv([])
    assert [e["code"] for e in await _refused(sessionmaker, header_only, dataset_name)] == [
        "no_rows"
    ]


async def test_an_existing_name_is_refused_unless_replace(
    reference: ReferenceLoadSummary,
    sessionmaker: async_sessionmaker[AsyncSession],
    write_csv: WriteCsv,
    dataset_name: str,
) -> None:
    first = await _load(sessionmaker, write_csv(population_rows()), dataset_name)
    bigger = population_rows(years=[2020, 2021, 2022, 2023])
    with pytest.raises(Conflict) as refused:
        await _load(sessionmaker, write_csv(bigger), dataset_name)
    assert refused.value.code == "dataset_exists"
    assert "--replace" in refused.value.message

    # A bad replacement leaves the old dataset whole.
    broken = population_rows()
    broken[0][4] = "-1"
    with pytest.raises(Unprocessable):
        await _load(sessionmaker, write_csv(broken), dataset_name, replace=True)
    async with transaction(sessionmaker) as session:
        assert await population_repo.count_rows(session, dataset_id=first.dataset_id) == 228

    replaced = await _load(
        sessionmaker, write_csv(bigger), dataset_name, replace=True, source="revised"
    )
    assert replaced.replaced
    assert replaced.dataset_id == first.dataset_id
    async with transaction(sessionmaker) as session:
        dataset = await session.get(PopulationDataset, first.dataset_id)
        assert dataset is not None
        assert (dataset.row_count, dataset.last_year, dataset.source) == (304, 2023, "revised")
        assert await population_repo.count_rows(session, dataset_id=first.dataset_id) == 304
        actions = (
            await session.execute(
                select(AuditEvent.action)
                .where(AuditEvent.resource_id == str(first.dataset_id))
                .order_by(AuditEvent.at)
            )
        ).scalars()
        assert list(actions) == ["population_dataset.load", "population_dataset.replace"]


@pytest.mark.parametrize(
    ("name", "code"),
    [("ons-snpp-2018", "dataset_name_reserved"), ("Bad Name!", "bad_dataset_name")],
)
async def test_reserved_and_malformed_names_are_refused(
    reference: ReferenceLoadSummary,
    sessionmaker: async_sessionmaker[AsyncSession],
    write_csv: WriteCsv,
    name: str,
    code: str,
) -> None:
    with pytest.raises(DomainError) as refused:
        await _load(sessionmaker, write_csv(population_rows()), name)
    assert refused.value.code == code
    async with transaction(sessionmaker) as session:
        count = select(func.count()).select_from(PopulationDataset)
        assert (await session.execute(count)).scalar_one() >= 1


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_JSON": "false", "COLUMNS": "200"}
    return subprocess.run(
        [OWF, "load-population", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


async def test_cli_reports_problems_by_row_and_exits_non_zero(
    reference: ReferenceLoadSummary,
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
    write_csv: WriteCsv,
    dataset_name: str,
) -> None:
    rows = population_rows()
    rows[2][3] = "10-15"
    options = ["--name", dataset_name, "--source", "test", "--base-year", "2020"]
    refused = _cli(database_url, str(write_csv(rows)), *options)
    assert refused.returncode == 1
    assert "nothing was loaded" in refused.stderr
    assert "bad_age_band" in refused.stderr
    assert "│ 4 " in refused.stderr  # the row column of the problem table

    loaded = _cli(database_url, str(write_csv(population_rows())), *options)
    assert loaded.returncode == 0, loaded.stderr
    assert f"Loaded population dataset {dataset_name}: 228 rows" in loaded.stdout

    again = _cli(database_url, str(write_csv(population_rows())), *options)
    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert (await _counts_for(sessionmaker, dataset_name)) == 228


async def _counts_for(sessionmaker: async_sessionmaker[AsyncSession], name: str) -> int:
    async with transaction(sessionmaker) as session:
        dataset = await population_repo.get_dataset_by_name(session, name=name)
        assert dataset is not None
        return await population_repo.count_rows(session, dataset_id=dataset.id)
