"""Paired comparison of a scenario against the baseline: common random numbers make the
scenario's extra international recruits show in every draw, the difference of principals is
the principal of the difference, and runs that do not pair up are refused."""

from __future__ import annotations

import io
from typing import Any

import httpx
from fastapi import FastAPI
from openpyxl import load_workbook

from services.domain.reference.loader import ReferenceLoadSummary
from tests.api.projections.helpers import run_projection as _run
from tests.api.projections.helpers import setup_icb as _setup_icb
from tests.factories import ICB_A, ICB_B, LAD_A1, LAD_B1
from tests.helpers import KeyFactory, assert_problem

INTERNATIONAL = {
    "name": "more-international",
    "title": "International recruitment of care workers",
    "rationale": {
        "international_recruitment": {
            "rationale": "Overseas recruitment campaign",
            "source": "ICS workforce plan",
        }
    },
}


def _rows(body: dict[str, Any], measure: str, group: str) -> list[dict[str, Any]]:
    return [r for r in body["rows"] if r["measure"] == measure and r["group"] == group]


async def _principals(
    client: httpx.AsyncClient, key: dict[str, str], run_id: str, role: str, measure: str
) -> dict[int, float]:
    response = await client.get(
        f"/v1/projections/{run_id}/results",
        params={"area": ICB_A, "role": role, "measure": measure, "limit": 500},
        headers=key,
    )
    assert response.status_code == 200
    return {item["year"]: item["principal"] for item in response.json()["items"]}


async def test_scenario_against_baseline_is_paired_draw_by_draw(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
    seeded_roles: list[str],
) -> None:
    admin = await make_key("admin")
    roles = await _setup_icb(client, app.state.sessionmaker, admin)
    scenario = {
        **INTERNATIONAL,
        "parameters": {"international_recruitment": [{"role": roles[0], "headcount_per_year": 12}]},
    }
    created = await client.post("/v1/scenarios", json=scenario, headers=admin)
    assert created.status_code == 201, created.text
    baseline = await _run(client, app, admin, scope=ICB_A, horizon=5, iterations=40, seed=11)
    plan = await _run(
        client, app, admin, scope=ICB_A, horizon=5, iterations=40, seed=11,
        scenario="more-international",
    )  # fmt: skip
    assert baseline["status"] == plan["status"] == "succeeded"

    reader = await make_key("read", ics_code=ICB_A)
    params = {"base": baseline["id"], "other": plan["id"]}
    response = await client.get("/v1/projections/compare", params=params, headers=reader)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["draws"] == 40
    assert body["area_code"] == ICB_A
    assert body["base"]["scenario"] == "baseline"
    assert body["other"]["scenario"] == "more-international"

    for group in (roles[0], "all"):
        supply = _rows(body, "supply_fte", group)
        assert [r["year"] for r in supply] == list(range(2025, 2031))
        # Base year: nothing has happened yet, in any draw.
        assert supply[0]["difference_principal"] == 0.0
        assert supply[0]["share_of_draws_better"] == 0.0
        for row in supply[1:]:
            # Every one of the 40 paired draws has more supply under the scenario.
            assert row["share_of_draws_better"] == 1.0
            assert row["difference_p10"] > 0.0
            assert row["difference_p10"] <= row["difference_p50"] <= row["difference_p90"]
        gap = _rows(body, "gap_fte", group)
        assert all(r["share_of_draws_better"] == 1.0 for r in gap[1:])
    # The other role is untouched: zero difference in every draw.
    other_role = _rows(body, "supply_fte", roles[1])
    assert all(r["difference_p90"] == 0.0 and r["difference_p10"] == 0.0 for r in other_role)

    # The difference of principals is the principal of the difference.
    for role in (roles[0], "all"):
        for measure in ("supply_fte", "gap_fte", "demand_fte", "gap_after_sharing_fte"):
            base_values = await _principals(client, reader, baseline["id"], role, measure)
            plan_values = await _principals(client, reader, plan["id"], role, measure)
            for row in _rows(body, measure, role):
                expected = plan_values[row["year"]] - base_values[row["year"]]
                # /results figures are rounded to 2 decimals each.
                assert abs(row["difference_principal"] - expected) <= 0.0100001
                assert row["difference_principal"] == row["other_principal"] - row["base_principal"]

    by_sector = await client.get(
        "/v1/projections/compare",
        params={**params, "by": "sector", "measure": "supply_fte", "year_from": 2027},
        headers=reader,
    )
    assert by_sector.status_code == 200
    groups = {r["group"] for r in by_sector.json()["rows"]}
    assert "all" in groups
    assert len(groups) >= 2
    assert {r["year"] for r in by_sector.json()["rows"]} == set(range(2027, 2031))
    assert {r["measure"] for r in by_sector.json()["rows"]} == {"supply_fte"}

    as_csv = await client.get(
        "/v1/projections/compare", params={**params, "format": "csv"}, headers=reader
    )
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    lines = as_csv.text.strip().splitlines()
    assert lines[0].startswith("area_code,group,measure,year,base_principal")
    assert len(lines) == len(body["rows"]) + 1

    as_xlsx = await client.get(
        "/v1/projections/compare", params={**params, "format": "xlsx"}, headers=reader
    )
    assert as_xlsx.status_code == 200
    workbook = load_workbook(io.BytesIO(as_xlsx.content), read_only=True)
    sheet_rows = list(workbook["comparison"].iter_rows(values_only=True))
    assert sheet_rows[0][:4] == ("area_code", "group", "measure", "year")
    assert len(sheet_rows) == len(body["rows"]) + 1

    # A LAD of the ICB with returns: all roles only, paired as well.
    lad = await client.get(
        "/v1/projections/compare", params={**params, "area": LAD_A1}, headers=reader
    )
    assert lad.status_code == 200, lad.text
    assert {r["group"] for r in lad.json()["rows"]} == {"all"}
    assert all(
        r["share_of_draws_better"] == 1.0 for r in _rows(lad.json(), "supply_fte", "all")[1:]
    )
    # A LAD of another ICB is outside the reader's ICS.
    assert_problem(
        await client.get(
            "/v1/projections/compare", params={**params, "area": LAD_B1}, headers=reader
        ),
        404,
        "area_not_found",
    )


async def test_runs_that_do_not_pair_up_are_refused(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
) -> None:
    admin = await make_key("admin")
    await _setup_icb(client, app.state.sessionmaker, admin)
    first = await _run(client, app, admin, scope=ICB_A, horizon=4, iterations=5, seed=2)
    longer = await _run(client, app, admin, scope=ICB_A, horizon=5, iterations=5, seed=2)
    reseeded = await _run(client, app, admin, scope=ICB_A, horizon=4, iterations=5, seed=3)

    def url(other: str, **extra: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in extra.items())
        return f"/v1/projections/compare?base={first['id']}&other={other}&{query}"

    problem = assert_problem(await client.get(url(longer["id"]), headers=admin), 422,
                             "runs_not_comparable")  # fmt: skip
    assert problem["errors"][0]["field"] == "horizon"
    assert_problem(await client.get(url(reseeded["id"]), headers=admin), 422, "runs_not_paired")
    assert_problem(
        await client.get("/v1/projections/compare?base=" + first["id"], headers=admin),
        422,
        "validation_failed",
    )
    assert_problem(
        await client.get(url(first["id"], group="no-such-role"), headers=admin),
        422,
        "unknown_group",
    )
    assert_problem(
        await client.get(url(first["id"], format="pdf"), headers=admin), 422, "validation_failed"
    )
    same = await client.get(url(first["id"]), headers=admin)
    assert same.status_code == 200
    assert all(row["difference_p90"] == 0.0 for row in same.json()["rows"])

    # Another ICS's key cannot see either run; an organisation key neither.
    other_ics = await make_key("read", ics_code=ICB_B)
    assert_problem(await client.get(url(first["id"]), headers=other_ics), 404,
                   "projection_not_found")  # fmt: skip
    assert (await client.get(url(first["id"]))).status_code == 401
