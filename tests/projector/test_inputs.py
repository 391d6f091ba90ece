"""A run's inputs for one ICB: the lines of each organisation's latest current return at the base
date (a superseded version, a later return and another ICB's returns are not read), as cells in
organisation then role order, with the population of their LADs, on each backend."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.domain.projections import runs as projection_runs
from services.domain.reference.loader import ReferenceLoadSummary
from services.projector import pipeline
from services.projector.model.inputs import CELL_FIGURES, FloatArray
from shared.db.session import transaction
from shared.models import (
    Population,
    ProjectionRun,
    ReturnLine,
    ReturnSource,
    ReturnStatus,
    WorkforceReturn,
)
from shared.reference.bands import AGE_BANDS, SEXES
from shared.repositories import projections as repo
from shared.vocab.return_lines import AGE_COLUMNS
from tests.api.projections.helpers import line
from tests.factories import ICB_A, ICB_B, LAD_A1, LAD_A2, LAD_B1, make_organisation, make_role

BASE_YEAR = 2024
HORIZON = 2
CARE, NURSE = "inputs-care-worker", "inputs-nurse"


async def _add_return(
    sessionmaker: async_sessionmaker[AsyncSession],
    organisation_id: uuid.UUID,
    as_at: date,
    lines: list[dict[str, Any]],
    *,
    version: int = 1,
    status: ReturnStatus = ReturnStatus.current,
) -> uuid.UUID:
    async with transaction(sessionmaker) as session:
        stored = WorkforceReturn(
            organisation_id=organisation_id,
            as_at=as_at,
            version=version,
            status=status,
            source=ReturnSource.json,
            line_count=len(lines),
        )
        session.add(stored)
        await session.flush()
        session.add_all(ReturnLine(return_id=stored.id, **values) for values in lines)
    return stored.id


async def _seed(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """Returns at several dates and versions; what the base date's cells must be."""
    await make_role(sessionmaker, CARE)
    await make_role(sessionmaker, NURSE, default_demand_driver="population_all")
    first = await make_organisation(sessionmaker, home_lad_code=LAD_A1, ics_code=ICB_A)
    second = await make_organisation(sessionmaker, home_lad_code=LAD_A2, ics_code=ICB_A)
    only_superseded = await make_organisation(sessionmaker, home_lad_code=LAD_A1, ics_code=ICB_A)
    elsewhere = await make_organisation(sessionmaker, home_lad_code=LAD_B1, ics_code=ICB_B)
    march = date(BASE_YEAR, 3, 31)
    await _add_return(sessionmaker, first.id, date(BASE_YEAR - 1, 3, 31), [line(CARE)])
    await _add_return(
        sessionmaker,
        first.id,
        march,
        [line(CARE, fte_in_post=10.0)],
        status=ReturnStatus.superseded,
    )
    nurse = line(NURSE, fte_in_post=20.25, vacant_fte=3.5, leavers_to_health_care_12m=None)
    care = line(CARE, fte_in_post=31.5, sickness_days_12m=120.5)
    latest = await _add_return(sessionmaker, first.id, march, [nurse, care], version=2)
    await _add_return(sessionmaker, first.id, date(BASE_YEAR + 1, 6, 30), [line(NURSE)])
    second_care = line(CARE, headcount=10, fte_in_post=8.0, vacant_fte=1.0, starters_12m=2)
    second_care.update(leavers_12m=1, leavers_to_health_care_12m=1, sickness_days_12m=12)
    second_care.update(dict.fromkeys(AGE_COLUMNS, 0), age_25_34=4, age_55_64=6)
    second_return = await _add_return(
        sessionmaker, second.id, date(BASE_YEAR - 1, 9, 30), [second_care]
    )
    await _add_return(
        sessionmaker, only_superseded.id, march, [line(CARE)], status=ReturnStatus.superseded
    )
    await _add_return(sessionmaker, elsewhere.id, march, [line(CARE)])
    cells = sorted(
        [(first.id, NURSE, nurse), (first.id, CARE, care), (second.id, CARE, second_care)],
        key=lambda cell: (str(cell[0]), cell[1]),
    )
    return {
        "cells": cells,
        "organisations": sorted([first.id, second.id], key=str),
        "lads": {first.id: LAD_A1, second.id: LAD_A2},
        "returns": sorted([[str(latest), 2], [str(second_return), 1]]),
        "as_at": {first.id: march, second.id: date(BASE_YEAR - 1, 9, 30)},
    }


async def _run(sessionmaker: async_sessionmaker[AsyncSession]) -> ProjectionRun:
    async with transaction(sessionmaker) as session:
        scenario = await projection_runs.baseline(session)
    return ProjectionRun(
        id=uuid.uuid4(),
        scenario_id=scenario.id,
        scenario_name=scenario.name,
        scenario_version=scenario.version,
        scope=ICB_A,
        base_year=BASE_YEAR,
        horizon=HORIZON,
        iterations=5,
        seed=1,
    )


async def _population(
    sessionmaker: async_sessionmaker[AsyncSession], dataset_id: uuid.UUID, lads: list[str]
) -> FloatArray:
    """Persons by LAD, year, sex and band from the population rows one by one."""
    expected = np.zeros((len(lads), HORIZON + 1, len(SEXES), len(AGE_BANDS)))
    query = select(Population).where(
        Population.dataset_id == dataset_id,
        Population.area_code.in_(lads),
        Population.year.between(BASE_YEAR, BASE_YEAR + HORIZON),
    )
    async with sessionmaker() as session:
        for row in (await session.execute(query)).scalars():
            position = (
                lads.index(row.area_code),
                row.year - BASE_YEAR,
                SEXES.index(row.sex),
                AGE_BANDS.index(row.age_band),
            )
            expected[position] = row.persons
    return expected


async def test_a_run_reads_each_organisations_latest_current_return_at_the_base_date(
    sessionmaker: async_sessionmaker[AsyncSession],
    db: AsyncEngine,
    reference: ReferenceLoadSummary,
) -> None:
    seeded = await _seed(sessionmaker)
    run = await _run(sessionmaker)
    async with sessionmaker() as session:
        loaded = await pipeline.load_inputs(session, run, ICB_A)
    inputs = loaded.inputs
    cells = seeded["cells"]
    organisations = seeded["organisations"]
    lads = sorted(set(seeded["lads"].values()))
    assert loaded.organisation_ids == organisations
    assert loaded.lad_codes == lads
    assert inputs.role_codes == (CARE, NURSE)
    assert inputs.cell_org.tolist() == [organisations.index(org) for org, _, _ in cells]
    assert inputs.cell_role.tolist() == [[CARE, NURSE].index(role) for _, role, _ in cells]
    assert inputs.cell_area.tolist() == [lads.index(seeded["lads"][org]) for org, _, _ in cells]
    for name in CELL_FIGURES:
        expected = [float(values[name] or 0) for _, _, values in cells]
        assert getattr(inputs, name).tolist() == expected, name
    assert inputs.headcount_by_age.tolist() == [
        [float(values[band]) for band in AGE_COLUMNS] for _, _, values in cells
    ]
    assert loaded.fingerprint_parts["returns"] == seeded["returns"]
    expected_population = await _population(sessionmaker, reference.dataset_id, lads)
    assert np.array_equal(inputs.population, expected_population)
    assert inputs.population[:, :, :, 0].min() > 0


@pytest.mark.parametrize("chunk_rows", [1, 3, 250])
async def test_the_cells_are_the_same_however_the_driver_hands_the_rows_over(
    sessionmaker: async_sessionmaker[AsyncSession],
    db: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    chunk_rows: int,
) -> None:
    seeded = await _seed(sessionmaker)
    monkeypatch.setattr(repo, "_CHUNK_ROWS", chunk_rows)
    async with sessionmaker() as session:
        cells = await repo.input_cells(
            session, ics_code=ICB_A, on=date(BASE_YEAR, 12, 31), figures=("vacant_fte",)
        )
        # The join settings go back to the server's once the lines are read.
        if session.get_bind().dialect.name == "postgresql":
            settings = await session.execute(select(func.current_setting("enable_hashjoin")))
            assert settings.scalar_one() == "on"
    organisations = seeded["organisations"]
    assert cells.organisation_ids == tuple(organisations)
    assert cells.home_lad_codes == tuple(seeded["lads"][org] for org in organisations)
    assert cells.as_at == tuple(seeded["as_at"][org] for org in organisations)
    assert [list(item) for item in cells.returns] == seeded["returns"]
    assert cells.role_codes == tuple(role for _, role, _ in seeded["cells"])
    assert cells.cell_organisation.tolist() == [
        organisations.index(org) for org, _, _ in seeded["cells"]
    ]
    assert cells.figure("vacant_fte").tolist() == [
        float(values["vacant_fte"]) for _, _, values in seeded["cells"]
    ]


async def test_an_icb_without_returns_at_the_base_date_reads_no_cells(
    sessionmaker: async_sessionmaker[AsyncSession], db: AsyncEngine
) -> None:
    await _seed(sessionmaker)
    async with sessionmaker() as session:
        cells = await repo.input_cells(
            session, ics_code=ICB_A, on=date(BASE_YEAR - 2, 12, 31), figures=CELL_FIGURES
        )
    assert len(cells) == 0
    assert cells.figures.shape == (0, len(CELL_FIGURES))
    assert cells.organisation_ids == ()
