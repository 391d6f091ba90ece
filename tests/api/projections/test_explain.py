"""Explanation between any two years over the API: gross and net contributions that add up
to the change in the results, sectors as sums of their roles, and the base-year gap split
into the returns' vacancies and sickness absence."""

from __future__ import annotations

import itertools

import httpx
import pytest
from fastapi import FastAPI

from services.domain.reference.loader import ReferenceLoadSummary
from tests.api.projections.helpers import run_projection as _run
from tests.api.projections.helpers import setup_icb as _setup_icb
from tests.factories import ICB_A, ICB_B
from tests.helpers import KeyFactory, assert_problem


async def test_any_two_years_add_up_and_the_base_gap_splits(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
) -> None:
    admin = await make_key("admin")
    roles = await _setup_icb(client, app.state.sessionmaker, admin)
    run = await _run(client, app, admin, scope=ICB_A, horizon=4, iterations=0, seed=1)
    url = f"/v1/projections/{run['id']}/explain"
    results = await client.get(
        f"/v1/projections/{run['id']}/results",
        params={"area": ICB_A, "measure": "gap_after_sharing_fte", "limit": 500},
        headers=admin,
    )
    gap_after = {(r["role_code"], r["year"]): r["principal"] for r in results.json()["items"]}

    for role in ("all", *roles):
        for start, end in itertools.combinations(range(2025, 2030), 2):
            response = await client.get(
                url, params={"role": role, "from": start, "to": end}, headers=admin
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert (body["year_from"], body["year_to"]) == (start, end)
            # /results figures are rounded to 2 decimals each; explanations are exact.
            expected = gap_after[(role, end)] - gap_after[(role, start)]
            assert body["total_change_fte"] == pytest.approx(expected, abs=0.0100001)
            total = body["total_change_fte"]
            assert sum(body["contributions_fte"].values()) == pytest.approx(total, abs=1e-8)
            net = body["net_fte"]
            assert net["demand"] + net["supply"] + net["sharing"] == pytest.approx(total, abs=1e-8)
            contributions = body["contributions_fte"]
            assert net["supply"] == pytest.approx(
                contributions["leavers"]
                + contributions["retirement"]
                + contributions["joiners"]
                + contributions["cross_sector_flows"]
            )

    default = (await client.get(url, headers=admin)).json()
    assert (default["year_from"], default["year_to"]) == (2025, 2029)
    split = default["base_gap"]
    assert split["year"] == 2025
    assert split["gap_fte"] == pytest.approx(split["vacancies_fte"] + split["sickness_absence_fte"])
    # The setup posts vacant_fte 4 (first role) and 2 (second) for each of two organisations.
    assert split["vacancies_fte"] == pytest.approx(2 * 4 + 2 * 2)
    # FTE in post x sickness days / (headcount x 225 working days), per line.
    sickness = sum(fte * 310 / (40 * 225.0) for fte in (30.0, 31.0, 32.5, 32.5))
    assert split["sickness_absence_fte"] == pytest.approx(sickness)
    gap = await client.get(
        f"/v1/projections/{run['id']}/results",
        params={"area": ICB_A, "role": "all", "measure": "gap_fte", "year_to": 2025},
        headers=admin,
    )
    assert split["gap_fte"] == pytest.approx(gap.json()["items"][0]["principal"], abs=0.005)

    # A sector is the sum of its roles (both test roles are in one sector).
    sector = await client.get(url, params={"sector": "health", "from": 2026}, headers=admin)
    if sector.status_code == 404:
        sector = await client.get(
            url, params={"sector": "social_care", "from": 2026}, headers=admin
        )
    assert sector.status_code == 200, sector.text
    assert sector.json()["sector"] in ("health", "social_care")

    for params, code in (
        ({"from": 2029, "to": 2026}, "year_out_of_range"),
        ({"from": 2020}, "year_out_of_range"),
        ({"to": 2040}, "year_out_of_range"),
        ({"role": roles[0], "sector": "health"}, "role_and_sector"),
        ({"from": "soon"}, "validation_failed"),
    ):
        assert_problem(await client.get(url, params=params, headers=admin), 422, code)
    assert_problem(
        await client.get(url, params={"sector": "no-such-sector"}, headers=admin),
        404,
        "explanation_not_found",
    )
    outsider = await make_key("read", ics_code=ICB_B)
    assert_problem(await client.get(url, headers=outsider), 404, "projection_not_found")
