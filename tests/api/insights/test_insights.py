"""Pay parity, the data-gaps report and the unpaid workforce, per area, through the API."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date
from typing import Any

import httpx
import openpyxl
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.domain.insights import census
from services.domain.insights.pay import equivalences
from services.domain.reference.loader import ReferenceLoadSummary
from shared.reference.files import bundled_path
from tests.api.returns.helpers import line
from tests.factories import (
    ENGLAND,
    ICB_A,
    ICB_B,
    LAD_A2,
    ensure_small_geography,
    make_organisation,
    make_role,
)
from tests.helpers import KeyFactory, assert_problem

AS_AT = "2025-03-31"
ON = "2025-06-30"


def test_census_tables_match_the_figures_ons_publishes() -> None:
    """England totals of the shipped Census 2021 tables against ONS's published figures."""
    unpaid = census.sum_over(census.unpaid_care_by_lad(), census.unpaid_care_by_lad().keys())
    carers = sum(unpaid[b] for b in census.UNPAID_BANDS)
    assert len(census.unpaid_care_by_lad()) == 296
    assert unpaid["total"] == 53_413_087
    assert carers == 4_678_260
    # ONS publishes 53,413,098 residents aged 5+ and 4,678,265 carers for England: the sums of
    # perturbed LAD cells come within a few persons.
    assert abs(unpaid["total"] - 53_413_098) <= 20
    assert abs(carers - 4_678_265) <= 20
    assert unpaid["total"] == unpaid["none"] + carers
    ethnic = census.sum_over(census.ethnic_group_by_lad(), census.ethnic_group_by_lad().keys())
    assert ethnic["total"] == 56_490_065
    assert abs(ethnic["total"] - 56_490_048) <= 20
    assert ethnic["white"] == 45_783_379
    assert round(100 * ethnic["asian"] / ethnic["total"], 1) == 9.6
    assert round(100 * ethnic["black"] / ethnic["total"], 1) == 4.2
    assert sum(ethnic[g] for g in ("asian", "black", "mixed", "white", "other")) == ethnic["total"]
    # TS038: ONS publishes 56,490,048 usual residents in England and 9,774,510 disabled under
    # the Equality Act (17.3% crude; 17.7% age-standardised).
    by_lad = census.disability_by_lad()
    assert len(by_lad) == 296
    assert set(by_lad) == set(census.ethnic_group_by_lad())
    disability = census.sum_over(by_lad, by_lad.keys())
    assert disability["total"] == 56_490_051
    assert disability["yes"] == 9_774_514
    assert abs(disability["total"] - 56_490_048) <= 20
    assert abs(disability["yes"] - 9_774_510) <= 20
    assert round(100 * disability["yes"] / disability["total"], 1) == 17.3
    assert all(lad["yes"] + lad["no"] == lad["total"] for lad in by_lad.values())
    # Hartlepool: the same total as TS021, 21,145 disabled.
    assert by_lad["E06000001"] == {"total": 92_338, "yes": 21_145, "no": 71_193}
    assert census.ethnic_group_by_lad()["E06000001"]["total"] == 92_338


def test_equivalences_name_catalogue_roles() -> None:
    import json

    catalogue = {r["code"]: r for r in json.loads(bundled_path("roles.json").read_text())["roles"]}
    pairs = equivalences()
    assert len(pairs) >= 5
    for pair in pairs:
        assert catalogue[pair.nhs_role]["sector"] == "health"
        assert catalogue[pair.care_role]["sector"] == "social_care"
        assert pair.basis
        assert pair.source


async def test_unpaid_care_for_england_an_icb_and_a_lad(
    client: httpx.AsyncClient, make_key: KeyFactory, reference: ReferenceLoadSummary
) -> None:
    key = await make_key("read", ics_code=ICB_B)
    england = (await client.get(f"/v1/areas/{ENGLAND}/unpaid-care", headers=key)).json()
    assert england["residents_5_plus"] == 53_413_087
    assert england["carers"] == 4_678_260
    assert england["carer_share"] == pytest.approx(0.0876, abs=1e-4)
    bands = {b["band"]: b for b in england["bands"]}
    assert bands["50_or_more"]["persons"] == 1_404_768
    assert (
        bands["9_or_less"]["persons"] + bands["10_to_19"]["persons"] == 2_303_716
    )  # "19 hours or less"
    hours = sum(b["persons"] * b["assumed_hours_per_week"] for b in england["bands"])
    assert england["hours_per_week"] == pytest.approx(hours)
    assert england["fte_equivalent"] == pytest.approx(hours / 37.5, abs=0.01)
    assert "never counted as paid supply" in england["method"]
    # Hartlepool, straight from the file: 3,660 + 2,512 + 3,382 carers of 87,356.
    lad = (await client.get("/v1/areas/E06000001/unpaid-care", headers=key)).json()
    assert (lad["residents_5_plus"], lad["carers"]) == (87_356, 3_660 + 2_512 + 3_382)
    icb = (await client.get(f"/v1/areas/{ICB_A}/unpaid-care", headers=key)).json()
    lads = [
        a["code"]
        for a in (
            await client.get(f"/v1/areas?parent={ICB_A}&type=lad&limit=100", headers=key)
        ).json()["items"]
    ]
    assert icb["carers"] == sum(
        census.unpaid_care_by_lad()[c][b] for c in lads for b in census.UNPAID_BANDS
    )
    text = (await client.get("/v1/areas/E06000001/unpaid-care?format=csv", headers=key)).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["band"] for r in rows] == list(census.UNPAID_BANDS)
    county = (await client.get("/v1/areas?type=county&limit=1", headers=key)).json()["items"][0]
    assert_problem(
        await client.get(f"/v1/areas/{county['code']}/unpaid-care", headers=key),
        422,
        "area_type_not_supported",
    )
    assert_problem(
        await client.get("/v1/areas/E06999999/unpaid-care", headers=key), 404, "area_not_found"
    )
    assert (await client.get(f"/v1/areas/{ENGLAND}/unpaid-care")).status_code == 401


@pytest.fixture
async def partners(
    sessionmaker: async_sessionmaker[AsyncSession], db: object
) -> dict[str, uuid.UUID]:
    await ensure_small_geography(sessionmaker)
    await make_role(sessionmaker, "care-worker")
    await make_role(
        sessionmaker,
        "healthcare-support-worker",
        name="Healthcare support worker",
        sector="health",
        staff_group="Support",
        pay_band="Band 3",
    )
    opened = date(2010, 1, 1)
    trust = await make_organisation(
        sessionmaker, kind="nhs_trust", sector="health", opened_on=opened, home_lad_code=LAD_A2
    )
    care_1 = await make_organisation(sessionmaker, opened_on=opened)
    care_2 = await make_organisation(sessionmaker, opened_on=opened)
    care_3 = await make_organisation(sessionmaker, opened_on=opened)  # never reports
    council = await make_organisation(
        sessionmaker, kind="local_authority", sector="local_government", opened_on=opened
    )  # never reports
    other_ics = await make_organisation(
        sessionmaker, ics_code=ICB_B, home_lad_code="E06000001", opened_on=opened
    )
    return {
        "trust": trust.id,
        "care_1": care_1.id,
        "care_2": care_2.id,
        "care_3": care_3.id,
        "council": council.id,
        "other_ics": other_ics.id,
    }


async def _post(
    client: httpx.AsyncClient, headers: dict[str, str], org: uuid.UUID, as_at: str, *lines: Any
) -> None:
    body = {"as_at": as_at, "lines": list(lines)}
    response = await client.post(f"/v1/organisations/{org}/returns", json=body, headers=headers)
    assert response.status_code == 201, response.text


async def test_pay_parity_sets_equivalent_roles_side_by_side(
    client: httpx.AsyncClient, make_key: KeyFactory, partners: dict[str, uuid.UUID]
) -> None:
    admin = await make_key("admin")
    hsw = line("healthcare-support-worker", mean_hourly_pay=12.5, leavers_to_health_care_12m=None)
    await _post(client, admin, partners["trust"], AS_AT, hsw)
    await _post(client, admin, partners["care_1"], AS_AT, line(mean_hourly_pay=11.0))
    await _post(client, admin, partners["care_2"], AS_AT, line(mean_hourly_pay=12.0))
    # Another ICS's figures never enter this ICS's view.
    await _post(client, admin, partners["other_ics"], AS_AT, line(mean_hourly_pay=30.0))
    ics_key = await make_key("read", ics_code=ICB_A)
    body = (await client.get(f"/v1/areas/{ICB_A}/pay-parity?as_at={ON}", headers=ics_key)).json()
    pair = next(
        p
        for p in body["pairs"]
        if (p["nhs"]["role_code"], p["care"]["role_code"])
        == ("healthcare-support-worker", "care-worker")
    )
    assert pair["nhs"]["hourly_pay"] == 12.5
    assert pair["nhs"]["returns"] == 1
    assert pair["care"]["hourly_pay"] == 11.5  # 40 people at 11.00 and 40 at 12.00
    assert (pair["care"]["returns"], pair["care"]["headcount"]) == (2, 80)
    assert pair["difference_per_hour"] == 1.0
    assert pair["nhs_pay_band"] == "Band 3"
    # A pair with no pay reported says so rather than inventing a figure.
    empty = next(p for p in body["pairs"] if p["care"]["role_code"] == "care-home-nurse")
    assert empty["difference_per_hour"] is None
    assert empty["care"]["returns"] == 0
    text = (
        await client.get(f"/v1/areas/{ICB_A}/pay-parity?as_at={ON}&format=csv", headers=ics_key)
    ).text
    first = next(r for r in csv.DictReader(io.StringIO(text)) if r["care_role"] == "care-worker")
    assert first["difference_per_hour"] == "1.0"
    for key in (
        await make_key("read", ics_code=ICB_B),
        await make_key("read", organisation_id=partners["care_1"]),
    ):
        assert_problem(
            await client.get(f"/v1/areas/{ICB_A}/pay-parity", headers=key), 404, "area_not_found"
        )
    assert_problem(
        await client.get(f"/v1/areas/{ICB_A}/pay-parity?as_at=yesterday", headers=ics_key),
        422,
        "validation_failed",
    )


async def test_data_gaps_report_coverage_missing_fields_and_age(
    client: httpx.AsyncClient, make_key: KeyFactory, partners: dict[str, uuid.UUID]
) -> None:
    admin = await make_key("admin")
    hsw = line("healthcare-support-worker", mean_hourly_pay=None, leavers_to_health_care_12m=None)
    await _post(client, admin, partners["trust"], AS_AT, hsw)
    await _post(client, admin, partners["care_1"], AS_AT, line(), line("healthcare-support-worker"))
    await _post(client, admin, partners["care_2"], "2023-03-31", line(mean_hourly_pay=None))
    key = await make_key("read", ics_code=ICB_A)
    body = (await client.get(f"/v1/areas/{ICB_A}/data-gaps?as_at={ON}", headers=key)).json()
    sectors = {row["group"]: row for row in body["by_sector"]}
    assert sectors["social_care"] == {
        "group": "social_care",
        "registered": 3,
        "reporting": 1,  # care_2's latest return is over a year old; care_3 never reported
        "never_reported": 1,
        "coverage": pytest.approx(1 / 3),
        "thin": True,
    }
    assert sectors["health"]["coverage"] == 1.0
    assert sectors["local_government"]["never_reported"] == 1
    kinds = {row["group"]: row for row in body["by_kind"]}
    assert kinds["care_provider"]["registered"] == 3
    fields = {f["field"]: f for f in body["fields"]}
    assert fields["pay"] == {"field": "pay", "lines": 4, "missing": 2, "missing_share": 0.5}
    assert fields["leavers_to_health_care_12m"]["missing"] == 1
    assert body["age"]["returns"] == 3
    assert body["age"]["oldest_as_at"] == "2023-03-31"
    assert body["age"]["older_than_12_months"] == 1
    flagged = {f["sector"] for f in body["projection_flags"]}
    assert flagged == {"social_care", "local_government"}
    lad = (await client.get(f"/v1/areas/{LAD_A2}/data-gaps?as_at={ON}", headers=key)).json()
    assert [row["group"] for row in lad["by_sector"]] == ["health"]
    text = (
        await client.get(f"/v1/areas/{ICB_A}/data-gaps?format=csv&as_at={ON}", headers=key)
    ).text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "table"
    assert ["missing fields", "E54000008", "pay", "4", "2", "0.5"] in rows
    xlsx = await client.get(f"/v1/areas/{ICB_A}/data-gaps?format=xlsx&as_at={ON}", headers=key)
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    workbook = openpyxl.load_workbook(io.BytesIO(xlsx.content), read_only=True)
    assert workbook.sheetnames == [
        "coverage by sector",
        "coverage by kind",
        "missing fields",
        "return age",
        "projection flags",
        "about",
    ]
    sector_rows = list(workbook["coverage by sector"].iter_rows(values_only=True))
    assert sector_rows[0][:4] == ("area_code", "group", "registered", "reporting")
    assert ("E54000008", "social_care", 3, 1, 1) in [r[:5] for r in sector_rows]
    about = {str(row[0]): row[1] for row in workbook["about"].iter_rows(values_only=True)}
    assert "Open Government Licence" in str(about["licence"])
    assert_problem(
        await client.get(
            f"/v1/areas/{ICB_A}/data-gaps", headers=await make_key("read", ics_code=ICB_B)
        ),
        404,
        "area_not_found",
    )
    assert_problem(
        await client.get("/v1/areas/E06999999/data-gaps", headers=admin), 404, "area_not_found"
    )
    assert (await client.get(f"/v1/areas/{ICB_A}/data-gaps")).status_code == 401
