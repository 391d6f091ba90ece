"""The role catalogue API: reads for any key, writes for global admins, ETags and preconditions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Column, ForeignKey, Integer, String, Table, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.db.base import Base
from shared.db.session import transaction
from shared.models import AuditEvent, Role
from shared.repositories import roles as roles_repo
from tests.factories import ICB_A, ensure_small_geography, make_organisation
from tests.helpers import KeyFactory, assert_problem

NEW_ROLE: dict[str, Any] = {
    "code": "digital-inclusion-navigator",
    "name": "Digital inclusion navigator",
    "sector": "integrated",
    "staff_group": "Personalised care",
    "pay_band": "Band 4",
    "career_framework_level": 3,
    "is_new_role": True,
    "description": "Helps people get online to use NHS App and council services.",
    "capabilities": ["Digital skills coaching"],
    "training_requirements": ["Care Certificate"],
    "default_demand_driver": "population_65_plus",
    "asc_wds_job_role": "Care navigator",
}


async def role_count(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(Role))).scalar_one())


async def audit_actions(
    sessionmaker: async_sessionmaker[AsyncSession], resource_id: str
) -> list[str]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(AuditEvent.action).where(AuditEvent.resource_id == resource_id)
        )
        return sorted(rows.scalars().all())


# ---------------------------------------------------------------------------------------- list


async def test_list_is_paginated_and_ordered_by_name(
    client: httpx.AsyncClient, make_key: KeyFactory, seeded_roles: list[str]
) -> None:
    reader = await make_key("read")
    first = (await client.get("/v1/roles", params={"limit": 10}, headers=reader)).json()
    second = (await client.get("/v1/roles?limit=10&page=2", headers=reader)).json()
    assert first["total"] == len(seeded_roles) >= 40
    assert (first["page"], first["limit"], len(first["items"])) == (1, 10, 10)
    names = [item["name"] for item in first["items"] + second["items"]]
    assert names == sorted(names)
    assert not {i["code"] for i in first["items"]} & {i["code"] for i in second["items"]}


async def test_list_filters_and_text_search(
    client: httpx.AsyncClient, make_key: KeyFactory, seeded_roles: list[str]
) -> None:
    reader = await make_key("read")

    async def codes(**params: str) -> set[str]:
        body = (
            await client.get("/v1/roles", params={**params, "limit": "500"}, headers=reader)
        ).json()
        assert body["total"] == len(body["items"])
        return {item["code"] for item in body["items"]}

    social_care = await codes(sector="social_care")
    assert {"care-worker", "registered-manager"} <= social_care
    assert "midwife" not in social_care
    assert await codes(staff_group="Midwifery") == {"midwife"}
    new_roles = await codes(is_new_role="true")
    assert {"social-prescribing-link-worker", "care-coordinator", "health-and-wellbeing-coach"} <= (
        new_roles
    )
    assert "care-worker" not in new_roles
    assert "care-worker" in await codes(is_new_role="false")
    assert await codes(registration_body="SWE") >= {"social-worker-adults"}
    assert "dementia-care-worker" in await codes(default_demand_driver="dementia_65_plus")
    # q looks in name, description and code, case-insensitively
    assert "dementia-care-worker" in await codes(q="DEMENTIA")
    assert "admiral-nurse" in await codes(q="Dementia UK")
    assert await codes(q="nurse-learning") == {"nurse-learning-disability"}
    # LIKE wildcards in q are literal text
    assert await codes(q="%") == set()
    assert await codes(q="_") == set()
    assert await codes(sector="social_care", q="nurse") == {
        "care-home-nurse",
        "care-home-nursing-assistant",
    }


@pytest.mark.parametrize(
    "params",
    [
        {"sector": "hospital"},
        {"is_new_role": "perhaps"},
        {"default_demand_driver": "population_100_plus"},
        {"registration_body": "BMA"},
        {"limit": "0"},
        {"page": "0"},
        {"q": ""},
    ],
)
async def test_list_bad_query_is_422(
    client: httpx.AsyncClient, make_key: KeyFactory, params: dict[str, str]
) -> None:
    response = await client.get("/v1/roles", params=params, headers=await make_key("read"))
    body = assert_problem(response, 422, "validation_failed")
    assert body["errors"][0]["in"] == "query"


async def _organisation_id(sessionmaker: async_sessionmaker[AsyncSession]) -> uuid.UUID:
    await ensure_small_geography(sessionmaker)
    return (await make_organisation(sessionmaker)).id


async def test_any_key_reads_the_catalogue_but_no_key_is_401(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    seeded_roles: list[str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    assert_problem(await client.get("/v1/roles"), 401, "missing_credentials")
    assert_problem(await client.get("/v1/roles/care-worker"), 401, "missing_credentials")
    keys = [
        await make_key("read"),
        await make_key("read", ics_code=ICB_A),
        await make_key("submit", organisation_id=await _organisation_id(sessionmaker)),
        await make_key("admin", ics_code=ICB_A),
    ]
    for key in keys:
        listed = await client.get("/v1/roles", headers=key)
        assert listed.json()["total"] == len(seeded_roles)
        assert (await client.get("/v1/roles/care-worker", headers=key)).status_code == 200


async def test_list_etag_and_if_none_match(
    client: httpx.AsyncClient, make_key: KeyFactory, seeded_roles: list[str]
) -> None:
    reader, admin = await make_key("read"), await make_key("admin")
    first = await client.get("/v1/roles", headers=reader)
    etag = first.headers["etag"]
    again = await client.get("/v1/roles", headers={**reader, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    # another filter or page is another representation
    filtered = await client.get(
        "/v1/roles?sector=health", headers={**reader, "If-None-Match": etag}
    )
    assert filtered.status_code == 200
    assert filtered.headers["etag"] != etag
    # any change to the catalogue makes the old ETag stale
    patched = await client.patch("/v1/roles/midwife", json={"pay_band": "Band 7"}, headers=admin)
    assert patched.status_code == 200
    assert patched.json()["pay_band"] == "Band 7"
    after = await client.get("/v1/roles", headers={**reader, "If-None-Match": etag})
    assert after.status_code == 200
    assert after.headers["etag"] != etag
    deleted_etag = after.headers["etag"]
    assert (await client.delete("/v1/roles/midwife", headers=admin)).status_code == 204
    gone = await client.get("/v1/roles", headers={**reader, "If-None-Match": deleted_etag})
    assert gone.status_code == 200
    assert gone.json()["total"] == len(seeded_roles) - 1


# ----------------------------------------------------------------------------------------- get


async def test_get_role_with_etag_and_304(
    client: httpx.AsyncClient, make_key: KeyFactory, seeded_roles: list[str]
) -> None:
    reader = await make_key("read")
    response = await client.get("/v1/roles/care-worker", headers=reader)
    assert response.status_code == 200
    role = response.json()
    assert role["name"] == "Care worker"
    assert role["sector"] == "social_care"
    assert role["asc_wds_job_role"] == "Care worker"
    assert role["is_seeded"] is True
    assert role["version"] == 1
    etag = response.headers["etag"]
    cached = await client.get("/v1/roles/care-worker", headers={**reader, "If-None-Match": etag})
    assert cached.status_code == 304
    other = await client.get("/v1/roles/midwife", headers={**reader, "If-None-Match": etag})
    assert other.status_code == 200


async def test_unknown_role_is_404(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    response = await client.get("/v1/roles/no-such-role", headers=await make_key("read"))
    assert_problem(response, 404, "role_not_found")


# -------------------------------------------------------------------------------------- create


async def test_create_role(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    admin = await make_key("admin")
    response = await client.post("/v1/roles", json=NEW_ROLE, headers=admin)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == "/v1/roles/digital-inclusion-navigator"
    created = response.json()
    assert {key: created[key] for key in NEW_ROLE} == NEW_ROLE
    assert created["registration_body"] == "none"
    assert created["is_seeded"] is False
    assert created["version"] == 1
    assert created["nhs_staff_group"] is None
    fetched = await client.get(response.headers["location"], headers=admin)
    assert fetched.json() == created
    assert fetched.headers["etag"] == response.headers["etag"]
    assert await audit_actions(sessionmaker, "digital-inclusion-navigator") == ["role.create"]


async def test_create_minimal_role_uses_defaults(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    body = {
        "code": "x1",
        "name": "  Night sitter ",
        "sector": "social_care",
        "staff_group": "Direct care",
        "default_demand_driver": "custom",
    }
    response = await client.post("/v1/roles", json=body, headers=await make_key("admin"))
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["name"] == "Night sitter"
    assert created["capabilities"] == []
    assert created["description"] == ""
    assert created["career_framework_level"] is None
    assert created["is_new_role"] is False


async def test_duplicate_code_is_409(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    seeded_roles: list[str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    admin = await make_key("admin")
    response = await client.post(
        "/v1/roles", json={**NEW_ROLE, "code": "care-worker"}, headers=admin
    )
    assert_problem(response, 409, "role_code_taken")
    assert await role_count(sessionmaker) == len(seeded_roles)
    role = (await client.get("/v1/roles/care-worker", headers=admin)).json()
    assert role["name"] == "Care worker"
    assert await audit_actions(sessionmaker, "care-worker") == []


@pytest.mark.parametrize(
    ("change", "field", "error"),
    [
        ({"colour": "blue"}, "colour", "extra_forbidden"),
        ({"sector": "hospital"}, "sector", "enum"),
        ({"default_demand_driver": "population_100_plus"}, "default_demand_driver", "enum"),
        ({"registration_body": "BMA"}, "registration_body", "enum"),
        ({"nhs_staff_group": "Nurses and health visitors"}, "nhs_staff_group", "enum"),
        ({"asc_wds_job_role": "Carer"}, "asc_wds_job_role", "enum"),
        ({"career_framework_level": 0}, "career_framework_level", "greater_than_equal"),
        ({"career_framework_level": 10}, "career_framework_level", "less_than_equal"),
        ({"code": "Care Worker"}, "code", "string_pattern_mismatch"),
        ({"code": "care--worker"}, "code", "string_pattern_mismatch"),
        ({"code": "-care"}, "code", "string_pattern_mismatch"),
        ({"code": "care_worker"}, "code", "string_pattern_mismatch"),
        ({"code": "c" * 65}, "code", "string_too_long"),
        ({"snomed_ct_occupation": "224535008"}, "snomed_ct_occupation", "snomed_ct_concept_id"),
        ({"snomed_ct_occupation": "nurse"}, "snomed_ct_occupation", "snomed_ct_concept_id"),
        ({"name": " "}, "name", "string_too_short"),
        ({"capabilities": "everything"}, "capabilities", "list_type"),
        ({"is_new_role": "sometimes"}, "is_new_role", "bool_parsing"),
    ],
)
async def test_create_bad_input_is_422_and_stores_nothing(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    change: dict[str, Any],
    field: str,
    error: str,
) -> None:
    response = await client.post(
        "/v1/roles", json={**NEW_ROLE, **change}, headers=await make_key("admin")
    )
    body = assert_problem(response, 422, "validation_failed")
    errors = body["errors"]
    assert isinstance(errors, list)
    assert {"field": field, "code": error} in [
        {"field": e["field"], "code": e["code"]} for e in errors
    ], errors
    assert await role_count(sessionmaker) == 0


async def test_create_missing_required_fields_is_422(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    response = await client.post("/v1/roles", json={"code": "x1"}, headers=await make_key("admin"))
    body = assert_problem(response, 422, "validation_failed")
    missing = {e["field"] for e in body["errors"] if e["code"] == "missing"}
    assert missing == {"name", "sector", "staff_group", "default_demand_driver"}


# ------------------------------------------------------------------------------------- access


async def test_only_global_admins_write_the_catalogue(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    seeded_roles: list[str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    refused = {
        "insufficient_scope": [
            await make_key("read"),
            await make_key("submit", organisation_id=await _organisation_id(sessionmaker)),
        ],
        "catalogue_admin_only": [await make_key("admin", ics_code=ICB_A)],
    }
    for code, keys in refused.items():
        for key in keys:
            assert_problem(await client.post("/v1/roles", json=NEW_ROLE, headers=key), 403, code)
            patch = await client.patch("/v1/roles/care-worker", json={"name": "X"}, headers=key)
            assert_problem(patch, 403, code)
            assert_problem(await client.delete("/v1/roles/care-worker", headers=key), 403, code)
            # an unknown role is still 403, not 404: the scope is checked first
            missing = await client.delete("/v1/roles/no-such-role", headers=key)
            assert_problem(missing, 403, code)
    assert await role_count(sessionmaker) == len(seeded_roles)
    role = (await client.get("/v1/roles/care-worker", headers=await make_key("read"))).json()
    assert (role["name"], role["version"]) == ("Care worker", 1)
    async with sessionmaker() as session:
        writes = await session.execute(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.resource_type == "role")
        )
        assert writes.scalar_one() == 0


# -------------------------------------------------------------------------------------- update


async def test_update_role_bumps_version_and_is_audited(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    seeded_roles: list[str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    admin = await make_key("admin")
    before = await client.get("/v1/roles/care-worker", headers=admin)
    response = await client.patch(
        "/v1/roles/care-worker",
        json={
            "name": "Care and support worker",
            "capabilities": ["Personal care", "Delegated healthcare activities"],
            "default_demand_driver": "population_85_plus",
            "snomed_ct_occupation": None,
        },
        headers=admin,
    )
    assert response.status_code == 200, response.text
    role = response.json()
    assert role["name"] == "Care and support worker"
    assert role["capabilities"] == ["Personal care", "Delegated healthcare activities"]
    assert role["default_demand_driver"] == "population_85_plus"
    assert role["code"] == "care-worker"
    assert role["version"] == 2
    assert role["sector"] == "social_care"  # untouched fields stay
    assert response.headers["etag"] != before.headers["etag"]
    fetched = await client.get("/v1/roles/care-worker", headers=admin)
    assert fetched.json() == role
    assert fetched.headers["etag"] == response.headers["etag"]
    async with sessionmaker() as session:
        event = (
            await session.execute(
                select(AuditEvent).where(
                    AuditEvent.resource_id == "care-worker", AuditEvent.action == "role.update"
                )
            )
        ).scalar_one()
    assert event.detail is not None
    assert event.detail["version"] == 2
    assert event.detail["changed"]["name"] == {
        "from": "Care worker",
        "to": "Care and support worker",
    }
    assert set(event.detail["changed"]) == {"name", "capabilities", "default_demand_driver"}


async def test_update_clears_nullable_fields(
    client: httpx.AsyncClient, make_key: KeyFactory, seeded_roles: list[str]
) -> None:
    admin = await make_key("admin")
    response = await client.patch(
        "/v1/roles/nurse-adult",
        json={
            "snomed_ct_occupation": None,
            "nhs_staff_group": None,
            "career_framework_level": None,
        },
        headers=admin,
    )
    assert response.status_code == 200, response.text
    role = response.json()
    assert (role["snomed_ct_occupation"], role["nhs_staff_group"]) == (None, None)
    assert role["career_framework_level"] is None


async def test_update_without_changes_keeps_the_version(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    seeded_roles: list[str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    admin = await make_key("admin")
    for body in ({}, {"name": "Care worker", "sector": "social_care"}):
        response = await client.patch("/v1/roles/care-worker", json=body, headers=admin)
        assert response.status_code == 200
        assert response.json()["version"] == 1
    assert await audit_actions(sessionmaker, "care-worker") == []


@pytest.mark.parametrize(
    ("body", "field", "error"),
    [
        ({"code": "carer"}, "code", "role_code_immutable"),
        ({"code": "care-worker", "name": "Carer"}, "code", "role_code_immutable"),
        ({"code": None}, "code", "role_code_immutable"),
        ({"name": None}, "name", "null_not_allowed"),
        ({"capabilities": None}, "capabilities", "null_not_allowed"),
        ({"colour": "blue"}, "colour", "extra_forbidden"),
        ({"sector": "hospital"}, "sector", "enum"),
        ({"default_demand_driver": "everyone"}, "default_demand_driver", "enum"),
        ({"career_framework_level": 10}, "career_framework_level", "less_than_equal"),
        ({"snomed_ct_occupation": "12345"}, "snomed_ct_occupation", "snomed_ct_concept_id"),
    ],
)
async def test_update_bad_input_is_422_and_changes_nothing(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    seeded_roles: list[str],
    body: dict[str, Any],
    field: str,
    error: str,
) -> None:
    admin = await make_key("admin")
    before = (await client.get("/v1/roles/care-worker", headers=admin)).json()
    response = await client.patch("/v1/roles/care-worker", json=body, headers=admin)
    problem = assert_problem(response, 422, "validation_failed")
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [(field, error)]
    assert (await client.get("/v1/roles/care-worker", headers=admin)).json() == before


async def test_update_unknown_role_is_404(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    response = await client.patch(
        "/v1/roles/no-such-role", json={"name": "X"}, headers=await make_key("admin")
    )
    assert_problem(response, 404, "role_not_found")


async def test_update_honours_if_match(
    client: httpx.AsyncClient, make_key: KeyFactory, seeded_roles: list[str]
) -> None:
    admin = await make_key("admin")
    etag = (await client.get("/v1/roles/paramedic", headers=admin)).headers["etag"]
    first = await client.patch(
        "/v1/roles/paramedic", json={"pay_band": "Band 6"}, headers={**admin, "If-Match": etag}
    )
    assert first.status_code == 200
    assert first.json()["version"] == 1  # same value: nothing changed
    second = await client.patch(
        "/v1/roles/paramedic", json={"pay_band": "Band 7"}, headers={**admin, "If-Match": etag}
    )
    assert second.status_code == 200
    assert second.json()["version"] == 2
    stale = await client.patch(
        "/v1/roles/paramedic", json={"pay_band": "Band 8a"}, headers={**admin, "If-Match": etag}
    )
    assert_problem(stale, 412, "etag_mismatch")
    assert stale.headers["etag"] == second.headers["etag"]
    current = (await client.get("/v1/roles/paramedic", headers=admin)).json()
    assert (current["pay_band"], current["version"]) == ("Band 7", 2)
    fresh = await client.patch(
        "/v1/roles/paramedic",
        json={"pay_band": "Band 8a"},
        headers={**admin, "If-Match": second.headers["etag"]},
    )
    assert fresh.status_code == 200
    assert fresh.json()["version"] == 3
    anything = await client.patch(
        "/v1/roles/paramedic", json={"pay_band": "Band 6"}, headers={**admin, "If-Match": "*"}
    )
    assert anything.status_code == 200


async def test_concurrent_updates_with_the_same_if_match_let_one_win(
    client: httpx.AsyncClient, make_key: KeyFactory, seeded_roles: list[str]
) -> None:
    admin = await make_key("admin")
    etag = (await client.get("/v1/roles/podiatrist", headers=admin)).headers["etag"]
    responses = await asyncio.gather(
        *(
            client.patch(
                "/v1/roles/podiatrist",
                json={"pay_band": band},
                headers={**admin, "If-Match": etag},
            )
            for band in ("Band 6", "Band 7")
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 412]
    (winner,) = [r for r in responses if r.status_code == 200]
    current = (await client.get("/v1/roles/podiatrist", headers=admin)).json()
    assert current["version"] == 2
    assert current["pay_band"] == winner.json()["pay_band"]


# -------------------------------------------------------------------------------------- delete


async def test_delete_role(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    seeded_roles: list[str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    admin = await make_key("admin")
    etag = (await client.get("/v1/roles/activities-worker", headers=admin)).headers["etag"]
    response = await client.delete(
        "/v1/roles/activities-worker", headers={**admin, "If-Match": etag}
    )
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(
        await client.get("/v1/roles/activities-worker", headers=admin), 404, "role_not_found"
    )
    assert_problem(
        await client.delete("/v1/roles/activities-worker", headers=admin), 404, "role_not_found"
    )
    assert await role_count(sessionmaker) == len(seeded_roles) - 1
    async with sessionmaker() as session:
        event = (
            await session.execute(
                select(AuditEvent).where(AuditEvent.resource_id == "activities-worker")
            )
        ).scalar_one()
    assert event.action == "role.delete"
    assert event.detail is not None
    assert event.detail["name"] == "Activities worker or coordinator"


async def test_delete_with_stale_if_match_is_412(
    client: httpx.AsyncClient, make_key: KeyFactory, seeded_roles: list[str]
) -> None:
    admin = await make_key("admin")
    etag = (await client.get("/v1/roles/dietitian", headers=admin)).headers["etag"]
    await client.patch("/v1/roles/dietitian", json={"pay_band": "Band 6"}, headers=admin)
    stale = await client.delete("/v1/roles/dietitian", headers={**admin, "If-Match": etag})
    assert_problem(stale, 412, "etag_mismatch")
    assert (await client.get("/v1/roles/dietitian", headers=admin)).status_code == 200


async def test_role_usage_is_empty_when_nothing_refers_to_roles(
    sessionmaker: async_sessionmaker[AsyncSession], seeded_roles: list[str]
) -> None:
    # No table references roles.code yet on this branch; returns and agreements will.
    async with sessionmaker() as session:
        assert await roles_repo.role_usage(session, "care-worker") == {}
        assert await roles_repo.role_usage(session, "no-such-role") == {}


@pytest.fixture
async def role_reference_table(engine: AsyncEngine, db: AsyncEngine) -> AsyncIterator[Table]:
    """A throwaway table with a foreign key to roles.code, on the metadata only for one test.

    It stands in for returns and agreements: role_usage must find it from the metadata alone.
    """
    table = Table(
        "test_role_references",
        Base.metadata,
        Column("id", Integer, primary_key=True),
        Column("role_code", String(64), ForeignKey("roles.code"), nullable=False),
    )
    try:
        async with engine.begin() as connection:
            await connection.run_sync(table.create)
        yield table
    finally:
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: table.drop(sync, checkfirst=True))
        Base.metadata.remove(table)


async def test_deleting_a_role_in_use_is_409(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    seeded_roles: list[str],
    role_reference_table: Table,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    admin = await make_key("admin")
    async with transaction(sessionmaker) as session:
        await session.execute(
            insert(role_reference_table),
            [{"role_code": "care-worker"}, {"role_code": "care-worker"}],
        )
        assert await roles_repo.role_usage(session, "care-worker") == {"test_role_references": 2}
        assert await roles_repo.role_usage(session, "midwife") == {}
    response = await client.delete("/v1/roles/care-worker", headers=admin)
    body = assert_problem(response, 409, "role_in_use")
    assert body["usage"] == {"test_role_references": 2}
    assert (await client.get("/v1/roles/care-worker", headers=admin)).status_code == 200
    assert await audit_actions(sessionmaker, "care-worker") == []
    async with transaction(sessionmaker) as session:
        await session.execute(delete(role_reference_table))
    assert (await client.delete("/v1/roles/care-worker", headers=admin)).status_code == 204
