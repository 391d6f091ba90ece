"""The catalogue as a FHIR R4 CodeSystem."""

from __future__ import annotations

from typing import Any

import httpx

from services.api.roles import service
from tests.fhir import valid_r4
from tests.helpers import KeyFactory, assert_problem

URL = "/v1/fhir/CodeSystem/roles"


def _properties(concept: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for prop in concept["property"]:
        (kind,) = [key for key in prop if key.startswith("value")]
        values[prop["code"]] = prop[kind]
    return values


async def test_code_system_lists_every_role(
    client: httpx.AsyncClient, make_key: KeyFactory, seeded_roles: list[str]
) -> None:
    admin = await make_key("admin")
    created = await client.post(
        "/v1/roles",
        json={
            "code": "wellbeing-worker",
            "name": "Wellbeing worker",
            "sector": "voluntary",
            "staff_group": "Community development",
            "default_demand_driver": "population_all",
        },
        headers=admin,
    )
    assert created.status_code == 201
    response = await client.get(URL, headers=await make_key("read"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    resource = response.json()
    valid_r4(resource)
    assert resource["resourceType"] == "CodeSystem"
    assert resource["url"] == service.FHIR_CANONICAL
    assert (resource["status"], resource["content"]) == ("active", "complete")
    assert resource["name"] == "OneWorkforceRoles"
    assert resource["title"]
    assert resource["version"]
    codes = [concept["code"] for concept in resource["concept"]]
    assert sorted(codes) == sorted([*seeded_roles, "wellbeing-worker"])
    assert resource["count"] == len(codes)

    declared = {prop["code"]: prop["type"] for prop in resource["property"]}
    assert {
        "sector",
        "staff-group",
        "is-new-role",
        "registration-body",
        "career-framework-level",
        "default-demand-driver",
    } <= set(declared)
    for concept in resource["concept"]:
        used = _properties(concept)
        assert set(used) <= set(declared), concept["code"]
        assert concept["display"]

    by_code = {concept["code"]: concept for concept in resource["concept"]}
    midwife = by_code["midwife"]
    assert midwife["display"] == "Midwife"
    assert midwife["definition"].startswith("Registered midwife")
    props = _properties(midwife)
    assert props["sector"] == "health"
    assert props["registration-body"] == "NMC"
    assert props["is-new-role"] is False
    assert props["career-framework-level"] == 5
    assert props["snomed-ct-occupation"] == {
        "system": "http://snomed.info/sct",
        "code": "309453006",
    }
    assert [d["value"] for d in midwife["designation"]] == ["Midwives"]
    assert midwife["designation"][0]["use"]["code"] == "nhs-staff-group"

    care_worker = by_code["care-worker"]
    assert [(d["use"]["code"], d["value"]) for d in care_worker["designation"]] == [
        ("asc-wds-job-role", "Care worker")
    ]
    assert "snomed-ct-occupation" not in _properties(care_worker)
    assert _properties(by_code["social-prescribing-link-worker"])["is-new-role"] is True
    plain = by_code["wellbeing-worker"]
    assert "definition" not in plain
    assert "designation" not in plain
    assert "career-framework-level" not in _properties(plain)


async def test_code_system_etag_changes_with_the_catalogue(
    client: httpx.AsyncClient, make_key: KeyFactory, seeded_roles: list[str]
) -> None:
    reader, admin = await make_key("read"), await make_key("admin")
    first = await client.get(URL, headers=reader)
    etag, version = first.headers["etag"], first.json()["version"]
    # The same bytes on every read of the same catalogue, so the ETag may be strong.
    again = await client.get(URL, headers=reader)
    assert (again.content, again.headers["etag"]) == (first.content, etag)
    cached = await client.get(URL, headers={**reader, "If-None-Match": etag})
    assert cached.status_code == 304
    await client.patch("/v1/roles/podiatrist", json={"pay_band": "Band 6"}, headers=admin)
    changed = await client.get(URL, headers={**reader, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json()["version"] != version


async def test_code_system_needs_a_key(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(URL), 401, "missing_credentials")


async def test_empty_catalogue_is_a_valid_code_system(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    resource = (await client.get(URL, headers=await make_key("read"))).json()
    valid_r4(resource)
    assert (resource["count"], resource["concept"]) == (0, [])
    assert "date" not in resource
