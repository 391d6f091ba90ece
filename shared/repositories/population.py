"""Population datasets, their rows and published group totals, and prevalence rates."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.base import Base
from shared.models import (
    Area,
    AreaType,
    Population,
    PopulationDataset,
    PopulationGroupTotal,
    PrevalenceRate,
)
from shared.repositories import bulk
from shared.repositories.base import PageWindow, paginate

POPULATION_COLUMNS = ("dataset_id", "area_code", "year", "sex", "age_band", "persons")
GROUP_TOTAL_COLUMNS = ("dataset_id", "area_code", "year", "age_group", "persons")
PREVALENCE_FIELDS = ("measure", "age_band", "sex", "rate", "lower", "upper", "source")


def _table(model: type[Base]) -> Table:
    return Base.metadata.tables[model.__tablename__]


async def get_dataset_by_name(session: AsyncSession, *, name: str) -> PopulationDataset | None:
    query = select(PopulationDataset).where(PopulationDataset.name == name)
    return (await session.execute(query)).scalar_one_or_none()


async def list_datasets(
    session: AsyncSession, *, page: PageWindow
) -> tuple[Sequence[PopulationDataset], int]:
    return await paginate(session, select(PopulationDataset).order_by(PopulationDataset.name), page)


async def add_dataset(session: AsyncSession, dataset: PopulationDataset) -> PopulationDataset:
    session.add(dataset)
    await session.flush()
    return dataset


async def delete_dataset(session: AsyncSession, *, dataset_id: uuid.UUID) -> None:
    """Remove a dataset with its rows (explicitly, not relying on cascades)."""
    await delete_rows(session, dataset_id=dataset_id)
    await session.execute(delete(PopulationDataset).where(PopulationDataset.id == dataset_id))


async def delete_rows(session: AsyncSession, *, dataset_id: uuid.UUID) -> None:
    await session.execute(delete(Population).where(Population.dataset_id == dataset_id))
    await session.execute(
        delete(PopulationGroupTotal).where(PopulationGroupTotal.dataset_id == dataset_id)
    )


async def count_rows(session: AsyncSession, *, dataset_id: uuid.UUID) -> int:
    query = select(func.count()).select_from(Population).where(Population.dataset_id == dataset_id)
    return int((await session.execute(query)).scalar_one())


async def count_group_totals(session: AsyncSession, *, dataset_id: uuid.UUID) -> int:
    query = (
        select(func.count())
        .select_from(PopulationGroupTotal)
        .where(PopulationGroupTotal.dataset_id == dataset_id)
    )
    return int((await session.execute(query)).scalar_one())


async def insert_population(
    session: AsyncSession, *, rows: Iterable[tuple[uuid.UUID, str, int, str, str, int]]
) -> int:
    """Bulk-insert (dataset_id, area_code, year, sex, age_band, persons) rows."""
    return await bulk.insert_rows(
        session, table=_table(Population), columns=POPULATION_COLUMNS, rows=rows
    )


async def insert_group_totals(
    session: AsyncSession, *, rows: Iterable[tuple[uuid.UUID, str, int, str, int]]
) -> int:
    """Bulk-insert (dataset_id, area_code, year, age_group, persons) rows."""
    return await bulk.insert_rows(
        session, table=_table(PopulationGroupTotal), columns=GROUP_TOTAL_COLUMNS, rows=rows
    )


async def band_cells(
    session: AsyncSession,
    *,
    dataset_id: uuid.UUID,
    area_code: str,
    year_from: int,
    year_to: int,
    age_bands: Sequence[str] | None = None,
) -> list[tuple[int, str, str, int]]:
    """(year, sex, age_band, persons) for one area over a range of years."""
    query = select(Population.year, Population.sex, Population.age_band, Population.persons).where(
        Population.dataset_id == dataset_id,
        Population.area_code == area_code,
        Population.year.between(year_from, year_to),
    )
    if age_bands is not None:
        query = query.where(Population.age_band.in_(age_bands))
    return [(row[0], row[1], row[2], row[3]) for row in (await session.execute(query)).all()]


async def persons_by_lad(
    session: AsyncSession,
    *,
    dataset_id: uuid.UUID,
    ics_code: str,
    year: int,
    age_bands: Sequence[str],
) -> list[tuple[str, str, int]]:
    """(LAD code, name, persons in these age bands) for each LAD of an ICB in one year."""
    query = (
        select(Area.code, Area.name, func.sum(Population.persons))
        .join(Population, Population.area_code == Area.code)
        .where(
            Area.type == AreaType.lad,
            Area.parent_code == ics_code,
            Population.dataset_id == dataset_id,
            Population.year == year,
            Population.age_band.in_(age_bands),
        )
        .group_by(Area.code, Area.name)
        .order_by(Area.code)
    )
    return [(code, name, int(total)) for code, name, total in (await session.execute(query)).all()]


async def group_totals(
    session: AsyncSession,
    *,
    dataset_id: uuid.UUID,
    area_code: str,
    age_group: str,
    year_from: int,
    year_to: int,
) -> dict[int, int]:
    """Published persons by year for one area and age group (empty when none were published)."""
    query = select(PopulationGroupTotal.year, PopulationGroupTotal.persons).where(
        PopulationGroupTotal.dataset_id == dataset_id,
        PopulationGroupTotal.area_code == area_code,
        PopulationGroupTotal.age_group == age_group,
        PopulationGroupTotal.year.between(year_from, year_to),
    )
    return {row[0]: row[1] for row in (await session.execute(query)).all()}


async def upsert_prevalence_changed(
    session: AsyncSession, *, rows: Sequence[dict[str, Any]]
) -> int:
    """Insert or correct prevalence rates; rows already right are not written."""
    current = {
        (row[0], row[1], row[2]): tuple(row)
        for row in (
            await session.execute(
                select(*(getattr(PrevalenceRate, name) for name in PREVALENCE_FIELDS))
            )
        ).all()
    }
    changed = [
        row
        for row in rows
        if current.get((row["measure"], row["age_band"], row["sex"]))
        != tuple(row[name] for name in PREVALENCE_FIELDS)
    ]
    if not changed:
        return 0
    connection = await session.connection()
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert(PrevalenceRate)
    statement = statement.on_conflict_do_update(
        index_elements=[PrevalenceRate.measure, PrevalenceRate.age_band, PrevalenceRate.sex],
        set_={name: statement.excluded[name] for name in ("rate", "lower", "upper", "source")},
    )
    await session.execute(statement, changed)
    return len(changed)


async def prevalence_rates(session: AsyncSession, *, measure: str) -> Sequence[PrevalenceRate]:
    query = (
        select(PrevalenceRate)
        .where(PrevalenceRate.measure == measure)
        .order_by(PrevalenceRate.age_band, PrevalenceRate.sex)
    )
    return (await session.execute(query)).scalars().all()
