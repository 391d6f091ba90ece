"""Workforce and a return's lines for spreadsheets and portals: role names and sectors on
rows, a sector filter, rounded figures, CSV with an optional BOM, xlsx with an About sheet,
byte-exact ETags and 406 for what cannot be produced."""

from __future__ import annotations

import csv
import io
from datetime import date

import httpx
import openpyxl
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.api.returns.helpers import line
from tests.factories import ICB_A, ensure_small_geography, make_organisation, make_role
from tests.helpers import KeyFactory, assert_problem

AS_AT = "2025-03-31"


@pytest.fixture
async def submitted(
    sessionmaker: async_sessionmaker[AsyncSession], db: object, client: httpx.AsyncClient,
    make_key: KeyFactory,
) -> tuple[dict[str, str], str]:  # fmt: skip
    """An admin key and the id of a return with a social care and a health line."""
    await ensure_small_geography(sessionmaker)
    await make_role(sessionmaker, "care-worker", name="Care worker", sector="social_care")
    await make_role(sessionmaker, "registered-nurse", name="Registered nurse", sector="health")
    organisation = await make_organisation(sessionmaker, opened_on=date(2010, 1, 1))
    admin = await make_key("admin")
    body = {
        "as_at": AS_AT,
        "lines": [
            line(role_code="care-worker", fte_in_post=32.333333, vacant_fte=1.005),
            line(role_code="registered-nurse", fte_in_post=10.0),
        ],
    }
    created = await client.post(
        f"/v1/organisations/{organisation.id}/returns", json=body, headers=admin
    )
    assert created.status_code == 201, created.text
    return admin, created.json()["id"]


async def test_workforce_rows_carry_role_name_sector_and_rounded_figures(
    client: httpx.AsyncClient, submitted: tuple[dict[str, str], str]
) -> None:
    admin, _ = submitted
    url = f"/v1/areas/{ICB_A}/workforce"
    body = (await client.get(url, params={"as_at": AS_AT}, headers=admin)).json()
    care = next(role for role in body["roles"] if role["role_code"] == "care-worker")
    assert (care["role_name"], care["sector"]) == ("Care worker", "social_care")
    assert care["fte_in_post"] == 32.33
    assert body["total"]["role_name"] == "All roles"
    assert body["total"]["sector"] is None
    assert body["total"]["fte_in_post"] == 42.33
    health = (
        await client.get(url, params={"as_at": AS_AT, "sector": "health"}, headers=admin)
    ).json()
    assert [role["role_code"] for role in health["roles"]] == ["registered-nurse"]
    assert health["total"]["fte_in_post"] == 10.0
    assert_problem(
        await client.get(url, params={"sector": "space"}, headers=admin), 422, "validation_failed"
    )
    assert_problem(
        await client.get(url, headers={**admin, "Accept": "application/xml"}), 406, "not_acceptable"
    )


async def test_workforce_etag_304_csv_bom_and_xlsx(
    client: httpx.AsyncClient, submitted: tuple[dict[str, str], str]
) -> None:
    admin, _ = submitted
    identity = {**admin, "Accept-Encoding": "identity"}
    url = f"/v1/areas/{ICB_A}/workforce"
    first = await client.get(url, params={"as_at": AS_AT}, headers=identity)
    etag = first.headers["etag"]
    assert not etag.startswith("W/")
    assert first.headers["vary"] == "Accept"
    again = await client.get(
        url, params={"as_at": AS_AT}, headers={**identity, "If-None-Match": etag}
    )
    assert again.status_code == 304
    as_csv = await client.get(
        url, params={"as_at": AS_AT}, headers={**identity, "Accept": "text/csv"}
    )
    assert as_csv.headers["etag"] != etag
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert rows[0]["role_name"] == "Care worker"
    assert rows[-1]["role_code"] == "all"
    with_bom = await client.get(url, params={"as_at": AS_AT, "bom": "true", "format": "csv"},
                                headers=identity)  # fmt: skip
    assert with_bom.content == b"\xef\xbb\xbf" + as_csv.content
    book_response = await client.get(
        url, params={"as_at": AS_AT, "format": "xlsx"}, headers=identity
    )
    assert book_response.headers["content-disposition"].endswith('.xlsx"')
    book = openpyxl.load_workbook(io.BytesIO(book_response.content), read_only=True)
    assert book.sheetnames == ["Workforce", "About"]
    sheet = list(book["Workforce"].iter_rows(values_only=True))
    assert sheet[0][:3] == ("role_code", "role_name", "sector")
    assert len(sheet) == 1 + 2 + 1
    about = {str(row[0]): row[1] for row in book["About"].iter_rows(min_row=2, values_only=True)}
    assert "full-time equivalents" in str(about["Units"])
    assert "workforce return" in str(about["Sources"])


async def test_a_returns_lines_as_csv_and_xlsx(
    client: httpx.AsyncClient, submitted: tuple[dict[str, str], str], make_key: KeyFactory
) -> None:
    admin, return_id = submitted
    url = f"/v1/returns/{return_id}"
    as_csv = await client.get(url, params={"format": "csv"}, headers=admin)
    assert as_csv.status_code == 200
    lines = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [row["role_code"] for row in lines] == ["care-worker", "registered-nurse"]
    as_xlsx = await client.get(
        url,
        headers={
            **admin,
            "Accept": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        },
    )
    assert as_xlsx.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(as_xlsx.content), read_only=True)
    assert book.sheetnames == ["Lines", "About"]
    assert len(list(book["Lines"].iter_rows(values_only=True))) == 3
    about = {str(row[0]): row[1] for row in book["About"].iter_rows(min_row=2, values_only=True)}
    assert about["Return"] == return_id
    assert about["As at"] == AS_AT
    # A key that may not see the return gets 404 in every format.
    outsider = await make_key("admin", ics_code="E54000050")
    for params in ({}, {"format": "xlsx"}, {"format": "csv"}):
        assert_problem(
            await client.get(url, params=params, headers=outsider), 404, "return_not_found"
        )
