"""GET /v1/areas/{code}/population and /v1/population-datasets."""

from __future__ import annotations

import csv
import functools
import io
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.domain.reference.loader import ReferenceLoadSummary, load_population_file
from shared.db.session import transaction
from shared.models import Area, AreaType, Population, PopulationGroupTotal
from shared.reference import bands, files
from shared.reference.bands import AgeGroup
from tests.factories import (
    ENGLAND,
    ICB_A,
    LAD_A2,
    LAD_B1,
    drop_population_dataset,
    population_rows,
    write_population_csv,
)
from tests.helpers import KeyFactory, assert_problem

POPULATION = f"/v1/areas/{ENGLAND}/population"


def _years(body: dict[str, Any]) -> dict[int, int]:
    return {row["year"]: row["persons"] for row in body["years"]}


def _fields(body: dict[str, object]) -> list[str]:
    errors = body["errors"]
    assert isinstance(errors, list)
    return [error["field"] for error in errors]


async def test_england_65_plus_matches_ons(
    client: httpx.AsyncClient, make_key: KeyFactory, reference: ReferenceLoadSummary
) -> None:
    headers = await make_key("read")
    response = await client.get(
        POPULATION,
        params={"group": "65_plus", "year_from": 2024, "year_to": 2040},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["dataset"], body["age_group"], body["age_band"], body["sex"]) == (
        "ons-snpp-2018",
        "65_plus",
        None,
        "all",
    )
    assert body["area"] == {"code": ENGLAND, "name": "England", "type": "country"}
    years = _years(body)
    assert list(years) == list(range(2024, 2041))
    assert years[2040] == 14_527_073
    assert years[2024] == 11_241_833
    for row in body["years"]:
        assert row["female"] + row["male"] == row["persons"]


async def test_defaults_cover_every_year_and_everyone(
    client: httpx.AsyncClient, make_key: KeyFactory, reference: ReferenceLoadSummary
) -> None:
    headers = await make_key("read")
    years = _years((await client.get(POPULATION, headers=headers)).json())
    assert list(years) == list(range(2018, 2044))
    # The checks SOURCES.md records for the files.
    assert years[2018] == 55_977_178
    assert years[2043] == 61_744_098


async def test_sex_and_one_band(
    client: httpx.AsyncClient, make_key: KeyFactory, reference: ReferenceLoadSummary
) -> None:
    headers = await make_key("read")
    params: dict[str, str | int] = {"group": "85_plus", "year_from": 2030, "year_to": 2030}
    both = (await client.get(POPULATION, params=params, headers=headers)).json()["years"][0]
    female = (await client.get(POPULATION, params={**params, "sex": "F"}, headers=headers)).json()[
        "years"
    ][0]
    male = (await client.get(POPULATION, params={**params, "sex": "M"}, headers=headers)).json()[
        "years"
    ][0]
    assert female == {
        "year": 2030,
        "persons": both["female"],
        "female": both["female"],
        "male": None,
    }
    assert male == {"year": 2030, "persons": both["male"], "female": None, "male": both["male"]}

    bands = {}
    for band in ("85-89", "90+", "90"):
        response = await client.get(
            POPULATION,
            params={"age_band": band, "year_from": 2030, "year_to": 2030},
            headers=headers,
        )
        body = response.json()
        assert (body["age_band"], body["age_group"]) == ("90+" if band == "90" else band, None)
        bands[band] = body["years"][0]["persons"]
    assert bands["90+"] == bands["90"]
    assert bands["85-89"] + bands["90+"] == both["persons"]


@functools.cache
def _summary(code: str) -> dict[int, dict[str, int]]:
    return {
        int(row["year"]): {key: int(value) for key, value in row.items() if key.startswith("pop")}
        for row in files.read_bundled_rows(files.POPULATION_SUMMARY_FILE)
        if row["area_code"] == code
    }


@pytest.mark.parametrize("code", [ENGLAND, ICB_A, LAD_A2, "E07000178"])  # Oxford: students
async def test_every_group_reproduces_the_ons_summary(
    client: httpx.AsyncClient, make_key: KeyFactory, reference: ReferenceLoadSummary, code: str
) -> None:
    headers = await make_key("read")
    summary = _summary(code)
    for group in ("all", "0_17", "18_64", "65_plus", "75_plus", "85_plus"):
        response = await client.get(
            f"/v1/areas/{code}/population", params={"group": group}, headers=headers
        )
        body = response.json()
        assert _years(body) == {year: row[f"pop_{group}"] for year, row in summary.items()}
        if group in ("0_17", "18_64"):
            assert body["method"].startswith("ONS's published 0-17 figures")
            assert all(row["female"] + row["male"] == row["persons"] for row in body["years"])


async def _lad_figures(
    sessionmaker: async_sessionmaker[AsyncSession], dataset_id: uuid.UUID, year: int
) -> dict[str, dict[AgeGroup, int]]:
    """Every LAD's group figures for a year, from the stored rows in two queries (asking the
    API for 296 LADs x 3 groups would make this test slow)."""
    async with transaction(sessionmaker) as session:
        lad_codes = select(Area.code).where(Area.type == AreaType.lad)
        rows = (
            await session.execute(
                select(
                    Population.area_code, Population.sex, Population.age_band, Population.persons
                ).where(
                    Population.dataset_id == dataset_id,
                    Population.year == year,
                    Population.area_code.in_(lad_codes),
                )
            )
        ).all()
        published = dict(
            (
                await session.execute(
                    select(PopulationGroupTotal.area_code, PopulationGroupTotal.persons).where(
                        PopulationGroupTotal.dataset_id == dataset_id,
                        PopulationGroupTotal.year == year,
                        PopulationGroupTotal.age_group == "0_17",
                    )
                )
            ).all()
        )
    cells: dict[str, dict[tuple[int, str, str], int]] = defaultdict(dict)
    for code, sex, band, persons in rows:
        cells[code][(year, sex, band)] = persons
    return {
        code: {
            group: bands.group_figures(
                lad_cells, [year], group, published_0_17={year: published[code]}
            )[0].persons
            for group in ICB_CHECK_GROUPS
        }
        for code, lad_cells in cells.items()
    }


ICB_CHECK_GROUPS = (AgeGroup.all, AgeGroup.aged_65_plus, AgeGroup.aged_0_17)
# ONS rounds each area's figures from fractional projections, so every summed value may be off
# by half a person, in the ICB and in each LAD: 38 band cells for everyone, 12 for 65+, and 36
# single years of age x sex behind the published 0-17.
ROUNDED_CELLS = {AgeGroup.all: 38, AgeGroup.aged_65_plus: 12, AgeGroup.aged_0_17: 36}


async def test_every_icb_equals_the_sum_of_its_lads(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    year = 2035
    headers = await make_key("read")
    icbs = (await client.get("/v1/areas?type=icb&limit=100", headers=headers)).json()["items"]
    lads = (await client.get("/v1/areas?type=lad&limit=500", headers=headers)).json()["items"]
    assert len(icbs) == 42
    lads_of: dict[str, list[str]] = defaultdict(list)
    for lad in lads:
        lads_of[lad["parent_code"]].append(lad["code"])
    assert sum(len(codes) for codes in lads_of.values()) == 296
    lad_figures = await _lad_figures(sessionmaker, reference.dataset_id, year)

    async def served(code: str, group: AgeGroup) -> int:
        response = await client.get(
            f"/v1/areas/{code}/population",
            params={"group": group.value, "year_from": year, "year_to": year},
            headers=headers,
        )
        persons: int = response.json()["years"][0]["persons"]
        return persons

    for group in ICB_CHECK_GROUPS:
        # The LAD figures above are what the API serves for a LAD.
        assert await served(LAD_A2, group) == lad_figures[LAD_A2][group]
        for icb in icbs:
            codes = lads_of[icb["code"]]
            assert codes, f"{icb['code']} has no LADs"
            total = sum(lad_figures[code][group] for code in codes)
            tolerance = 0.5 * ROUNDED_CELLS[group] * (len(codes) + 1)
            icb_persons = await served(icb["code"], group)
            assert abs(icb_persons - total) <= tolerance, (icb["code"], group, icb_persons, total)


async def test_csv_by_format_or_accept(
    client: httpx.AsyncClient, make_key: KeyFactory, reference: ReferenceLoadSummary
) -> None:
    headers = await make_key("read")
    params: dict[str, str | int] = {"group": "65_plus", "year_from": 2039, "year_to": 2040}
    by_format = await client.get(POPULATION, params={**params, "format": "csv"}, headers=headers)
    by_accept = await client.get(
        POPULATION, params=params, headers={**headers, "Accept": "text/csv"}
    )
    for response in (by_format, by_accept):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        assert (
            "population-E92000001-ons-snpp-2018-65_plus.csv"
            in response.headers["content-disposition"]
        )
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert [row["year"] for row in rows] == ["2039", "2040"]
        assert rows[1]["persons"] == "14527073"
        assert (rows[1]["area_code"], rows[1]["age"], rows[1]["sex"]) == (ENGLAND, "65_plus", "all")
        assert int(rows[1]["female"]) + int(rows[1]["male"]) == 14_527_073
    assert by_format.headers["etag"] == by_accept.headers["etag"]
    json_etag = (await client.get(POPULATION, params=params, headers=headers)).headers["etag"]
    assert json_etag != by_format.headers["etag"]


async def test_population_etag_and_304(
    client: httpx.AsyncClient, make_key: KeyFactory, reference: ReferenceLoadSummary
) -> None:
    headers = await make_key("read")
    params = {"group": "75_plus"}
    first = await client.get(POPULATION, params=params, headers=headers)
    etag = first.headers["etag"]
    cached = await client.get(POPULATION, params=params, headers={**headers, "If-None-Match": etag})
    assert (cached.status_code, cached.headers["etag"], cached.content) == (304, etag, b"")
    other = await client.get(
        POPULATION, params={"group": "85_plus"}, headers={**headers, "If-None-Match": etag}
    )
    assert other.status_code == 200
    assert other.headers["etag"] != etag


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"dataset": "no-such-dataset"}, ["dataset"]),
        ({"year_from": 2017}, ["year_from"]),
        ({"year_to": 2044}, ["year_to"]),
        ({"year_from": 2030, "year_to": 2020}, ["year_from"]),
        ({"group": "over_100"}, ["group.0"]),
        ({"age_band": "15-17"}, ["age_band"]),
        ({"age_band": "0-4", "group": "all"}, ["age_band"]),
        ({"sex": "X"}, ["sex"]),
        ({"year_from": "soon"}, ["year_from"]),
        ({"format": "xml"}, ["format"]),
    ],
)
async def test_bad_parameters_are_422_naming_the_field(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
    params: dict[str, Any],
    fields: list[str],
) -> None:
    headers = await make_key("read")
    response = await client.get(POPULATION, params=params, headers=headers)
    assert _fields(assert_problem(response, 422, "validation_failed")) == fields


async def test_unknown_area_is_404_and_a_key_is_needed(
    client: httpx.AsyncClient, make_key: KeyFactory, reference: ReferenceLoadSummary
) -> None:
    headers = await make_key("read")
    assert_problem(
        await client.get("/v1/areas/E06999999/population", headers=headers), 404, "area_not_found"
    )
    assert_problem(await client.get(POPULATION), 401, "missing_credentials")
    assert_problem(await client.get("/v1/population-datasets"), 401, "missing_credentials")
    bound = await make_key("read", ics_code="E54000050")
    assert (await client.get(POPULATION, headers=bound)).status_code == 200


async def test_population_datasets_are_listed(
    client: httpx.AsyncClient, make_key: KeyFactory, reference: ReferenceLoadSummary
) -> None:
    headers = await make_key("read")
    body = (await client.get("/v1/population-datasets", headers=headers)).json()
    bundled = next(item for item in body["items"] if item["name"] == "ons-snpp-2018")
    assert body["total"] >= 1
    assert bundled["id"] == str(reference.dataset_id)
    assert (bundled["base_year"], bundled["first_year"], bundled["last_year"]) == (2018, 2018, 2043)
    assert bundled["row_count"] == 355_680
    assert bundled["source"].startswith("ONS 2018-based subnational population projections")
    assert bundled["loaded_at"]
    body = assert_problem(
        await client.get("/v1/population-datasets?page=0", headers=headers),
        422,
        "validation_failed",
    )
    assert _fields(body) == ["page"]


async def test_a_dataset_without_published_0_17_estimates_15_17_as_three_fifths(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
    sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    name = "test-api-variant"
    await drop_population_dataset(sessionmaker, name)
    path = write_population_csv(tmp_path / "variant.csv", population_rows(areas=[LAD_B1]))
    await load_population_file(
        sessionmaker, path, name=name, source="test", base_year=2020, actor="tests"
    )
    try:
        headers = await make_key("read")
        url = f"/v1/areas/{LAD_B1}/population"
        under_18 = (
            await client.get(url, params={"dataset": name, "group": "0_17"}, headers=headers)
        ).json()
        # Per sex: 0-4, 5-9, 10-14 = 100 + 101 + 102, and 3/5 of 15-19 (103) = 61.8.
        assert under_18["method"].startswith("15-17 estimated as 3/5")
        assert under_18["years"][0] == {"year": 2020, "persons": 730, "female": 365, "male": 365}
        adults = (
            await client.get(url, params={"dataset": name, "group": "18_64"}, headers=headers)
        ).json()
        everyone = (await client.get(url, params={"dataset": name}, headers=headers)).json()
        older = (
            await client.get(url, params={"dataset": name, "group": "65_plus"}, headers=headers)
        ).json()
        assert (
            under_18["years"][0]["persons"]
            + adults["years"][0]["persons"]
            + older["years"][0]["persons"]
            == everyone["years"][0]["persons"]
        )
        assert _years(everyone) == {2020: 4142, 2021: 4142, 2022: 4142}
        body = assert_problem(
            await client.get(url, params={"dataset": name, "year_to": 2030}, headers=headers),
            422,
            "validation_failed",
        )
        assert _fields(body) == ["year_to"]
        assert_problem(
            await client.get(
                f"/v1/areas/{LAD_A2}/population", params={"dataset": name}, headers=headers
            ),
            404,
            "population_not_found",
        )
    finally:
        await drop_population_dataset(sessionmaker, name)


async def test_several_groups_and_bands_in_one_call(
    client: httpx.AsyncClient, make_key: KeyFactory, reference: ReferenceLoadSummary
) -> None:
    reader = await make_key("read")
    url = "/v1/areas/E54000008/population"
    both = await client.get(
        url,
        params=[("group", "65_plus"), ("group", "0_17"), ("year_to", 2020)],
        headers=reader,
    )
    assert both.status_code == 200, both.text
    series = both.json()["series"]
    assert [s["age_group"] for s in series] == ["65_plus", "0_17"]
    one = await client.get(url, params={"group": "0_17", "year_to": 2020}, headers=reader)
    assert series[1]["years"] == one.json()["years"]
    assert both.json()["years"] == series[0]["years"]
    assert all(isinstance(y["persons"], int) for y in series[0]["years"])
    bands = await client.get(
        url,
        params=[("age_band", "85-89"), ("age_band", "90+"), ("format", "csv")],
        headers=reader,
    )
    ages = {line.split(",")[3] for line in bands.text.splitlines()[1:]}
    assert ages == {"85-89", "90+"}
    assert_problem(
        await client.get(url, params=[("group", "0_17"), ("age_band", "90+")], headers=reader),
        422,
        "validation_failed",
    )
