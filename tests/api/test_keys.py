"""API keys: authentication (401), scopes (403), bindings and the audit trail of writes."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.models import ApiKey, AuditEvent
from tests.factories import ICB_A, ICB_B, LAD_B1, ensure_small_geography, make_organisation
from tests.helpers import KeyFactory, assert_problem


async def test_missing_key_is_401_with_www_authenticate(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/keys/me")
    assert_problem(response, 401, "missing_credentials")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_unknown_key_is_401(client: httpx.AsyncClient) -> None:
    for token in ("owf_0badc0de_" + "a" * 43, "not-a-key-at-all"):
        response = await client.get("/v1/keys/me", headers={"Authorization": f"Bearer {token}"})
        assert_problem(response, 401, "unauthorized")
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_key_with_the_right_prefix_but_wrong_secret_is_401(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    real = (await make_key("read"))["Authorization"]
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    response = await client.get("/v1/keys/me", headers={"Authorization": forged})
    assert_problem(response, 401, "unauthorized")


async def test_revoked_key_is_401(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    admin = await make_key("admin")
    created = await client.post("/v1/keys", json={"name": "portal", "scope": "read"}, headers=admin)
    assert created.status_code == 201
    reader = {"Authorization": f"Bearer {created.json()['secret']}"}
    assert (await client.get("/v1/keys/me", headers=reader)).json()["scope"] == "read"
    revoked = await client.delete(f"/v1/keys/{created.json()['id']}", headers=admin)
    assert revoked.status_code == 204
    response = await client.get("/v1/keys/me", headers=reader)
    assert_problem(response, 401, "key_revoked")
    again = await client.delete(f"/v1/keys/{created.json()['id']}", headers=admin)
    assert_problem(again, 409, "key_already_revoked")


async def test_wrong_scope_is_403(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    reader = await make_key("read")
    assert_problem(await client.get("/v1/keys", headers=reader), 403, "insufficient_scope")
    response = await client.post("/v1/keys", json={"name": "x", "scope": "read"}, headers=reader)
    assert_problem(response, 403, "insufficient_scope")


async def test_secret_is_returned_once_and_only_its_hash_is_stored(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    admin = await make_key("admin")
    created = (
        await client.post("/v1/keys", json={"name": "etl", "scope": "read"}, headers=admin)
    ).json()
    secret = created["secret"]
    listed = (await client.get("/v1/keys", headers=admin)).json()["items"]
    assert all("secret" not in key for key in listed)
    async with sessionmaker() as session:
        rows = (await session.execute(select(ApiKey))).scalars().all()
    assert all(secret not in (row.secret_sha256, row.prefix, row.name) for row in rows)
    assert any(len(row.secret_sha256) == 64 for row in rows)


async def test_a_write_leaves_an_audit_event(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await ensure_small_geography(sessionmaker)
    admin = await make_key("admin", name="ics-lead")
    me = (await client.get("/v1/keys/me", headers=admin)).json()
    response = await client.post(
        "/v1/keys",
        json={"name": "reader", "scope": "read", "ics_code": "E54000008"},
        headers={**admin, "X-Request-ID": "audit-check-1"},
    )
    assert response.status_code == 201
    async with sessionmaker() as session:
        events = (
            (
                await session.execute(
                    select(AuditEvent).where(AuditEvent.key_id == uuid.UUID(me["key_id"]))
                )
            )
            .scalars()
            .all()
        )
    assert len(events) == 1
    event = events[0]
    assert event.action == "api_key.create"
    assert event.resource_type == "api_key"
    assert event.resource_id == response.json()["id"]
    assert event.request_id == "audit-check-1"
    assert event.actor == "key:ics-lead"
    assert event.at.tzinfo is not None


async def test_bad_key_requests_store_nothing(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    admin = await make_key("admin")
    bad = [
        {"name": "x", "scope": "submit"},  # submit without an organisation
        {
            "name": "x",
            "scope": "read",
            "ics_code": "E54000008",
            "organisation_id": "7d3c6f8e-58a4-4a4b-9c0e-1f1f1f1f1f1f",
        },
        {"name": "x", "scope": "read", "ics_code": "E99"},
        {"name": "x", "scope": "read", "surprise": 1},
    ]
    for body in bad:
        response = await client.post("/v1/keys", json=body, headers=admin)
        assert response.status_code == 422, body
    async with sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(ApiKey))).scalar() == 1
        # The only audit event is the one for the admin key created by the fixture.
        assert (await session.execute(select(func.count()).select_from(AuditEvent))).scalar() == 1


async def test_ics_admin_manages_only_its_own_ics_keys(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    ics_admin = await make_key("admin", ics_code="E54000008")
    own = await client.post(
        "/v1/keys", json={"name": "a", "scope": "read", "ics_code": "E54000008"}, headers=ics_admin
    )
    assert own.status_code == 201
    other = await client.post(
        "/v1/keys", json={"name": "b", "scope": "read", "ics_code": "E54000050"}, headers=ics_admin
    )
    assert_problem(other, 403, "key_out_of_scope")
    global_admin = await make_key("admin")
    foreign = await client.post(
        "/v1/keys",
        json={"name": "c", "scope": "read", "ics_code": "E54000050"},
        headers=global_admin,
    )
    listed = (await client.get("/v1/keys", headers=ics_admin)).json()["items"]
    assert {key["name"] for key in listed} == {"a", "test"}  # "test" is the ICS admin itself
    hidden = await client.delete(f"/v1/keys/{foreign.json()['id']}", headers=ics_admin)
    assert_problem(hidden, 404, "key_not_found")


async def test_keys_bind_only_to_what_exists(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    admin = await make_key("admin")
    bogus_ics = {"name": "x", "scope": "read", "ics_code": "E54000000"}
    assert_problem(await client.post("/v1/keys", json=bogus_ics, headers=admin), 422, "unknown_ics")
    bogus_org = {"name": "x", "scope": "submit", "organisation_id": str(uuid.uuid4())}
    assert_problem(
        await client.post("/v1/keys", json=bogus_org, headers=admin), 422, "unknown_organisation"
    )
    async with sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(ApiKey))).scalar() == 1


async def test_absurd_page_numbers_are_422_not_500(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    reader = await make_key("read")
    for url in ("/v1/organisations", "/v1/agreements", "/v1/projections", "/v1/roles"):
        response = await client.get(f"{url}?page=1152921504606846976", headers=reader)
        assert_problem(response, 422, "validation_failed")


async def test_ics_admin_creates_and_revokes_its_partners_organisation_keys(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await ensure_small_geography(sessionmaker)
    partner = await make_organisation(sessionmaker, ics_code=ICB_A)
    stranger = await make_organisation(sessionmaker, ics_code=ICB_B, home_lad_code=LAD_B1)
    ics_admin = await make_key("admin", ics_code=ICB_A)
    created = await client.post(
        "/v1/keys",
        json={"name": "partner-submit", "scope": "submit", "organisation_id": str(partner.id)},
        headers=ics_admin,
    )
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    me = await client.get("/v1/keys/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.json()["organisation_id"] == str(partner.id)
    # Another ICS's organisation is answered exactly as one that does not exist.
    for organisation_id in (stranger.id, uuid.uuid4()):
        assert_problem(
            await client.post(
                "/v1/keys",
                json={"name": "x", "scope": "read", "organisation_id": str(organisation_id)},
                headers=ics_admin,
            ),
            422,
            "unknown_organisation",
        )
    assert_problem(
        await client.post(
            "/v1/keys",
            json={"name": "x", "scope": "admin", "organisation_id": str(partner.id)},
            headers=ics_admin,
        ),
        422,
        "admin_key_binding",
    )
    global_admin = await make_key("admin", name="global")
    foreign = await client.post(
        "/v1/keys",
        json={"name": "stranger-read", "scope": "read", "organisation_id": str(stranger.id)},
        headers=global_admin,
    )
    listed = {
        key["name"] for key in (await client.get("/v1/keys", headers=ics_admin)).json()["items"]
    }
    assert listed == {"test", "partner-submit"}
    assert_problem(
        await client.delete(f"/v1/keys/{foreign.json()['id']}", headers=ics_admin),
        404,
        "key_not_found",
    )
    revoked = await client.delete(f"/v1/keys/{created.json()['id']}", headers=ics_admin)
    assert revoked.status_code == 204
    refused = await client.get("/v1/keys/me", headers={"Authorization": f"Bearer {secret}"})
    assert_problem(refused, 401, "key_revoked")


async def test_audit_trail_is_filtered_paged_and_scoped(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await ensure_small_geography(sessionmaker)
    partner = await make_organisation(sessionmaker, ics_code=ICB_A)
    admin_a = await make_key("admin", ics_code=ICB_A, name="lead-a")
    admin_b = await make_key("admin", ics_code=ICB_B, name="lead-b")
    global_admin = await make_key("admin", name="national")
    for index in range(3):
        response = await client.post(
            "/v1/keys",
            json={"name": f"a{index}", "scope": "read", "ics_code": ICB_A},
            headers=admin_a,
        )
        assert response.status_code == 201
    partner_key = await client.post(
        "/v1/keys",
        json={"name": "p", "scope": "read", "organisation_id": str(partner.id)},
        headers=admin_a,
    )
    await client.post(
        "/v1/keys", json={"name": "b0", "scope": "read", "ics_code": ICB_B}, headers=admin_b
    )
    await client.delete(f"/v1/keys/{partner_key.json()['id']}", headers=admin_a)

    everything = (await client.get("/v1/audit?limit=500", headers=global_admin)).json()
    actors = {event["actor"] for event in everything["items"]}
    assert {"key:lead-a", "key:lead-b"} <= actors
    mine = (await client.get("/v1/audit?limit=500", headers=admin_a)).json()
    assert {event["actor"] for event in mine["items"]} == {"key:lead-a"}
    assert mine["total"] == 5  # four keys created and one revoked
    revokes = (await client.get("/v1/audit?action=api_key.revoke", headers=admin_a)).json()
    assert [event["resource_id"] for event in revokes["items"]] == [partner_key.json()["id"]]
    theirs = (await client.get("/v1/audit?actor=key:lead-b", headers=admin_a)).json()
    assert theirs["total"] == 0
    paged = await client.get("/v1/audit?actor=key:lead-a&limit=2&page=2", headers=global_admin)
    body = paged.json()
    assert body["total"] == 5
    assert len(body["items"]) == 2
    times = [event["at"] for event in mine["items"]]
    assert times == sorted(times, reverse=True)
    later = (await client.get("/v1/audit", params={"since": times[0]}, headers=admin_a)).json()
    assert later["total"] >= 1
    future = (
        await client.get("/v1/audit", params={"since": "2999-01-01T00:00:00Z"}, headers=admin_a)
    ).json()
    assert future["total"] == 0
    reader = await make_key("read", ics_code=ICB_A)
    assert_problem(await client.get("/v1/audit", headers=reader), 403, "insufficient_scope")
    assert_problem(
        await client.get("/v1/audit?since=yesterday", headers=admin_a), 422, "validation_failed"
    )
