"""Workforce returns: JSON and CSV submission, validation by row and column, dry runs,
idempotency, versions and diffs, access by binding, and area aggregates."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api import deps
from services.api.returns.csv_format import TEMPLATE_COLUMNS
from shared.models import IdempotencyRecord, Role
from tests.api.returns.helpers import counts, line
from tests.factories import (
    ICB_A,
    LAD_A1,
    LAD_A2,
    ensure_small_geography,
    make_organisation,
    make_role,
)
from tests.helpers import KeyFactory, assert_problem

AS_AT = "2025-03-31"


def to_csv(lines: list[dict[str, Any]]) -> str:
    out = [",".join(TEMPLATE_COLUMNS)]
    for item in lines:
        out.append(",".join("" if item.get(c) is None else str(item[c]) for c in TEMPLATE_COLUMNS))
    return "\r\n".join(out) + "\r\n"


@pytest.fixture
async def org(sessionmaker: async_sessionmaker[AsyncSession], db: object) -> uuid.UUID:
    await ensure_small_geography(sessionmaker)
    for code in ("care-worker", "registered-nurse", "social-worker"):
        await make_role(sessionmaker, code)
    organisation = await make_organisation(sessionmaker, opened_on=date(2010, 1, 1))
    return organisation.id


async def test_json_return_is_stored_with_lines(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    org: uuid.UUID,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    key = await make_key("submit", organisation_id=org)
    body = {
        "as_at": AS_AT,
        "lines": [
            line(),
            line(
                "registered-nurse",
                headcount=10,
                fte_in_post=9,
                age_under_25=1,
                age_25_34=3,
                age_35_44=3,
                age_45_54=2,
                age_55_64=1,
                age_65_plus=0,
                leavers_12m=1,
                leavers_to_health_care_12m=0,
                starters_12m=2,
            ),
        ],
    }
    response = await client.post(f"/v1/organisations/{org}/returns", json=body, headers=key)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["version"] == 1
    assert created["status"] == "current"
    assert [item["role_code"] for item in created["lines"]] == ["care-worker", "registered-nurse"]
    assert created["lines"][0]["fte_in_post"] == 32.5
    assert response.headers["location"] == f"/v1/returns/{created['id']}"
    assert (await client.get(f"/v1/returns/{created['id']}", headers=key)).json() == created
    assert await counts(sessionmaker) == (1, 2, 0)


async def test_csv_return_with_bom_crlf_and_quotes(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    org: uuid.UUID,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    key = await make_key("submit", organisation_id=org)
    text = to_csv([line(), line("social-worker")]).replace("social-worker", '"social-worker"')
    response = await client.post(
        f"/v1/organisations/{org}/returns?as_at={AS_AT}",
        content=("\ufeff" + text).encode(),
        headers={**key, "Content-Type": "text/csv"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["source"] == "csv"
    multipart = await client.post(
        f"/v1/organisations/{org}/returns?as_at=2025-06-30",
        files={"file": ("return.csv", text.encode(), "text/csv")},
        headers=key,
    )
    assert multipart.status_code == 201, multipart.text
    assert await counts(sessionmaker) == (2, 4, 0)


async def test_thousand_line_csv_with_three_bad_rows_names_exactly_them(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    org: uuid.UUID,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    codes = [f"bulk-role-{i:04d}" for i in range(1000)]
    async with sessionmaker() as session:
        await session.execute(
            insert(Role),
            [
                {
                    "code": code,
                    "name": code,
                    "sector": "health",
                    "staff_group": "Test",
                    "default_demand_driver": "population_all",
                }
                for code in codes
            ],
        )
        await session.commit()
    lines = [line(code) for code in codes]
    lines[10]["headcount"] = -3  # file line 12: negative
    lines[500]["fte_in_post"] = "lots"  # file line 502: not a number
    lines[998]["fte_in_post"] = 100  # file line 1000: FTE > 1.2 x headcount
    key = await make_key("submit", organisation_id=org)
    response = await client.post(
        f"/v1/organisations/{org}/returns?as_at={AS_AT}",
        content=to_csv(lines).encode(),
        headers={**key, "Content-Type": "text/csv"},
    )
    body = assert_problem(response, 422, "return_invalid")
    found = {(e["row"], e["column"], e["code"]) for e in body["errors"]}
    assert {row for row, _, _ in found} == {12, 502, 1000}
    assert (12, "headcount", "negative_value") in found
    assert (502, "fte_in_post", "not_a_number") in found
    assert (1000, "fte_in_post", "fte_exceeds_headcount") in found
    assert await counts(sessionmaker) == (0, 0, 0)


@pytest.mark.parametrize(
    ("overrides", "column", "code"),
    [
        ({"age_65_plus": 5}, "age_under_25", "age_bands_mismatch"),
        (
            {"leavers_12m": 60, "leavers_to_health_care_12m": 0},
            "leavers_12m",
            "leavers_exceed_headcount",
        ),
        ({"vacant_fte": 40}, "vacant_fte", "vacancies_implausible"),
        ({"sickness_days_12m": 40 * 366}, "sickness_days_12m", "sickness_days_implausible"),
        (
            {"leavers_to_health_care_12m": 9},
            "leavers_to_health_care_12m",
            "leavers_to_health_care_exceed_leavers",
        ),
        ({"role_code": "astronaut"}, "role_code", "unknown_role"),
        ({"headcount": 40.5}, "headcount", "not_an_integer"),
    ],
)
async def test_business_rules(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    org: uuid.UUID,
    sessionmaker: async_sessionmaker[AsyncSession],
    overrides: dict[str, Any],
    column: str,
    code: str,
) -> None:
    key = await make_key("submit", organisation_id=org)
    body = {"as_at": AS_AT, "lines": [line("social-worker"), line(**overrides)]}
    response = await client.post(f"/v1/organisations/{org}/returns", json=body, headers=key)
    problem = assert_problem(response, 422, "return_invalid")
    assert [(e["row"], e["column"], e["code"]) for e in problem["errors"]] == [(2, column, code)]
    assert await counts(sessionmaker) == (0, 0, 0)


async def test_the_day_is_the_apis_today_dependency(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    org: uuid.UUID,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A return is "in the future" by the API's Today dependency, not the machine's clock."""
    key = await make_key("submit", organisation_id=org)
    app.dependency_overrides[deps.today] = lambda: date(2024, 12, 31)
    try:
        body = {"as_at": AS_AT, "lines": [line()]}
        problem = assert_problem(
            await client.post(f"/v1/organisations/{org}/returns", json=body, headers=key),
            422,
            "return_invalid",
        )
        assert [e["code"] for e in problem["errors"]] == ["as_at_in_future"]
        assert await counts(sessionmaker) == (0, 0, 0)
        app.dependency_overrides[deps.today] = lambda: date(2025, 3, 31)
        accepted = await client.post(f"/v1/organisations/{org}/returns", json=body, headers=key)
        assert accepted.status_code == 201, accepted.text
    finally:
        app.dependency_overrides.pop(deps.today, None)


async def test_every_error_at_once_and_dates(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    org: uuid.UUID,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    key = await make_key("submit", organisation_id=org)
    future = (date.today() + timedelta(days=3)).isoformat()
    body = {
        "as_at": future,
        "lines": [line(headcount=-1), line(), line("registered-nurse", fte_in_post=99)],
    }
    problem = assert_problem(
        await client.post(f"/v1/organisations/{org}/returns", json=body, headers=key),
        422,
        "return_invalid",
    )
    codes = sorted(e["code"] for e in problem["errors"])
    assert codes == [
        "as_at_in_future",
        "duplicate_role_line",
        "fte_exceeds_headcount",
        "negative_value",
    ]
    early = {"as_at": "2009-12-31", "lines": [line()]}
    problem = assert_problem(
        await client.post(f"/v1/organisations/{org}/returns", json=early, headers=key),
        422,
        "return_invalid",
    )
    assert problem["errors"][0]["code"] == "as_at_before_organisation_opened"
    assert await counts(sessionmaker) == (0, 0, 0)


async def test_csv_structure_errors(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    org: uuid.UUID,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    key = await make_key("submit", organisation_id=org)
    url = f"/v1/organisations/{org}/returns?as_at={AS_AT}"
    csv_headers = {**key, "Content-Type": "text/csv"}
    wrong_header = to_csv([line()]).replace("headcount", "heads", 1)
    problem = assert_problem(
        await client.post(url, content=wrong_header.encode(), headers=csv_headers),
        422,
        "csv_header_mismatch",
    )
    assert len(problem["errors"]) == 1
    latin1 = to_csv([line("care-worker")]).replace("care-worker", "caf\xe9").encode("latin-1")
    assert_problem(await client.post(url, content=latin1, headers=csv_headers), 422, "csv_not_utf8")
    short = to_csv([line()]) + "care-worker,1,2\r\n"
    problem = assert_problem(
        await client.post(url, content=short.encode(), headers=csv_headers), 422, "csv_malformed"
    )
    assert problem["errors"][0]["row"] == 3
    no_date = f"/v1/organisations/{org}/returns"
    assert_problem(
        await client.post(no_date, content=to_csv([line()]).encode(), headers=csv_headers),
        422,
        "as_at_required",
    )
    assert_problem(
        await client.post(
            no_date, content=b"<xml/>", headers={**key, "Content-Type": "application/xml"}
        ),
        415,
        "unsupported_media_type",
    )
    assert_problem(
        await client.post(
            no_date, content=b"{", headers={**key, "Content-Type": "application/json"}
        ),
        422,
        "validation_failed",
    )
    assert await counts(sessionmaker) == (0, 0, 0)


async def test_dry_run_stores_nothing(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    org: uuid.UUID,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    key = await make_key("submit", organisation_id=org)
    body = {"as_at": AS_AT, "lines": [line(leavers_12m=30, leavers_to_health_care_12m=0)]}
    response = await client.post(
        f"/v1/organisations/{org}/returns?dry_run=true", json=body, headers=key
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["dry_run"] is True
    assert result["would_be_version"] == 1
    assert [w["code"] for w in result["warnings"]] == ["turnover_above_60pct"]
    assert await counts(sessionmaker) == (0, 0, 0)


async def test_idempotency_key(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    org: uuid.UUID,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    key = await make_key("submit", organisation_id=org)
    url = f"/v1/organisations/{org}/returns"
    body = {"as_at": AS_AT, "lines": [line()]}
    headers = {**key, "Idempotency-Key": "upload-2025-03-31"}
    first = await client.post(url, json=body, headers=headers)
    second = await client.post(url, json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotency-replayed"] == "true"
    assert await counts(sessionmaker) == (1, 1, 0)
    other = await client.post(url, json={**body, "as_at": "2025-06-30"}, headers=headers)
    assert_problem(other, 409, "idempotency_key_reused")
    assert await counts(sessionmaker) == (1, 1, 0)
    # A failed request does not use up its key.
    bad = await client.post(
        url,
        json={"as_at": AS_AT, "lines": [line(headcount=-1)]},
        headers={**key, "Idempotency-Key": "k2"},
    )
    assert bad.status_code == 422
    async with sessionmaker() as session:
        keys = (await session.execute(select(IdempotencyRecord.idempotency_key))).scalars().all()
    assert keys == ["upload-2025-03-31"]


async def test_superseded_return_keeps_history_and_diff(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    org: uuid.UUID,
) -> None:
    key = await make_key("submit", organisation_id=org)
    url = f"/v1/organisations/{org}/returns"
    first = (
        await client.post(
            url, json={"as_at": AS_AT, "lines": [line(), line("social-worker")]}, headers=key
        )
    ).json()
    second = (
        await client.post(
            url,
            json={
                "as_at": AS_AT,
                "lines": [line(fte_in_post=30, vacant_fte=6), line("registered-nurse")],
            },
            headers=key,
        )
    ).json()
    assert second["version"] == 2
    old = (await client.get(f"/v1/returns/{first['id']}", headers=key)).json()
    assert old["status"] == "superseded"
    assert old["lines"][0]["fte_in_post"] == 32.5
    history = (await client.get(f"{url}?history=true", headers=key)).json()
    assert [item["version"] for item in history["items"]] == [2, 1]
    current = (await client.get(url, headers=key)).json()
    assert [item["id"] for item in current["items"]] == [second["id"]]
    diff = (await client.get(f"/v1/returns/{second['id']}/diff", headers=key)).json()
    assert diff["previous_return_id"] == first["id"]
    assert diff["lines"] == [
        {
            "role_code": "care-worker",
            "change": "changed",
            "fields": [
                {"field": "fte_in_post", "previous": 32.5, "current": 30.0},
                {"field": "vacant_fte", "previous": 4.0, "current": 6.0},
            ],
        },
        {"role_code": "registered-nurse", "change": "added", "fields": []},
        {"role_code": "social-worker", "change": "removed", "fields": []},
    ]
    first_diff = (await client.get(f"/v1/returns/{first['id']}/diff", headers=key)).json()
    assert first_diff["previous_return_id"] is None
    assert {item["change"] for item in first_diff["lines"]} == {"added"}


async def test_warnings_against_previous_returns(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    org: uuid.UUID,
) -> None:
    key = await make_key("submit", organisation_id=org)
    url = f"/v1/organisations/{org}/returns"
    await client.post(
        url, json={"as_at": "2024-03-31", "lines": [line(), line("social-worker")]}, headers=key
    )
    jump = line("social-worker", headcount=80, fte_in_post=70, age_under_25=46)
    later = (
        await client.post(url, json={"as_at": AS_AT, "lines": [line(), jump]}, headers=key)
    ).json()
    codes = {(w["role_code"], w["code"], w["column"]) for w in later["warnings"]}
    assert codes == {
        ("care-worker", "figures_unchanged_12m", "headcount"),
        ("social-worker", "jump_over_50pct", "headcount"),
        ("social-worker", "jump_over_50pct", "fte_in_post"),
    }
    assert later["warning_count"] == 3


async def test_access_by_binding(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    org: uuid.UUID,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    other = await make_organisation(sessionmaker)
    own_key = await make_key("submit", organisation_id=org)
    other_key = await make_key("submit", organisation_id=other.id)
    reader = await make_key("read", ics_code=ICB_A)
    ics_admin = await make_key("admin", ics_code=ICB_A)
    foreign_admin = await make_key("admin", ics_code="E54000050")
    url = f"/v1/organisations/{org}/returns"
    body = {"as_at": AS_AT, "lines": [line()]}
    assert_problem(
        await client.post(url, json=body, headers=other_key), 404, "organisation_not_found"
    )
    assert_problem(
        await client.post(url, json=body, headers=foreign_admin), 404, "organisation_not_found"
    )
    assert_problem(await client.post(url, json=body, headers=reader), 403, "insufficient_scope")
    created = (await client.post(url, json=body, headers=own_key)).json()
    read_url = f"/v1/returns/{created['id']}"
    assert_problem(await client.get(read_url, headers=other_key), 404, "return_not_found")
    assert_problem(await client.get(f"{read_url}/diff", headers=other_key), 404, "return_not_found")
    assert_problem(await client.get(url, headers=other_key), 404, "organisation_not_found")
    assert_problem(await client.get(read_url, headers=foreign_admin), 404, "return_not_found")
    assert (await client.get(read_url, headers=ics_admin)).status_code == 200
    assert (
        await client.post(url, json={**body, "as_at": "2025-01-31"}, headers=ics_admin)
    ).status_code == 201
    assert await counts(sessionmaker) == (2, 2, 0)


async def test_template(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    response = await client.get("/v1/returns/template.csv", headers=await make_key("read"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.splitlines()[0] == ",".join(TEMPLATE_COLUMNS)


async def test_area_aggregates_equal_hand_sums_and_completeness(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    org: uuid.UUID,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    second = await make_organisation(sessionmaker, home_lad_code=LAD_A2)
    await make_organisation(sessionmaker, home_lad_code=LAD_A2)  # registered, never reports
    stale = await make_organisation(sessionmaker, home_lad_code=LAD_A1)
    admin = await make_key("admin", ics_code=ICB_A)
    post = "/v1/organisations/{}/returns"
    # org: an older return superseded in time by a newer one; only the newer counts.
    await client.post(
        post.format(org),
        json={
            "as_at": "2024-12-31",
            "lines": [line(headcount=50, fte_in_post=50, age_under_25=16)],
        },
        headers=admin,
    )
    await client.post(post.format(org), json={"as_at": AS_AT, "lines": [line()]}, headers=admin)
    await client.post(
        post.format(second.id),
        json={
            "as_at": "2025-02-28",
            "lines": [
                line(
                    headcount=20,
                    fte_in_post=18,
                    vacant_fte=2,
                    leavers_12m=5,
                    starters_12m=4,
                    sickness_days_12m=100,
                    agency_fte=0.5,
                    bank_fte=1,
                    age_under_25=2,
                    age_25_34=4,
                    age_35_44=4,
                    age_45_54=5,
                    age_55_64=4,
                    age_65_plus=1,
                )
            ],
        },
        headers=admin,
    )
    await client.post(
        post.format(stale.id), json={"as_at": "2023-12-31", "lines": [line()]}, headers=admin
    )
    ics = (await client.get(f"/v1/areas/{ICB_A}/workforce?as_at={AS_AT}", headers=admin)).json()
    care = ics["roles"][0]
    assert care["role_code"] == "care-worker"
    assert care["organisations"] == 3
    assert care["headcount"] == 40 + 20 + 40
    assert care["fte_in_post"] == pytest.approx(32.5 + 18 + 32.5)
    # Rates are rounded to 4 decimals, FTE to 2.
    assert care["vacancy_rate"] == round((4 + 2 + 4) / (83 + 10), 4)
    assert care["turnover_rate"] == pytest.approx((8 + 5 + 8) / 100)
    assert care["sickness_rate"] == round((310 + 100 + 310) / (100 * 225), 4)
    assert care["agency_share"] == round((1.5 + 0.5 + 1.5) / (83 + 5 + 3.5), 4)
    assert ics["completeness"] == {
        "organisations_registered": 4,
        "organisations_reporting": 2,
        "rate": 0.5,
    }
    lad = (await client.get(f"/v1/areas/{LAD_A2}/workforce?as_at={AS_AT}", headers=admin)).json()
    assert lad["total"]["headcount"] == 20
    assert lad["completeness"]["organisations_registered"] == 2
    csv_text = (
        (await client.get(f"/v1/areas/{ICB_A}/workforce.csv?as_at={AS_AT}", headers=admin)).text
        if False
        else (
            await client.get(f"/v1/areas/{ICB_A}/workforce?as_at={AS_AT}&format=csv", headers=admin)
        ).text
    )
    assert csv_text.splitlines()[0].startswith("role_code,role_name,sector,organisations,headcount")
    assert csv_text.splitlines()[1].startswith("care-worker,Care worker,social_care,3,100")
    own = await make_key("submit", organisation_id=org)
    assert_problem(
        await client.get(f"/v1/areas/{ICB_A}/workforce", headers=own), 404, "area_not_found"
    )
    foreign = await make_key("read", ics_code="E54000050")
    assert_problem(
        await client.get(f"/v1/areas/{ICB_A}/workforce", headers=foreign), 404, "area_not_found"
    )
    assert_problem(
        await client.get("/v1/areas/E54999999/workforce", headers=admin), 404, "area_not_found"
    )


async def test_a_role_used_by_a_return_cannot_be_deleted(
    client: httpx.AsyncClient, make_key: KeyFactory, org: uuid.UUID
) -> None:
    key = await make_key("submit", organisation_id=org)
    body = {"as_at": AS_AT, "lines": [line("social-worker")]}
    assert (
        await client.post(f"/v1/organisations/{org}/returns", json=body, headers=key)
    ).status_code == 201
    admin = await make_key("admin")
    problem = assert_problem(
        await client.delete("/v1/roles/social-worker", headers=admin), 409, "role_in_use"
    )
    assert "return_lines" in str(problem)
    assert (await client.get("/v1/roles/social-worker", headers=admin)).status_code == 200
