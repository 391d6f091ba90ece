"""The bundled reference load: what it holds, idempotence, and correcting existing areas."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.domain.reference.loader import ReferenceLoadSummary, load_reference
from shared.db.session import transaction
from shared.models import (
    Area,
    Population,
    PopulationDataset,
    PopulationGroupTotal,
    PrevalenceRate,
)
from shared.reference import files
from tests.factories import ICB_A, ICB_B, LAD_A2, ensure_small_geography

OWF = str(Path(sys.executable).with_name("oneworkforce"))
ROOT = Path(__file__).resolve().parents[2]


async def _counts(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with transaction(sessionmaker) as session:
        counts = {}
        for model in (Area, PopulationDataset, Population, PopulationGroupTotal, PrevalenceRate):
            query = select(func.count()).select_from(model)
            counts[model.__tablename__] = int((await session.execute(query)).scalar_one())
        return counts


async def test_reference_holds_the_bundled_geography_population_and_rates(
    reference: ReferenceLoadSummary, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    assert reference.dataset_name == files.BUNDLED_DATASET_NAME
    assert reference.population_rows == files.BUNDLED_POPULATION_ROWS
    async with transaction(sessionmaker) as session:
        by_type = dict(
            (await session.execute(select(Area.type, func.count()).group_by(Area.type))).all()
        )
        dataset = await session.get(PopulationDataset, reference.dataset_id)
        rates = (
            (await session.execute(select(PrevalenceRate).order_by(PrevalenceRate.age_band)))
            .scalars()
            .all()
        )
        liverpool = await session.get(Area, LAD_A2)
        icb = await session.get(Area, ICB_A)
    assert by_type == {"country": 1, "icb": 42, "county": 21, "lad": 296}
    assert dataset is not None
    assert (dataset.base_year, dataset.first_year, dataset.last_year) == (2018, 2018, 2043)
    assert dataset.row_count == 360 * 26 * 2 * 19
    assert "Open Government Licence v3.0" in dataset.source
    assert len(rates) == 12
    assert {(r.measure, r.sex) for r in rates} == {("dementia", "F"), ("dementia", "M")}
    assert {r.age_band for r in rates} == {"65-69", "70-74", "75-79", "80-84", "85-89", "90+"}
    ninety_f = next(r for r in rates if r.age_band == "90+" and r.sex == "F")
    assert (ninety_f.rate, ninety_f.lower, ninety_f.upper) == (0.35, 0.284, 0.423)
    assert "CFAS II" in ninety_f.source
    assert liverpool is not None
    assert (liverpool.name, liverpool.parent_code, liverpool.region_name) == (
        "Liverpool",
        ICB_A,
        "North West",
    )
    assert icb is not None
    assert (icb.nhs_code, icb.parent_code) == ("QYG", "E92000001")


async def test_loading_twice_leaves_the_same_row_counts(
    reference: ReferenceLoadSummary, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    before = await _counts(sessionmaker)
    again = await load_reference(sessionmaker, actor="tests")
    assert not again.population_loaded
    assert again.dataset_id == reference.dataset_id
    assert (again.areas_written, again.prevalence_rates_written) == (0, 0)
    assert await _counts(sessionmaker) == before
    assert before["population_group_totals"] == 360 * 26


async def test_loader_corrects_areas_that_tests_or_older_loads_left(
    reference: ReferenceLoadSummary, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await ensure_small_geography(sessionmaker)  # already there: must not fail either way
    async with transaction(sessionmaker) as session:
        await session.execute(
            update(Area).where(Area.code == LAD_A2).values(name="Wrong", parent_code=ICB_B)
        )
    summary = await load_reference(sessionmaker, actor="tests")
    assert summary.areas_written == 1
    assert not summary.population_loaded
    async with transaction(sessionmaker) as session:
        liverpool = await session.get(Area, LAD_A2)
    assert liverpool is not None
    assert (liverpool.name, liverpool.parent_code) == ("Liverpool", ICB_A)


def test_cli_load_reference_is_a_quick_no_op_when_loaded(
    reference: ReferenceLoadSummary, database_url: str
) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_JSON": "false"}
    # `migrate --load-reference` is what docker compose's one-shot migration runs.
    for command in (["load-reference"], ["migrate", "--load-reference"]):
        result = subprocess.run(
            [OWF, *command], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT
        )
        assert result.returncode == 0, result.stderr
        output = " ".join(result.stdout.split())
        assert "ons-snpp-2018: already loaded (355,680 rows)" in output
        assert "areas: 360 (0 written)" in output
