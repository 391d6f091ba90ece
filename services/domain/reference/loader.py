"""Load the bundled reference data (areas, ONS population, prevalence) and further population
datasets. Each load validates everything first and writes in one transaction."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.domain.projections import runs as projection_runs
from services.domain.reference import errors
from services.domain.reference.population_csv import (
    MAX_YEAR,
    MIN_YEAR,
    PopulationRows,
    ProgressFn,
    parse_population_csv,
)
from shared.db.base import utcnow
from shared.db.session import transaction
from shared.models import AreaType, PopulationDataset
from shared.reference import files
from shared.reference.bands import AgeGroup
from shared.repositories import areas as areas_repo
from shared.repositories import audit
from shared.repositories import population as population_repo

ENGLAND = "E92000001"
DATASET_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class ReferenceLoadSummary:
    """What `load-reference` found and did."""

    dataset_id: uuid.UUID
    dataset_name: str
    areas: int
    areas_written: int
    population_rows: int
    population_loaded: bool
    prevalence_rates_written: int
    seconds: float


@dataclass(frozen=True)
class PopulationLoadSummary:
    """A population dataset loaded from a file."""

    dataset_id: uuid.UUID
    name: str
    rows: int
    first_year: int
    last_year: int
    replaced: bool
    seconds: float


@dataclass(frozen=True)
class _Summary:
    names: dict[str, tuple[str, str]]  # code -> (name, type)
    under_18: list[tuple[str, int, int]]  # (area_code, year, persons aged 0-17)


def _bundled_summary() -> _Summary:
    names: dict[str, tuple[str, str]] = {}
    under_18 = []
    for row in files.read_bundled_rows(files.POPULATION_SUMMARY_FILE):
        names.setdefault(row["area_code"], (row["area_name"], row["area_type"]))
        under_18.append((row["area_code"], int(row["year"]), int(row["pop_0_17"])))
    return _Summary(names=names, under_18=under_18)


def bundled_areas(summary: _Summary | None = None) -> list[dict[str, Any]]:
    """England, the 42 ICBs, the 21 counties and the 296 LADs with their best-fit ICB."""
    summary = summary or _bundled_summary()
    lookup = files.read_bundled_rows(files.LAD_ICB_LOOKUP_FILE)

    def area(
        code: str, name: str, type_: AreaType, parent: str | None, **more: Any
    ) -> dict[str, Any]:
        return {
            "code": code,
            "name": name,
            "type": type_.value,
            "parent_code": parent,
            "nhs_code": more.get("nhs_code"),
            "region_code": more.get("region_code"),
            "region_name": more.get("region_name"),
        }

    rows = {ENGLAND: area(ENGLAND, summary.names[ENGLAND][0], AreaType.country, None)}
    for code, (name, type_) in summary.names.items():
        if type_ == AreaType.county:
            rows[code] = area(code, name, AreaType.county, ENGLAND)
    for lad in lookup:
        # The lookup carries the ICBs' official names; the summary file abbreviates them.
        rows.setdefault(
            lad["icb24cd"],
            area(lad["icb24cd"], lad["icb24nm"], AreaType.icb, ENGLAND, nhs_code=lad["icb24cdh"]),
        )
        rows[lad["lad24cd"]] = area(
            lad["lad24cd"],
            lad["lad24nm"],
            AreaType.lad,
            lad["icb24cd"],
            region_code=lad["rgn23cd"],
            region_name=lad["rgn23nm"],
        )
    return list(rows.values())


def bundled_prevalence_rates() -> list[dict[str, Any]]:
    """Dementia prevalence (CFAS II) by age band 65-69 ... 90+ and sex, with 95% intervals."""
    sexes = {"female": "F", "male": "M"}
    return [
        {
            "measure": files.DEMENTIA_MEASURE,
            "age_band": row["age_band"],
            "sex": sexes[row["sex"].strip().lower()],
            "rate": float(row["prevalence"]),
            "lower": float(row["ci95_lower"]),
            "upper": float(row["ci95_upper"]),
            "source": f"{row['measure']}; {row['source']}",
        }
        for row in files.read_bundled_rows(files.DEMENTIA_PREVALENCE_FILE)
    ]


async def _bundled_dataset_is_complete(session: AsyncSession, expected_totals: int) -> bool:
    dataset = await population_repo.get_dataset_by_name(session, name=files.BUNDLED_DATASET_NAME)
    return (
        dataset is not None
        and dataset.row_count == files.BUNDLED_POPULATION_ROWS
        and await population_repo.count_rows(session, dataset_id=dataset.id)
        == files.BUNDLED_POPULATION_ROWS
        and await population_repo.count_group_totals(session, dataset_id=dataset.id)
        == expected_totals
    )


async def _write_dataset(
    session: AsyncSession,
    rows: PopulationRows,
    *,
    name: str,
    source: str,
    base_year: int,
    existing: PopulationDataset | None,
    group_totals: list[tuple[str, int, str, int]] | None = None,
    progress: ProgressFn | None = None,
) -> PopulationDataset:
    if existing is not None:
        # Same id, so anything that names the dataset keeps pointing at it; loaded_at moves on.
        await population_repo.delete_rows(session, dataset_id=existing.id)
        dataset = existing
        dataset.source = source
        dataset.base_year = base_year
        dataset.first_year = rows.first_year
        dataset.last_year = rows.last_year
        dataset.row_count = len(rows)
        dataset.loaded_at = utcnow()
        await session.flush()
    else:
        dataset = await population_repo.add_dataset(
            session,
            PopulationDataset(
                name=name,
                source=source,
                base_year=base_year,
                first_year=rows.first_year,
                last_year=rows.last_year,
                row_count=len(rows),
            ),
        )
    written = await population_repo.insert_population(
        session, rows=rows.records(dataset.id, progress=progress)
    )
    assert written == len(rows), f"wrote {written} of {len(rows)} population rows"
    if group_totals:
        await population_repo.insert_group_totals(
            session,
            rows=(
                (dataset.id, code, year, group, persons)
                for code, year, group, persons in group_totals
            ),
        )
    return dataset


async def load_reference(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    progress: ProgressFn | None = None,
    actor: str = "cli",
) -> ReferenceLoadSummary:
    """Load or bring up to date the bundled areas, ONS population and prevalence (idempotent)."""
    started = time.perf_counter()
    summary = _bundled_summary()
    area_rows = bundled_areas(summary)
    rates = bundled_prevalence_rates()
    totals = [
        (code, year, AgeGroup.aged_0_17.value, persons) for code, year, persons in summary.under_18
    ]

    async with transaction(sessionmaker) as session:
        complete = await _bundled_dataset_is_complete(session, len(totals))
    # Read the big file outside the write transaction, so SQLite's writer lock is held briefly.
    rows = None
    if not complete:
        rows = parse_population_csv(
            files.bundled_path(files.POPULATION_FILE),
            known_areas={row["code"] for row in area_rows},
            progress=progress,
        )

    async with transaction(sessionmaker) as session:
        areas_written = await areas_repo.upsert_changed(session, rows=area_rows)
        rates_written = await population_repo.upsert_prevalence_changed(session, rows=rates)
        dataset = await population_repo.get_dataset_by_name(
            session, name=files.BUNDLED_DATASET_NAME
        )
        loaded = rows is not None and not await _bundled_dataset_is_complete(session, len(totals))
        if loaded:
            assert rows is not None
            dataset = await _write_dataset(
                session,
                rows,
                name=files.BUNDLED_DATASET_NAME,
                source=files.BUNDLED_DATASET_SOURCE,
                base_year=files.BUNDLED_DATASET_BASE_YEAR,
                existing=dataset,
                group_totals=totals,
                progress=progress,
            )
        assert dataset is not None
        if loaded or areas_written or rates_written:
            await audit.record(
                session,
                key_id=None,
                actor=actor,
                action="reference_data.load",
                resource_type="population_dataset",
                resource_id=str(dataset.id),
                detail={
                    "dataset": dataset.name,
                    "population_rows": len(rows) if loaded and rows is not None else 0,
                    "areas_written": areas_written,
                    "prevalence_rates_written": rates_written,
                },
            )
        if loaded or rates_written:
            await projection_runs.population_changed(session, dataset_name=dataset.name)
        area_count = await areas_repo.count(session)
        row_count = dataset.row_count

    return ReferenceLoadSummary(
        dataset_id=dataset.id,
        dataset_name=dataset.name,
        areas=area_count,
        areas_written=areas_written,
        population_rows=row_count,
        population_loaded=loaded,
        prevalence_rates_written=rates_written,
        seconds=time.perf_counter() - started,
    )


def check_dataset_name(name: str) -> None:
    """Dataset names are short slugs; the bundled one belongs to `load-reference`."""
    if not DATASET_NAME.match(name):
        raise errors.BadDatasetName(
            f"A dataset name is 1-100 lower-case letters, digits, '.', '_' or '-', not {name!r}.",
            field="name",
        )
    if name == files.BUNDLED_DATASET_NAME:
        raise errors.DatasetNameReserved(
            f"'{name}' is the bundled ONS dataset, managed by `oneworkforce load-reference`; "
            "choose another name."
        )


def _exists(dataset: PopulationDataset) -> errors.DatasetExists:
    return errors.DatasetExists(
        f"A population dataset named '{dataset.name}' already exists ({dataset.row_count} rows, "
        f"loaded {dataset.loaded_at:%Y-%m-%d %H:%M} UTC). Pass --replace to replace it."
    )


async def load_population_file(
    sessionmaker: async_sessionmaker[AsyncSession],
    path: Path,
    *,
    name: str,
    source: str,
    base_year: int,
    replace: bool = False,
    progress: ProgressFn | None = None,
    actor: str = "cli",
) -> PopulationLoadSummary:
    """Load a long-form population CSV as a named dataset: all of it, or nothing."""
    started = time.perf_counter()
    check_dataset_name(name)
    if not MIN_YEAR <= base_year <= MAX_YEAR:
        raise errors.BadBaseYear(
            f"The base year must be between {MIN_YEAR} and {MAX_YEAR}, not {base_year}.",
            field="base_year",
        )
    if not source.strip():
        raise errors.SourceRequired("Say where the figures come from.", field="source")
    async with transaction(sessionmaker) as session:
        existing = await population_repo.get_dataset_by_name(session, name=name)
        if existing is not None and not replace:
            raise _exists(existing)
        known_areas = await areas_repo.all_codes(session)
    if not known_areas:
        raise errors.ReferenceDataMissing(
            "No areas are loaded yet: run `oneworkforce load-reference` first."
        )

    rows = parse_population_csv(path, known_areas=known_areas, progress=progress)

    async with transaction(sessionmaker) as session:
        # Looked up again: another load may have created the name while the file was read.
        existing = await population_repo.get_dataset_by_name(session, name=name)
        if existing is not None and not replace:
            raise _exists(existing)
        dataset = await _write_dataset(
            session,
            rows,
            name=name,
            source=source.strip(),
            base_year=base_year,
            existing=existing,
            progress=progress,
        )
        await audit.record(
            session,
            key_id=None,
            actor=actor,
            action="population_dataset.replace" if existing else "population_dataset.load",
            resource_type="population_dataset",
            resource_id=str(dataset.id),
            detail={"name": name, "rows": len(rows), "file": path.name},
        )
        await projection_runs.population_changed(session, dataset_name=name)
    return PopulationLoadSummary(
        dataset_id=dataset.id,
        name=name,
        rows=len(rows),
        first_year=rows.first_year,
        last_year=rows.last_year,
        replaced=existing is not None,
        seconds=time.perf_counter() - started,
    )
