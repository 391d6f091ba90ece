"""Scenarios: baseline always there, versions, rationale per changed lever, If-Match edits."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.projector.model.params import ScenarioParameters
from shared.models import Scenario
from shared.schemas.scenario_parameters import ScenarioParametersDocument
from tests.factories import ICB_A, ICB_B, ensure_small_geography
from tests.helpers import KeyFactory, assert_problem

LEVER = {"productivity_growth_per_year": {"default": 0.01, "by_role": {"care-worker": 0.02}}}
WHY = {
    "productivity_growth_per_year": {
        "rationale": "Digital care records free time for care",
        "source": "ICS digital strategy 2025, p.12",
    }
}


async def _count(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(Scenario))).scalar_one())


def test_published_schema_matches_the_model() -> None:
    baseline = ScenarioParameters().to_dict()
    document = ScenarioParametersDocument()
    assert set(ScenarioParametersDocument.model_fields) == set(baseline)
    assert document.model_dump() == baseline


async def test_baseline_and_schema(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    reader = await make_key("read")
    listed = (await client.get("/v1/scenarios", headers=reader)).json()["items"]
    assert [s["name"] for s in listed] == ["baseline"]
    assert listed[0]["changed"] == []
    baseline = await client.get("/v1/scenarios/baseline", headers=reader)
    assert baseline.json()["parameters"] == ScenarioParameters().to_dict()
    again = await client.get(
        "/v1/scenarios/baseline", headers={**reader, "If-None-Match": baseline.headers["etag"]}
    )
    assert again.status_code == 304
    schema = (await client.get("/v1/scenarios/schema", headers=reader)).json()
    assert "productivity_growth_per_year" in schema["properties"]
    assert schema["default"]["working_days_per_year"] == 225.0


async def test_create_update_and_versions(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    seeded_roles: list[str],
) -> None:
    await ensure_small_geography(sessionmaker)
    admin = await make_key("admin", ics_code=ICB_A)
    body = {"name": "digital-care", "title": "Digital care", "parameters": LEVER, "rationale": WHY}
    created = await client.post("/v1/scenarios", json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["ics_code"] == ICB_A
    assert created.json()["changed"] == ["productivity_growth_per_year"]
    url = "/v1/scenarios/digital-care"
    change = {
        "parameters": {"prevention_reduction": {"default": 0.1, "by_role": {}}},
        "rationale": {
            "prevention_reduction": {"rationale": "Falls prevention", "source": "NICE NG249"}
        },
    }
    assert_problem(await client.put(url, json=change, headers=admin), 428, "if_match_required")
    stale = {**admin, "If-Match": '"stale"'}
    assert_problem(await client.put(url, json=change, headers=stale), 412, "etag_mismatch")
    fresh = {**admin, "If-Match": created.headers["etag"]}
    updated = await client.put(url, json=change, headers=fresh)
    assert updated.status_code == 200, updated.text
    assert updated.json()["version"] == 2
    assert updated.json()["changed"] == ["prevention_reduction", "productivity_growth_per_year"]
    versions = (await client.get(f"{url}/versions", headers=admin)).json()["items"]
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["parameters"]["prevention_reduction"]["default"] == 0.0
    assert_problem(await client.put(url, json=change, headers=fresh), 412, "etag_mismatch")
    # Both lists page in the database: a window of one, and the total over all pages.
    second = await client.get(f"{url}/versions", params={"limit": 1, "page": 2}, headers=admin)
    assert [v["version"] for v in second.json()["items"]] == [2]
    assert second.json()["total"] == 2
    first = await client.get("/v1/scenarios", params={"limit": 1}, headers=admin)
    assert [s["name"] for s in first.json()["items"]] == ["baseline"]
    assert first.json()["total"] == 2
    rest = await client.get("/v1/scenarios", params={"limit": 1, "page": 2}, headers=admin)
    assert [s["name"] for s in rest.json()["items"]] == ["digital-care"]


async def test_bad_scenarios_store_nothing(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    seeded_roles: list[str],
) -> None:
    admin = await make_key("admin")
    base = {"name": "bad", "title": "Bad"}
    cases = [
        (
            {**base, "parameters": LEVER},
            "rationale.productivity_growth_per_year",
            "rationale_required",
        ),
        (
            {
                **base,
                "parameters": {"productivity_growth_per_year": {"default": 0.9, "by_role": {}}},
                "rationale": WHY,
            },
            "parameters.productivity_growth_per_year.default",
            "invalid_parameter",
        ),
        (
            {
                **base,
                "parameters": {"recruitment_change": {"default": 0, "by_role": {"astronaut": 0.1}}},
                "rationale": {"recruitment_change": WHY["productivity_growth_per_year"]},
            },
            None,
            "invalid_parameter",
        ),
        ({**base, "parameters": {"warp_drive": 1}}, None, "invalid_parameter"),
    ]
    for body, field, code in cases:
        problem = assert_problem(
            await client.post("/v1/scenarios", json=body, headers=admin), 422, "invalid_scenario"
        )
        assert code in {e["code"] for e in problem["errors"]}, problem
        if field:
            assert field in {e["field"] for e in problem["errors"]}, problem
    assert_problem(
        await client.post("/v1/scenarios", json={**base, "name": "Bad Name"}, headers=admin),
        422,
        "validation_failed",
    )
    assert await _count(sessionmaker) == 0
    baseline = await client.get("/v1/scenarios/baseline", headers=admin)
    assert_problem(
        await client.put(
            "/v1/scenarios/baseline",
            json={"title": "x"},
            headers={**admin, "If-Match": baseline.headers["etag"]},
        ),
        409,
        "baseline_immutable",
    )
    assert_problem(
        await client.post("/v1/scenarios", json={**base, "name": "baseline"}, headers=admin),
        409,
        "scenario_name_taken",
    )


async def test_keys_that_may_not(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    seeded_roles: list[str],
) -> None:
    await ensure_small_geography(sessionmaker)
    admin_a = await make_key("admin", ics_code=ICB_A)
    body = {"name": "local", "title": "Local", "parameters": LEVER, "rationale": WHY}
    created = await client.post("/v1/scenarios", json=body, headers=admin_a)
    reader = await make_key("read", ics_code=ICB_A)
    assert_problem(
        await client.post("/v1/scenarios", json={**body, "name": "other"}, headers=reader),
        403,
        "insufficient_scope",
    )
    admin_b = await make_key("admin", ics_code=ICB_B)
    assert_problem(
        await client.get("/v1/scenarios/local", headers=admin_b), 404, "scenario_not_found"
    )
    assert_problem(
        await client.get("/v1/scenarios/local/versions", headers=admin_b),
        404,
        "scenario_not_found",
    )
    assert_problem(
        await client.put(
            "/v1/scenarios/local",
            json={"title": "x"},
            headers={**admin_b, "If-Match": created.headers["etag"]},
        ),
        404,
        "scenario_not_found",
    )
    assert [
        s["name"] for s in (await client.get("/v1/scenarios", headers=admin_b)).json()["items"]
    ] == ["baseline"]
    assert_problem(
        await client.post(
            "/v1/scenarios", json={**body, "name": "x-b", "ics_code": ICB_A}, headers=admin_b
        ),
        403,
        "scenario_out_of_scope",
    )
