"""Creating agreements (every rule on parties and scope, nothing stored on error), listing with
filters, an organisation's agreements, and the FHIR view."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.models import Agreement, AgreementParty, AgreementScope
from tests.api.agreements.conftest import CARE_WORKER, NURSE, TODAY, Api, Clock, errors_of
from tests.factories import ICB_A, ICB_B
from tests.fhir import valid_r4
from tests.helpers import assert_problem


async def _stored(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[int, int, int]:
    async with sessionmaker() as session:
        counts = []
        for model in (Agreement, AgreementParty, AgreementScope):
            query = select(func.count()).select_from(model)
            counts.append((await session.execute(query)).scalar_one())
    return counts[0], counts[1], counts[2]


def _party(organisation_id: uuid.UUID) -> dict[str, str]:
    return {"organisation_id": str(organisation_id)}


def _cap(role: str, lender: uuid.UUID, cap: float = 1) -> dict[str, Any]:
    return {"role_code": role, "lending_organisation_id": str(lender), "fte_cap": cap}


async def test_an_ics_admin_creates_a_draft_in_its_own_ics(api: Api) -> None:
    response = await api.create(ics_code=None)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["ics_code"] == ICB_A
    assert body["mode"] == "both"
    assert body["governance"]["host_employer"] == "The lending organisation stays the employer"
    assert body["scope"][0] == {
        "role_code": CARE_WORKER,
        "lending_organisation_id": str(api.world.a1.id),
        "fte_cap": 2.0,
    }
    assert (await api.get(body["id"])).json() == body


async def test_invalid_agreements_are_refused_with_their_own_codes(
    api: Api, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    w = api.world
    missing_org = uuid.uuid4()
    cases: list[tuple[dict[str, Any], int, str, set[str]]] = [
        ({"parties": [_party(w.a1.id)], "scope": [_cap(CARE_WORKER, w.a1.id)]},
         422, "too_few_parties", {"parties"}),
        ({"parties": [_party(w.a1.id), _party(w.a1.id)], "scope": [_cap(CARE_WORKER, w.a1.id)]},
         422, "too_few_parties", {"parties", "parties.1.organisation_id"}),
        # Another ICS's organisation does not exist for an ICS admin (a global admin, who can
        # see it, is told party_outside_ics: tests/api/test_visibility.py).
        ({"parties": [_party(w.a1.id), _party(w.b1.id)], "scope": [_cap(CARE_WORKER, w.a1.id)]},
         422, "unknown_organisation", {"parties.1.organisation_id"}),
        ({"parties": [_party(w.a1.id), _party(missing_org)], "scope": [_cap(NURSE, w.a1.id)]},
         422, "unknown_organisation", {"parties.1.organisation_id"}),
        ({"scope": [_cap("no-such-role", w.a1.id)]},
         422, "unknown_role", {"scope.0.role_code"}),
        ({"scope": [_cap(CARE_WORKER, w.a3.id)]},
         422, "lender_not_party", {"scope.0.lending_organisation_id"}),
        ({"scope": [_cap(CARE_WORKER, w.a1.id), _cap(CARE_WORKER, w.a1.id, 2)]},
         422, "duplicate_scope", {"scope.1"}),
        ({"scope": []}, 422, "scope_required", {"scope"}),
        ({"end_date": (TODAY - timedelta(days=11)).isoformat()},
         422, "invalid_date_range", {"end_date"}),
        ({"ics_code": "E54999999"}, 403, "ics_out_of_scope", set()),
        ({"ics_code": ICB_B}, 403, "ics_out_of_scope", set()),
        ({"scope": [_cap(CARE_WORKER, w.a1.id, 0)]}, 422, "validation_failed", {"scope.0.fte_cap"}),
        ({"mode": "sometimes"}, 422, "validation_failed", {"mode"}),
        ({"colour": "red"}, 422, "validation_failed", {"colour"}),
    ]  # fmt: skip
    for overrides, status, code, fields in cases:
        body = assert_problem(await api.create(**overrides), status, code)
        if fields:
            assert {e["field"] for e in errors_of(body)} == fields, (code, body["errors"])
    assert await _stored(sessionmaker) == (0, 0, 0)


async def test_a_global_admin_names_a_real_ics(
    api: Api, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    admin = api.world.global_admin
    assert_problem(await api.create(headers=admin, ics_code=None), 422, "ics_required")
    assert_problem(await api.create(headers=admin, ics_code="E54999999"), 422, "ics_not_found")
    assert await _stored(sessionmaker) == (0, 0, 0)
    assert (await api.create(headers=admin)).status_code == 201


async def test_only_admins_create(api: Api, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    w = api.world
    for headers in (w.read_a, w.submit[w.a1.id], w.read_global):
        assert_problem(await api.create(headers=headers), 403, "insufficient_scope")
    anonymous = await api.client.post("/v1/agreements", json={})
    assert_problem(anonymous, 401, "missing_credentials")
    assert await _stored(sessionmaker) == (0, 0, 0)


async def test_lists_filter_and_page(api: Api, clock: Clock) -> None:
    w = api.world
    active = await api.active(mode="crisis")
    draft = await api.create_ok(
        title="Nursing bank",
        parties=[_party(w.a2.id), _party(w.a3.id)],
        scope=[_cap(NURSE, w.a3.id)],
    )
    expiring = await api.active(end_date=(TODAY + timedelta(days=5)).isoformat())

    async def ids(headers: dict[str, str] | None = None, **params: str) -> set[str]:
        response = await api.client.get(
            "/v1/agreements", params=params, headers=headers or w.read_a
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] == len(body["items"])
        return {item["id"] for item in body["items"]}

    everything = {active["id"], draft["id"], expiring["id"]}
    assert await ids() == everything
    assert await ids(w.read_global) == everything
    assert await ids(ics_code=ICB_A) == everything
    assert await ids(w.global_admin, ics_code=ICB_B) == set()
    assert await ids(status="active") == {active["id"], expiring["id"]}
    assert await ids(status="draft") == {draft["id"]}
    assert await ids(mode="crisis") == {active["id"]}
    assert await ids(role=NURSE) == everything
    assert await ids(role=CARE_WORKER) == {active["id"], expiring["id"]}
    assert await ids(organisation=str(w.a3.id)) == {draft["id"]}
    assert await ids(active_on=(TODAY + timedelta(days=30)).isoformat()) == {active["id"]}
    clock.today = TODAY + timedelta(days=6)
    assert await ids(status="expired") == {expiring["id"]}
    assert await ids(status="active") == {active["id"]}

    # Keys see only what their binding allows.
    assert await ids(w.admin_b) == set()
    assert await ids(w.submit[w.a1.id]) == {active["id"], expiring["id"]}
    assert await ids(w.submit[w.a3.id]) == {draft["id"]}
    assert await ids(w.submit[w.b1.id]) == set()
    assert await ids(w.admin_b, ics_code=ICB_A) == set()

    page = await api.client.get("/v1/agreements", params={"limit": 2, "page": 2}, headers=w.read_a)
    assert (page.json()["total"], len(page.json()["items"])) == (3, 1)
    bad = await api.client.get("/v1/agreements", params={"status": "asleep"}, headers=w.read_a)
    assert_problem(bad, 422, "validation_failed")


async def test_an_organisations_agreements(api: Api) -> None:
    w = api.world
    mine = await api.active()
    await api.create_ok(parties=[_party(w.a2.id), _party(w.a3.id)], scope=[_cap(NURSE, w.a3.id)])
    url = f"/v1/organisations/{w.a1.id}/agreements"
    for headers in (w.read_a, w.admin_a, w.global_admin, w.read[w.a1.id], w.submit[w.a1.id]):
        response = await api.client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        assert [a["id"] for a in response.json()["items"]] == [mine["id"]]
    filtered = await api.client.get(url, params={"status": "draft"}, headers=w.read_a)
    assert filtered.json()["total"] == 0
    for headers in (w.admin_b, w.submit[w.a2.id], w.submit[w.b1.id]):
        response = await api.client.get(url, headers=headers)
        assert_problem(response, 404, "organisation_not_found")
    unknown = await api.client.get(f"/v1/organisations/{uuid.uuid4()}/agreements", headers=w.read_a)
    assert_problem(unknown, 404, "organisation_not_found")


async def test_each_pair_of_parties_is_a_fhir_organization_affiliation(api: Api) -> None:
    w = api.world
    created = await api.create_ok(
        parties=[_party(w.a1.id), _party(w.a2.id), _party(w.a3.id)],
        scope=[_cap(CARE_WORKER, w.a1.id), _cap(NURSE, w.a3.id)],
    )
    url = f"/v1/agreements/{created['id']}/fhir"
    draft = await api.client.get(url, headers=w.submit[w.a2.id])
    assert draft.status_code == 200, draft.text
    assert draft.headers["content-type"] == "application/fhir+json"
    bundle = draft.json()
    valid_r4(bundle)
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "collection")
    by_type: dict[str, list[dict[str, Any]]] = {}
    for entry in bundle["entry"]:
        by_type.setdefault(entry["resource"]["resourceType"], []).append(entry)
    # The parties, each with its identifiers: ODS code, CQC location id, the API's id.
    organisations = {e["fullUrl"]: e["resource"] for e in by_type["Organization"]}
    assert list(organisations) == [f"urn:uuid:{o.id}" for o in (w.a1, w.a2, w.a3)]
    care = organisations[f"urn:uuid:{w.a1.id}"]
    assert care["name"] == "Cheshire Care Ltd"
    assert care["identifier"] == [
        {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "VN1A1"},
        {"system": "https://www.cqc.org.uk/location", "value": "1-101234567"},
        {"system": "urn:oneworkforce:organisation", "value": str(w.a1.id)},
    ]
    assert [i["system"] for i in organisations[f"urn:uuid:{w.a3.id}"]["identifier"]] == [
        "urn:oneworkforce:organisation"
    ]
    resources = [entry["resource"] for entry in by_type["OrganizationAffiliation"]]
    assert len(resources) == 3
    assert all(r["active"] is False for r in resources)
    first = resources[0]
    # References resolve inside the Bundle.
    assert first["organization"]["reference"] == f"urn:uuid:{w.a1.id}"
    assert first["organization"]["reference"] in organisations
    assert first["organization"]["identifier"] == {
        "system": "https://fhir.nhs.uk/Id/ods-organization-code",
        "value": "VN1A1",
    }
    assert first["participatingOrganization"]["reference"] == f"urn:uuid:{w.a2.id}"
    assert first["period"] == {"start": created["start_date"], "end": created["end_date"]}
    assert first["code"][0]["coding"][0]["code"] == "both"
    assert [s["coding"][0]["code"] for s in first["specialty"]] == [CARE_WORKER]
    assert first["specialty"][0]["coding"][0]["display"] == "Care worker"
    # The role codes are looked up in the CodeSystem the API serves, at its own url.
    code_system = (await api.client.get("/v1/fhir/CodeSystem/roles", headers=w.read_a)).json()
    assert {s["coding"][0]["system"] for r in resources for s in r["specialty"]} == {
        code_system["url"]
    }
    concepts = {c["code"]: c["display"] for c in code_system["concept"]}
    assert concepts[CARE_WORKER] == first["specialty"][0]["coding"][0]["display"]
    # a2 and a3: a3 has no ODS code, so it is identified by its id; a3 lends nurses.
    last = resources[2]
    assert last["participatingOrganization"]["identifier"]["value"] == str(w.a3.id)
    assert [s["coding"][0]["code"] for s in last["specialty"]] == [NURSE]
    assert len({entry["fullUrl"] for entry in bundle["entry"]}) == 6
    # The same bytes on every read (no read time inside), so the strong ETag holds.
    again = await api.client.get(url, headers=w.read_a)
    assert again.content == draft.content
    assert again.headers["etag"] == draft.headers["etag"]
    cached = await api.client.get(url, headers={**w.read_a, "If-None-Match": draft.headers["etag"]})
    assert cached.status_code == 304

    for organisation in (w.a1, w.a2, w.a3):
        await api.sign(created["id"], organisation)
    active = await api.client.get(url, headers=w.read_a)
    valid_r4(active.json())
    assert active.headers["etag"] != draft.headers["etag"]
    assert all(
        e["resource"]["active"] is True
        for e in active.json()["entry"]
        if e["resource"]["resourceType"] == "OrganizationAffiliation"
    )

    for headers in (w.admin_b, w.submit[w.b1.id]):
        assert_problem(await api.client.get(url, headers=headers), 404, "agreement_not_found")
