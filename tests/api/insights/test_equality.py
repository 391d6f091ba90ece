"""Characteristics in returns (validated like the rest, old files still valid) and equality
indicators by area with small-number suppression that subtraction cannot undo."""

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

from services.api.returns.csv_format import TEMPLATE_COLUMNS
from services.domain.insights import census
from services.domain.insights.equality import wilson
from shared.vocab.characteristics import AFC_BAND_COLUMNS, ETHNICITY_COLUMNS
from shared.vocab.return_lines import CORE_LINE_COLUMNS
from tests.api.returns.helpers import counts, line
from tests.factories import (
    ICB_A,
    ICB_B,
    LAD_A1,
    LAD_A2,
    ensure_small_geography,
    make_organisation,
    make_role,
)
from tests.helpers import KeyFactory, assert_problem

AS_AT = "2025-03-31"
ON = "2025-06-30"


def ethnicity(
    asian: int, black: int, mixed: int, white: int, other: int, not_stated: int
) -> dict[str, int]:
    values = (asian, black, mixed, white, other, not_stated)
    return dict(zip(ETHNICITY_COLUMNS, values, strict=True))


def characteristics(headcount: int = 40, **more: Any) -> dict[str, Any]:
    """A care worker line of `headcount` with every breakdown given."""
    values: dict[str, Any] = {
        "headcount": headcount,
        "fte_in_post": headcount * 0.8,
        "vacant_fte": 0,
        "starters_12m": 0,
        "leavers_12m": 0,
        "leavers_to_health_care_12m": 0,
        "sickness_days_12m": 0,
        "agency_fte": 0,
        "bank_fte": 0,
        "age_under_25": 0,
        "age_25_34": headcount,
        "age_35_44": 0,
        "age_45_54": 0,
        "age_55_64": 0,
        "age_65_plus": 0,
        "median_hourly_pay": 11.8,
        "disability_yes": 2,
        "disability_no": headcount - 4,
        "disability_not_stated": 2,
        "sex_female": headcount - 10,
        "sex_male": 10,
        "sex_not_stated": 0,
    }
    values.update(more)
    return values


@pytest.fixture
async def orgs(sessionmaker: async_sessionmaker[AsyncSession], db: object) -> dict[str, uuid.UUID]:
    await ensure_small_geography(sessionmaker)
    await make_role(sessionmaker, "care-worker", career_framework_level=2)
    await make_role(
        sessionmaker, "healthcare-support-worker", name="Healthcare support worker",
        sector="health", staff_group="Support", pay_band="Band 3", career_framework_level=3,
    )  # fmt: skip
    opened = date(2010, 1, 1)
    care = await make_organisation(sessionmaker, name="Care A", opened_on=opened)
    trust = await make_organisation(
        sessionmaker, name="Trust A", kind="nhs_trust", sector="health", opened_on=opened,
        home_lad_code=LAD_A2,
    )  # fmt: skip
    return {"care": care.id, "trust": trust.id}


async def test_breakdowns_that_do_not_add_up_are_refused_by_row_and_column(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    orgs: dict[str, uuid.UUID],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    key = await make_key("submit", organisation_id=orgs["care"])
    good = line(**characteristics(**ethnicity(4, 3, 1, 30, 1, 1)))
    wrong_sum = line(**characteristics(**ethnicity(4, 3, 1, 31, 1, 1)))
    partial = line(**characteristics(ethnicity_white=40))
    bands_on_care_role = line(**characteristics(**dict.fromkeys(AFC_BAND_COLUMNS, 0)))
    bands_on_care_role["afc_band_2"] = 40
    lines = [good, wrong_sum, partial, bands_on_care_role]
    body = {"as_at": AS_AT, "lines": lines}
    problem = assert_problem(
        await client.post(f"/v1/organisations/{orgs['care']}/returns", json=body, headers=key),
        422,
        "return_invalid",
    )
    found = {(e["row"], e["column"], e["code"]) for e in problem["errors"]}
    assert (2, "ethnicity_asian", "ethnicity_breakdown_mismatch") in found
    assert (3, "ethnicity_asian", "ethnicity_breakdown_mismatch") in found
    assert (4, "afc_band_1", "afc_bands_not_nhs_role") in found
    assert not any(row == 1 for row, _, _ in found)
    message = next(
        e["message"]
        for e in problem["errors"]
        if e["row"] == 2 and e["code"] == "ethnicity_breakdown_mismatch"
    )
    assert "adds up to 41" in message
    assert "headcount 40" in message
    assert await counts(sessionmaker) == (0, 0, 0)
    # The same return as CSV is refused the same way.
    text = (
        ",".join(TEMPLATE_COLUMNS)
        + "\n"
        + "\n".join(
            ",".join("" if item.get(c) is None else str(item[c]) for c in TEMPLATE_COLUMNS)
            for item in lines
        )
    )
    problem = assert_problem(
        await client.post(
            f"/v1/organisations/{orgs['care']}/returns?as_at={AS_AT}",
            content=text,
            headers={**key, "Content-Type": "text/csv"},
        ),
        422,
        "return_invalid",
    )
    assert (3, "ethnicity_asian", "ethnicity_breakdown_mismatch") in {
        (e["row"], e["column"], e["code"]) for e in problem["errors"]
    }
    # A file in the core template (no characteristics columns) is still a valid return.
    core = (
        ",".join(CORE_LINE_COLUMNS)
        + "\n"
        + ",".join("" if line()[c] is None else str(line()[c]) for c in CORE_LINE_COLUMNS)
    )
    response = await client.post(
        f"/v1/organisations/{orgs['care']}/returns?as_at={AS_AT}",
        content=core,
        headers={**key, "Content-Type": "text/csv"},
    )
    assert response.status_code == 201, response.text
    stored = response.json()["lines"][0]
    assert stored["ethnicity_white"] is None
    assert stored["median_hourly_pay"] is None


async def test_equality_indicator_by_hand(
    client: httpx.AsyncClient, make_key: KeyFactory, orgs: dict[str, uuid.UUID]
) -> None:
    admin = await make_key("admin")
    care_line = line(**characteristics(40, **ethnicity(4, 6, 5, 20, 5, 0)))
    trust_line = line(
        "healthcare-support-worker",
        **characteristics(60, **ethnicity(10, 10, 5, 30, 0, 5)),
    )
    for org, item in ((orgs["care"], care_line), (orgs["trust"], trust_line)):
        response = await client.post(
            f"/v1/organisations/{org}/returns",
            json={"as_at": AS_AT, "lines": [item]},
            headers=admin,
        )
        assert response.status_code == 201, response.text
    key = await make_key("read", ics_code=ICB_A)
    body = (
        await client.get(f"/v1/areas/{ICB_A}/equality?by=sector&as_at={ON}", headers=key)
    ).json()
    assert body["suppression_threshold"] == 5
    total = {f["category"]: f for f in body["total"]["categories"]}
    # All staff: 100, of whom 95 stated an ethnic group; 16 Black.
    assert body["total"]["staff"] == 100
    assert total["black"]["count"] == 16
    expected = wilson(16, 95)
    assert expected is not None
    assert total["black"]["share_of_stated"] == pytest.approx(16 / 95)
    assert total["black"]["lower"] == pytest.approx(expected.lower)
    assert total["black"]["upper"] == pytest.approx(expected.upper)
    # Against the residents of the ICB's LADs in Census 2021.
    lads = [
        a["code"]
        for a in (
            await client.get(f"/v1/areas?parent={ICB_A}&type=lad&limit=100", headers=key)
        ).json()["items"]
    ]
    assert {LAD_A1, LAD_A2} <= set(lads)
    residents = census.sum_over(census.ethnic_group_by_lad(), lads)
    population_share = residents["black"] / residents["total"]
    assert total["black"]["population_share"] == pytest.approx(population_share)
    assert total["black"]["representation_ratio"] == pytest.approx((16 / 95) / population_share)
    groups = {g["group"]: g for g in body["groups"]}
    care = {f["category"]: f for f in groups["social_care"]["categories"]}
    assert care["white"]["count"] == 20
    assert care["white"]["share_of_stated"] is None  # its "not stated" (0) is hidden
    # Health's "other" is 0 and hidden, with a partner in its row; the column "other" (total
    # 5) then needs a second hidden count, social care's 5.
    health = {f["category"]: f for f in groups["health"]["categories"]}
    assert health["other"]["count"] is None
    assert care["other"]["count"] is None
    # Its "not stated" (5) is hidden too (the column must not be recoverable), so no share.
    assert health["white"]["share_of_stated"] is None
    assert health["other"]["suppressed"]
    hidden_in_health = [f for f in health.values() if f["count"] is None]
    assert len(hidden_in_health) >= 2
    assert body["coverage"]["headcount_with_breakdown"] == 100
    disability = (
        await client.get(
            f"/v1/areas/{ICB_A}/equality?characteristic=disability&by=level&as_at={ON}",
            headers=key,
        )
    ).json()
    assert [g["group"] for g in disability["groups"]] == ["level_2", "level_3"]
    assert "TS038" in disability["population_source"]
    sex = (
        await client.get(f"/v1/areas/{ICB_A}/equality?characteristic=sex&as_at={ON}", headers=key)
    ).json()
    assert sex["population_source"] is None
    assert all(f["population_share"] is None for f in sex["total"]["categories"])
    text = (await client.get(f"/v1/areas/{ICB_A}/equality?format=csv&as_at={ON}", headers=key)).text
    rows = list(csv.DictReader(io.StringIO(text)))
    hidden = [r for r in rows if r["group"] == "health" and r["category"] == "other"]
    assert hidden[0]["count"] == ""
    # The workbook carries the same suppressed figures.
    xlsx = await client.get(f"/v1/areas/{ICB_A}/equality?format=xlsx&as_at={ON}", headers=key)
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content), read_only=True)["equality"]
    cells = list(sheet.iter_rows(values_only=True))
    header = list(cells[0])
    health_other = next(
        r for r in cells[1:] if r[header.index("group")] == "health" and r[6] == "other"
    )
    assert health_other[header.index("count")] is None
    assert_problem(
        await client.get(f"/v1/areas/{ICB_A}/equality?characteristic=religion", headers=key),
        422,
        "validation_failed",
    )
    for other in (
        await make_key("read", ics_code=ICB_B),
        await make_key("read", organisation_id=orgs["care"]),
    ):
        assert_problem(
            await client.get(f"/v1/areas/{ICB_A}/equality", headers=other), 404, "area_not_found"
        )


async def test_disability_is_set_beside_the_census_by_hand(
    client: httpx.AsyncClient, make_key: KeyFactory, orgs: dict[str, uuid.UUID]
) -> None:
    admin = await make_key("admin")
    care_line = line(
        **characteristics(40, disability_yes=6, disability_no=30, disability_not_stated=4)
    )
    trust_line = line(
        "healthcare-support-worker",
        **characteristics(60, disability_yes=8, disability_no=48, disability_not_stated=4),
    )
    for org, item in ((orgs["care"], care_line), (orgs["trust"], trust_line)):
        response = await client.post(
            f"/v1/organisations/{org}/returns", json={"as_at": AS_AT, "lines": [item]},
            headers=admin,
        )  # fmt: skip
        assert response.status_code == 201, response.text
    key = await make_key("read", ics_code=ICB_A)
    url = f"/v1/areas/{ICB_A}/equality?characteristic=disability&by=sector&as_at={ON}"
    body = (await client.get(url, headers=key)).json()
    assert "TS038" in body["population_source"]
    assert "all ages" in body["method"]
    # All staff: 100, of whom 92 stated; 14 disabled, 78 not.
    total = {f["category"]: f for f in body["total"]["categories"]}
    assert total["yes"]["count"] == 14
    assert total["yes"]["share_of_stated"] == pytest.approx(14 / 92)
    # Against the residents of the ICB's LADs disabled under the Equality Act (all ages).
    lads = [
        a["code"]
        for a in (
            await client.get(f"/v1/areas?parent={ICB_A}&type=lad&limit=100", headers=key)
        ).json()["items"]
    ]
    residents = census.sum_over(census.disability_by_lad(), lads)
    assert residents["yes"] + residents["no"] == residents["total"]
    disabled_share = residents["yes"] / residents["total"]
    assert 0.15 < disabled_share < 0.25
    assert total["yes"]["population_share"] == pytest.approx(disabled_share)
    assert total["yes"]["representation_ratio"] == pytest.approx((14 / 92) / disabled_share)
    assert total["no"]["population_share"] == pytest.approx(residents["no"] / residents["total"])
    assert total["not_stated"]["population_share"] is None
    # A LAD alone: Liverpool's own residents.
    lad_key = await make_key("read", ics_code=ICB_A)
    lad_body = (
        await client.get(
            f"/v1/areas/{LAD_A2}/equality?characteristic=disability&as_at={ON}", headers=lad_key
        )
    ).json()
    liverpool = census.disability_by_lad()[LAD_A2]
    lad_total = {f["category"]: f for f in lad_body["total"]["categories"]}
    assert lad_total["yes"]["population_share"] == pytest.approx(
        liverpool["yes"] / liverpool["total"]
    )
    # The CSV carries the same comparator and its source.
    text = (await client.get(f"{url}&format=csv", headers=key)).text
    rows = list(csv.DictReader(io.StringIO(text)))
    yes = next(r for r in rows if r["label"] == "All staff" and r["category"] == "yes")
    assert float(yes["population_share"]) == pytest.approx(disabled_share)


async def test_no_small_count_can_be_recovered_from_what_is_published(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    orgs: dict[str, uuid.UUID],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    admin = await make_key("admin")
    # Three care providers, each with a few staff in one small group.
    for name, mix in (
        ("Small 1", ethnicity(1, 0, 0, 30, 0, 9)),
        ("Small 2", ethnicity(0, 3, 0, 35, 2, 0)),
        ("Small 3", ethnicity(7, 0, 1, 28, 0, 4)),
    ):
        org = await make_organisation(sessionmaker, name=name, opened_on=date(2010, 1, 1))
        response = await client.post(
            f"/v1/organisations/{org.id}/returns",
            json={"as_at": AS_AT, "lines": [line(**characteristics(40, **mix))]},
            headers=admin,
        )
        assert response.status_code == 201, response.text
    key = await make_key("read", ics_code=ICB_A)
    body = (
        await client.get(f"/v1/areas/{ICB_A}/equality?by=organisation&as_at={ON}", headers=key)
    ).json()
    workforce = (await client.get(f"/v1/areas/{ICB_A}/workforce?as_at={ON}", headers=key)).json()
    categories = [f["category"] for f in body["total"]["categories"]]
    table = {
        g["group"]: {f["category"]: f["count"] for f in g["categories"]} for g in body["groups"]
    }
    # Nothing under 5 is shown anywhere, in any group or the total.
    for group in [*body["groups"], body["total"]]:
        for figure in group["categories"]:
            assert figure["count"] is None or figure["count"] >= 5
    # Every organisation's staff are known (its headcount is published): subtracting the
    # visible counts of a row never isolates one hidden count.
    for row in table.values():
        assert sum(1 for v in row.values() if v is None) != 1
    # Nor does a column, given its total, nor the column totals given the area's headcount.
    totals = {f["category"]: f["count"] for f in body["total"]["categories"]}
    for category in categories:
        members = [row[category] for row in table.values()] + [totals[category]]
        assert sum(1 for v in members if v is None) != 1
    assert workforce["total"]["headcount"] == 120
    assert sum(1 for v in totals.values() if v is None) != 1
