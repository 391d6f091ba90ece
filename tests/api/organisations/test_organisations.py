"""Organisations: register, read, update, delete, list; bindings and bad input."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.models import AuditEvent, Organisation
from tests.factories import ICB_A, ICB_B, LAD_A1, LAD_B1, ensure_small_geography
from tests.helpers import KeyFactory, assert_problem

NEW = {
    "name": "Riverside Care Ltd",
    "kind": "care_provider",
    "sector": "social_care",
    "cqc_location_id": "1-123456789",
    "home_lad_code": LAD_A1,
    "opened_on": "2015-04-01",
}


async def _count(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int(
            (await session.execute(select(func.count()).select_from(Organisation))).scalar_one()
        )


async def test_register_read_update_delete(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await ensure_small_geography(sessionmaker)
    admin = await make_key("admin", ics_code=ICB_A)
    created = await client.post("/v1/organisations", json=NEW, headers=admin)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["ics_code"] == ICB_A
    assert created.headers["location"] == f"/v1/organisations/{body['id']}"
    fetched = await client.get(f"/v1/organisations/{body['id']}", headers=admin)
    assert fetched.json()["name"] == "Riverside Care Ltd"
    etag = fetched.headers["etag"]
    cached = await client.get(
        f"/v1/organisations/{body['id']}", headers={**admin, "If-None-Match": etag}
    )
    assert cached.status_code == 304
    updated = await client.patch(
        f"/v1/organisations/{body['id']}", json={"name": "Riverside Care"}, headers=admin
    )
    assert updated.json()["version"] == 2
    assert updated.headers["etag"] != etag
    listed = (await client.get("/v1/organisations?q=riverside", headers=admin)).json()
    assert listed["total"] == 1
    deleted = await client.delete(f"/v1/organisations/{body['id']}", headers=admin)
    assert deleted.status_code == 204
    assert await _count(sessionmaker) == 0
    async with sessionmaker() as session:
        actions = (await session.execute(select(AuditEvent.action))).scalars().all()
    assert {"organisation.create", "organisation.update", "organisation.delete"} <= set(actions)


async def test_bad_input_stores_nothing(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await ensure_small_geography(sessionmaker)
    admin = await make_key("admin")
    cases = [
        ({**NEW, "kind": "hospital"}, 422, "validation_failed"),
        ({**NEW, "surprise": True}, 422, "validation_failed"),
        ({**NEW, "home_lad_code": "E06999999"}, 422, "unknown_lad"),
        ({**NEW, "cqc_location_id": "CQC-1"}, 422, "validation_failed"),
    ]
    for body, status, code in cases:
        assert_problem(
            await client.post("/v1/organisations", json=body, headers=admin), status, code
        )
    assert await _count(sessionmaker) == 0
    first = await client.post("/v1/organisations", json=NEW, headers=admin)
    assert first.status_code == 201
    dup = await client.post("/v1/organisations", json={**NEW, "name": "Copy"}, headers=admin)
    assert_problem(dup, 409, "cqc_location_id_taken")
    assert await _count(sessionmaker) == 1


async def test_keys_that_may_not(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await ensure_small_geography(sessionmaker)
    admin_a = await make_key("admin", ics_code=ICB_A)
    admin_b = await make_key("admin", ics_code=ICB_B)
    reader_a = await make_key("read", ics_code=ICB_A)
    created = (await client.post("/v1/organisations", json=NEW, headers=admin_a)).json()
    url = f"/v1/organisations/{created['id']}"
    assert_problem(await client.get(url, headers=admin_b), 404, "organisation_not_found")
    assert_problem(
        await client.patch(url, json={"name": "x"}, headers=admin_b), 404, "organisation_not_found"
    )
    assert_problem(await client.delete(url, headers=admin_b), 404, "organisation_not_found")
    assert (await client.get(url, headers=reader_a)).status_code == 200
    assert_problem(
        await client.patch(url, json={"name": "x"}, headers=reader_a), 403, "insufficient_scope"
    )
    assert_problem(
        await client.post(
            "/v1/organisations",
            json={**NEW, "home_lad_code": LAD_B1, "cqc_location_id": None},
            headers=admin_a,
        ),
        403,
        "organisation_out_of_scope",
    )
    assert (await client.get("/v1/organisations", headers=admin_b)).json()["total"] == 0
    own = await make_key("submit", organisation_id=uuid.UUID(created["id"]))
    assert (await client.get("/v1/organisations", headers=own)).json()["total"] == 1
