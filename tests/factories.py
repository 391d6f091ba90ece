"""Factories for test rows: real inserts through the ORM, no mocks.

`small_geography` gives two ICBs with two LADs each under England, enough for most API tests
without loading the full reference data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.session import transaction
from shared.models import Area, Organisation, Role
from shared.reference.bands import AGE_BANDS, SEXES
from shared.repositories import population as population_repo

ENGLAND = "E92000001"
ICB_A = "E54000008"  # NHS Cheshire and Merseyside
ICB_B = "E54000050"  # NHS North East and North Cumbria
LAD_A1, LAD_A2 = "E06000049", "E08000012"  # Cheshire East, Liverpool
LAD_B1, LAD_B2 = "E06000001", "E06000002"  # Hartlepool, Middlesbrough
POPULATION_HEADER = "area_code,year,sex,age_band,population"


@dataclass(frozen=True)
class Geography:
    england: str = ENGLAND
    icb_a: str = ICB_A
    icb_b: str = ICB_B
    lad_a1: str = LAD_A1
    lad_a2: str = LAD_A2
    lad_b1: str = LAD_B1
    lad_b2: str = LAD_B2


async def ensure_small_geography(sessionmaker: async_sessionmaker[AsyncSession]) -> Geography:
    """Insert the areas the tests use unless they are already there (e.g. from the full load)."""
    rows = [
        (ENGLAND, "England", "country", None),
        (ICB_A, "NHS Cheshire and Merseyside Integrated Care Board", "icb", ENGLAND),
        (ICB_B, "NHS North East and North Cumbria Integrated Care Board", "icb", ENGLAND),
        (LAD_A1, "Cheshire East", "lad", ICB_A),
        (LAD_A2, "Liverpool", "lad", ICB_A),
        (LAD_B1, "Hartlepool", "lad", ICB_B),
        (LAD_B2, "Middlesbrough", "lad", ICB_B),
    ]
    async with transaction(sessionmaker) as session:
        existing = set((await session.execute(select(Area.code))).scalars().all())
        for code, name, type_, parent in rows:
            if code not in existing:
                session.add(Area(code=code, name=name, type=type_, parent_code=parent))
                await session.flush()
    return Geography()


async def make_organisation(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    name: str | None = None,
    kind: str = "care_provider",
    sector: str = "social_care",
    home_lad_code: str = LAD_A1,
    ics_code: str = ICB_A,
    ods_code: str | None = None,
    cqc_location_id: str | None = None,
    opened_on: date | None = None,
) -> Organisation:
    async with transaction(sessionmaker) as session:
        organisation = Organisation(
            name=name or f"Test organisation {uuid.uuid4().hex[:6]}",
            kind=kind,
            sector=sector,
            home_lad_code=home_lad_code,
            ics_code=ics_code,
            ods_code=ods_code,
            cqc_location_id=cqc_location_id,
            opened_on=opened_on,
        )
        session.add(organisation)
        await session.flush()
    return organisation


async def make_role(
    sessionmaker: async_sessionmaker[AsyncSession], code: str | None = None, **fields: Any
) -> Role:
    values: dict[str, Any] = {
        "code": code or f"role-{uuid.uuid4().hex[:6]}",
        "name": "Care worker",
        "sector": "social_care",
        "staff_group": "Direct care",
        "default_demand_driver": "population_65_plus",
    }
    values.update(fields)
    async with transaction(sessionmaker) as session:
        existing = await session.get(Role, values["code"])
        if existing is not None:
            return existing
        role = Role(**values)
        session.add(role)
        await session.flush()
    return role


def population_rows(
    areas: Iterable[str] = (LAD_B1, LAD_B2), years: Iterable[int] = (2020, 2021, 2022)
) -> list[list[str]]:
    """A complete long-form population dataset (every area x year x sex x band) as CSV cells;
    persons are 100 + the band's position, so 0-4 has 100 and 90+ has 118."""
    return [
        [area, str(year), sex, band, str(100 + index)]
        for area in areas
        for year in years
        for sex in SEXES
        for index, band in enumerate(AGE_BANDS)
    ]


def write_population_csv(
    path: Path, rows: Iterable[Sequence[str]], *, header: str = POPULATION_HEADER
) -> Path:
    path.write_text("\n".join([header, *(",".join(row) for row in rows)]) + "\n", encoding="utf-8")
    return path


async def drop_population_dataset(
    sessionmaker: async_sessionmaker[AsyncSession], name: str
) -> None:
    """Remove a dataset a test loaded (population tables are kept between tests)."""
    async with transaction(sessionmaker) as session:
        dataset = await population_repo.get_dataset_by_name(session, name=name)
        if dataset is not None:
            await population_repo.delete_dataset(session, dataset_id=dataset.id)
