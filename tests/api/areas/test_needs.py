"""Need indicators: England's people aged 65+ with dementia for two years equal population x
rate recomputed here from the bundled files, with the 95% interval; bad input and keys."""

from __future__ import annotations

import csv
import gzip
from collections import defaultdict

import httpx
import pytest

from services.domain.reference.loader import ReferenceLoadSummary
from shared.reference.files import DEMENTIA_PREVALENCE_FILE, POPULATION_FILE
from tests.helpers import REPO_ROOT, KeyFactory, assert_problem

DATA = REPO_ROOT / "shared" / "reference_data"
ENGLAND = "E92000001"
YEARS = (2025, 2035)


def _expected() -> dict[tuple[int, str], tuple[float, float, float]]:
    """(year, sex) -> (persons, lower, upper) from the shipped gzipped CSVs."""
    rates: dict[tuple[str, str], tuple[float, float, float]] = {}
    with gzip.open(DATA / DEMENTIA_PREVALENCE_FILE, "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            rates[(row["sex"][0], row["age_band"])] = (
                float(row["prevalence"]),
                float(row["ci95_lower"]),
                float(row["ci95_upper"]),
            )
    totals: dict[tuple[int, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    with gzip.open(DATA / POPULATION_FILE, "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["area_code"] != ENGLAND or int(row["year"]) not in YEARS:
                continue
            rate = rates.get((row["sex"], row["age_band"]))
            if rate is None:
                continue
            persons = float(row["population"])
            for sex in (row["sex"], "all"):
                for i in range(3):
                    totals[(int(row["year"]), sex)][i] += persons * rate[i]
    return {key: (v[0], v[1], v[2]) for key, v in totals.items()}


async def test_england_dementia_65_plus_is_population_times_rate(
    client: httpx.AsyncClient, make_key: KeyFactory, reference: ReferenceLoadSummary
) -> None:
    reader = await make_key("read")
    expected = _expected()
    for year in YEARS:
        response = await client.get(
            f"/v1/areas/{ENGLAND}/needs",
            params={"indicator": "dementia_65_plus", "year_from": year, "year_to": year},
            headers=reader,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["indicator"] == "dementia_65_plus"
        assert "CFAS II" in body["source"]
        assert body["interval"].startswith("95%")
        totals = {(t["year"], t["sex"]): t for t in body["totals"]}
        assert set(totals) == {(year, "F"), (year, "M"), (year, "all")}
        for sex in ("F", "M", "all"):
            persons, lower, upper = expected[(year, sex)]
            total = totals[(year, sex)]
            assert total["persons"] == pytest.approx(persons, rel=1e-12)
            assert total["persons_lower"] == pytest.approx(lower, rel=1e-12)
            assert total["persons_upper"] == pytest.approx(upper, rel=1e-12)
            assert total["persons_lower"] < total["persons"] < total["persons_upper"]
        # 2 sexes x 6 bands 65-69 .. 90+, each population x rate.
        assert len(body["cells"]) == 12
        for cell in body["cells"]:
            assert cell["persons"] == pytest.approx(cell["population"] * cell["rate"])
    # Sanity against the published order of magnitude: about 7% of England's 65+ (Dementia UK).
    assert 700_000 < expected[(2025, "all")][0] < 1_000_000
    assert expected[(2035, "all")][0] > expected[(2025, "all")][0]


async def test_needs_csv_filters_and_bad_input(
    client: httpx.AsyncClient, make_key: KeyFactory, reference: ReferenceLoadSummary
) -> None:
    reader = await make_key("read", ics_code="E54000008")
    url = "/v1/areas/E06000049/needs"
    as_csv = await client.get(
        url, params={"year_from": 2030, "year_to": 2031, "sex": "F", "format": "csv"},
        headers=reader,
    )  # fmt: skip
    assert as_csv.status_code == 200
    lines = as_csv.text.strip().splitlines()
    assert lines[0].split(",")[:5] == ["area_code", "indicator", "year", "sex", "age_band"]
    assert len(lines) == 1 + 2 * 6
    assert all(",F," in line for line in lines[1:])

    unknown = assert_problem(
        await client.get(url, params={"indicator": "loneliness"}, headers=reader),
        422,
        "unknown_indicator",
    )
    assert unknown["known_indicators"] == ["dementia_65_plus"]
    assert "dementia_65_plus" in unknown["errors"][0]["message"]
    for params, code in (
        ({"year_from": 1990}, "year_out_of_range"),
        ({"year_from": 2030, "year_to": 2025}, "bad_year_range"),
        ({"dataset": "nope"}, "unknown_dataset"),
    ):
        problem = assert_problem(
            await client.get(url, params=params, headers=reader), 422, "validation_failed"
        )
        assert problem["errors"][0]["code"] == code
    assert_problem(await client.get("/v1/areas/E06999999/needs", headers=reader), 404,
                   "area_not_found")  # fmt: skip
    assert (await client.get(url)).status_code == 401
