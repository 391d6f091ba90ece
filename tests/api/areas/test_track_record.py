"""Track record: on the demo each sector's error for the later return year is listed; returns
that follow the model exactly give zero error; the CLI prints the same report; bad input and
keys that may not."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from services.cli import app as cli_app
from services.domain.demo import DEMO_ICB, load_demo
from services.domain.reference.loader import ReferenceLoadSummary
from shared.config import get_settings
from shared.db.session import transaction
from shared.models import Population, ReturnLine, Role, WorkforceReturn
from tests.factories import ICB_A, ICB_B, LAD_A1, make_organisation, make_role
from tests.helpers import KeyFactory, assert_problem


async def test_demo_lists_each_sectors_error_for_the_later_year(
    reference: ReferenceLoadSummary,
    seeded_roles: list[str],
    sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with transaction(sessionmaker) as session:
        await load_demo(session)
    async with sessionmaker() as session:
        sectors = set(
            (
                await session.execute(
                    select(Role.sector)
                    .join(ReturnLine, ReturnLine.role_code == Role.code)
                    .distinct()
                )
            ).scalars()
        )
        years = sorted(
            {row.year for row in (await session.execute(select(WorkforceReturn.as_at))).scalars()}
        )
    assert len(years) == 2
    reader = await make_key("read", ics_code=DEMO_ICB)
    response = await client.get(
        f"/v1/areas/{DEMO_ICB}/track-record", params={"iterations": 10}, headers=reader
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["return_years"] == years
    by_sector = {
        (c["group"], c["measure"]): c for c in report["comparisons"] if c["level"] == "sector"
    }
    for sector in sectors:
        for measure in ("fte_in_post", "vacant_fte"):
            item = by_sector[(str(sector), measure)]
            assert (item["base_year"], item["year"]) == (years[0], years[1])
            assert item["error"] == pytest.approx(item["projected"] - item["actual"])
            assert item["actual"] > 0
            assert item["p10"] <= item["p90"]
    summaries = {(s["level"], s["group"], s["measure"]): s for s in report["summaries"]}
    total = summaries[("all", "all", "fte_in_post")]
    assert total["comparisons"] == 1
    assert total["mape"] is not None
    assert 0 <= total["mape"] < 50
    assert set(report["coverage_by_measure"]) == {"fte_in_post", "vacant_fte"}
    assert report["expected_coverage"] == 0.8

    # The CLI gives the same report.
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        # The command runs its own event loop, so it runs beside this test's, in a thread.
        result = await asyncio.to_thread(
            CliRunner().invoke,
            cli_app,
            ["track-record", "--area", DEMO_ICB, "--iterations", "10", "--json"],
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["summaries"] == report["summaries"]

    # Bad input and keys that may not.
    url = f"/v1/areas/{DEMO_ICB}/track-record"
    assert_problem(
        await client.get(url, params={"roles": "no-such-role"}, headers=reader),
        422,
        "unknown_roles",
    )
    assert_problem(
        await client.get(url, params={"iterations": 5000}, headers=reader), 422,
        "validation_failed",
    )  # fmt: skip
    assert_problem(
        await client.get("/v1/areas/E06000049/track-record", headers=reader), 422, "not_an_icb"
    )
    outsider = await make_key("read", ics_code=ICB_B)
    assert_problem(await client.get(url, headers=outsider), 404, "area_not_found")
    assert_problem(await client.get("/v1/areas/E54999999/track-record", headers=reader), 404,
                   "area_not_found")  # fmt: skip
    admin = await make_key("admin")
    assert_problem(
        await client.get(f"/v1/areas/{ICB_B}/track-record", headers=admin), 422, "no_later_returns"
    )


async def _pop65_ratio(sessionmaker: async_sessionmaker[AsyncSession], dataset_id: object) -> float:
    bands = ("65-69", "70-74", "75-79", "80-84", "85-89", "90+")
    async with sessionmaker() as session:
        rows = dict(
            (
                await session.execute(
                    select(Population.year, func.sum(Population.persons))
                    .where(
                        Population.dataset_id == dataset_id,
                        Population.area_code == LAD_A1,
                        Population.age_band.in_(bands),
                        Population.year.in_([2025, 2026]),
                    )
                    .group_by(Population.year)
                )
            ).all()
        )
    return float(rows[2026]) / float(rows[2025])


async def test_returns_that_follow_the_model_give_zero_error(
    reference: ReferenceLoadSummary,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    make_key: KeyFactory,
) -> None:
    """No starters, leavers or retirements (everyone 25-34): FTE in post stays put, and demand
    grows with the population aged 65+; the later return posts exactly that."""
    role = (await make_role(sessionmaker, default_demand_driver="population_65_plus")).code
    ratio = await _pop65_ratio(sessionmaker, reference.dataset_id)
    admin = await make_key("admin")
    fte, vacant = 36.0, 4.0
    for index in range(2):
        org = await make_organisation(sessionmaker, home_lad_code=LAD_A1, ics_code=ICB_A)
        for as_at, vacant_fte in (
            ("2025-03-31", vacant),
            ("2026-03-31", (fte + vacant) * ratio - fte),
        ):
            body = {
                "as_at": as_at,
                "lines": [
                    {
                        "role_code": role, "headcount": 40 + index, "fte_in_post": fte,
                        "vacant_fte": vacant_fte, "starters_12m": 0, "leavers_12m": 0,
                        "sickness_days_12m": 200, "agency_fte": 0, "bank_fte": 0,
                        "age_under_25": 0, "age_25_34": 40 + index, "age_35_44": 0,
                        "age_45_54": 0, "age_55_64": 0, "age_65_plus": 0,
                    }
                ],
            }  # fmt: skip
            response = await client.post(
                f"/v1/organisations/{org.id}/returns", json=body, headers=admin
            )
            assert response.status_code == 201, response.text

    response = await client.get(
        f"/v1/areas/{ICB_A}/track-record", params={"roles": role, "iterations": 20},
        headers=admin,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["roles"] == [role]
    assert report["comparisons"], report
    for item in report["comparisons"]:
        assert item["error"] == pytest.approx(0.0, abs=1e-9), item
        assert item["absolute_percentage_error"] == pytest.approx(0.0, abs=1e-9)
    assert {c["measure"] for c in report["comparisons"]} == {"fte_in_post", "vacant_fte"}
    assert {c["level"] for c in report["comparisons"]} == {"role", "sector", "all"}
    fte_rows = [c for c in report["comparisons"] if c["measure"] == "fte_in_post"]
    assert all(c["inside_p10_p90"] for c in fte_rows)
    for summary in report["summaries"]:
        assert summary["mape"] == pytest.approx(0.0, abs=1e-9)
        assert summary["mean_signed_error"] == pytest.approx(0.0, abs=1e-9)
