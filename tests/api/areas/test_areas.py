"""GET /v1/areas and /v1/areas/{code}: filters, pagination, the area tree, ETags, errors."""

from __future__ import annotations

import httpx

from services.domain.reference.loader import ReferenceLoadSummary
from tests.factories import ENGLAND, ICB_A, LAD_A2
from tests.helpers import KeyFactory, assert_problem


def _fields(problem: dict[str, object]) -> list[str]:
    errors = problem["errors"]
    assert isinstance(errors, list)
    return [error["field"] for error in errors]


async def test_areas_filter_by_type(
    client: httpx.AsyncClient, make_key: KeyFactory, reference: ReferenceLoadSummary
) -> None:
    headers = await make_key("read")
    totals = {}
    for area_type in ("country", "icb", "county", "lad"):
        response = await client.get("/v1/areas", params={"type": area_type}, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert {item["type"] for item in body["items"]} == {area_type}
        totals[area_type] = body["total"]
    assert totals == {"country": 1, "icb": 42, "county": 21, "lad": 296}


async def test_areas_paginate_with_totals(
    client: httpx.AsyncClient, make_key: KeyFactory, reference: ReferenceLoadSummary
) -> None:
    headers = await make_key("read")
    first = (await client.get("/v1/areas?type=lad&limit=100", headers=headers)).json()
    last = (await client.get("/v1/areas?type=lad&limit=100&page=3", headers=headers)).json()
    assert (first["total"], len(first["items"]), first["page"], first["limit"]) == (
        296,
        100,
        1,
        100,
    )
    assert len(last["items"]) == 96
    codes = [item["code"] for item in first["items"]]
    assert codes == sorted(codes)
    assert first["items"][0]["code"] < last["items"][0]["code"]


async def test_areas_filter_by_parent_icb_and_name(
    client: httpx.AsyncClient, make_key: KeyFactory, reference: ReferenceLoadSummary
) -> None:
    headers = await make_key("read")
    lads = (await client.get(f"/v1/areas?parent={ICB_A}&limit=500", headers=headers)).json()
    names = {item["name"] for item in lads["items"]}
    assert lads["total"] == 9
    assert {"Liverpool", "Cheshire East", "Wirral"} <= names
    assert all(item["parent_code"] == ICB_A for item in lads["items"])

    found = (await client.get("/v1/areas?q=LIVER", headers=headers)).json()
    assert [(item["code"], item["name"]) for item in found["items"]] == [(LAD_A2, "Liverpool")]
    assert found["items"][0]["region_name"] == "North West"
    # Search within a filter, and a % in the search is a literal character.
    icbs = (await client.get("/v1/areas?q=cheshire&type=icb", headers=headers)).json()
    assert [item["code"] for item in icbs["items"]] == [ICB_A]
    assert (await client.get("/v1/areas?q=%25", headers=headers)).json()["total"] == 0
    nothing = (await client.get("/v1/areas?parent=E54999999", headers=headers)).json()
    assert (nothing["total"], nothing["items"]) == (0, [])


async def test_an_icb_lists_its_lads_and_a_lad_shows_its_icb(
    client: httpx.AsyncClient, make_key: KeyFactory, reference: ReferenceLoadSummary
) -> None:
    headers = await make_key("read")
    icb = (await client.get(f"/v1/areas/{ICB_A}", headers=headers)).json()
    assert icb["name"] == "NHS Cheshire and Merseyside Integrated Care Board"
    assert (icb["type"], icb["nhs_code"]) == ("icb", "QYG")
    assert icb["parent"] == {"code": ENGLAND, "name": "England", "type": "country"}
    assert len(icb["children"]) == 9
    assert {"code": LAD_A2, "name": "Liverpool", "type": "lad"} in icb["children"]

    lad = (await client.get(f"/v1/areas/{LAD_A2.lower()}", headers=headers)).json()
    assert lad["code"] == LAD_A2
    assert lad["parent"]["code"] == ICB_A
    assert (lad["region_code"], lad["children"]) == ("E12000002", [])

    england = (await client.get(f"/v1/areas/{ENGLAND}", headers=headers)).json()
    assert england["parent"] is None
    assert len(england["children"]) == 42 + 21
    county = (await client.get("/v1/areas/E10000016", headers=headers)).json()
    assert (county["name"], county["type"], county["parent_code"]) == ("Kent", "county", ENGLAND)


async def test_area_reads_carry_an_etag_and_honour_if_none_match(
    client: httpx.AsyncClient, make_key: KeyFactory, reference: ReferenceLoadSummary
) -> None:
    headers = await make_key("read")
    first = await client.get(f"/v1/areas/{ICB_A}", headers=headers)
    etag = first.headers["etag"]
    again = await client.get(f"/v1/areas/{ICB_A}", headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag
    assert again.content == b""
    other = await client.get(f"/v1/areas/{LAD_A2}", headers={**headers, "If-None-Match": etag})
    assert other.status_code == 200

    listing = await client.get("/v1/areas?type=icb", headers=headers)
    cached = await client.get(
        "/v1/areas?type=icb", headers={**headers, "If-None-Match": listing.headers["etag"]}
    )
    assert cached.status_code == 304
    page_two = await client.get(
        "/v1/areas?type=icb&page=2&limit=10",
        headers={**headers, "If-None-Match": listing.headers["etag"]},
    )
    assert page_two.status_code == 200


async def test_unknown_area_is_404_and_bad_filters_are_422(
    client: httpx.AsyncClient, make_key: KeyFactory, reference: ReferenceLoadSummary
) -> None:
    headers = await make_key("read")
    assert_problem(await client.get("/v1/areas/E06999999", headers=headers), 404, "area_not_found")
    body = assert_problem(
        await client.get("/v1/areas?type=region", headers=headers), 422, "validation_failed"
    )
    assert _fields(body) == ["type"]
    body = assert_problem(
        await client.get("/v1/areas?limit=0", headers=headers), 422, "validation_failed"
    )
    assert _fields(body) == ["limit"]


async def test_areas_need_a_valid_key_of_any_scope(
    client: httpx.AsyncClient, make_key: KeyFactory, reference: ReferenceLoadSummary
) -> None:
    assert_problem(await client.get("/v1/areas"), 401, "missing_credentials")
    assert_problem(await client.get(f"/v1/areas/{ICB_A}"), 401, "missing_credentials")
    bad = {"Authorization": "Bearer owf_00000000_notarealkeynotarealkey"}
    assert_problem(await client.get("/v1/areas", headers=bad), 401, "unauthorized")
    # Reference data is public: a key bound to another ICS still reads every area.
    bound = await make_key("read", ics_code="E54000050")
    assert (await client.get(f"/v1/areas/{ICB_A}", headers=bound)).status_code == 200
    admin = await make_key("admin")
    assert (await client.get("/v1/areas?type=icb", headers=admin)).json()["total"] == 42
