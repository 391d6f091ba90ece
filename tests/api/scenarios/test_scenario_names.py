"""Scenario names are unique per owner: two ICSs may each have "winter-pressure", an ICS may not
take a national name, and nothing about another ICS's private names shows through any answer.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.domain.reference.loader import ReferenceLoadSummary
from shared.models import ENGLAND_CODE, ProjectionRun, Scenario
from tests.factories import ICB_A, ICB_B, LAD_A1, ensure_small_geography, make_organisation
from tests.helpers import KeyFactory, assert_problem

NAME = "winter-pressure"


def _body(name: str, **more: Any) -> dict[str, Any]:
    return {"name": name, "title": name.title(), "parameters": {}, **more}


async def _stored(sessionmaker: async_sessionmaker[AsyncSession]) -> list[tuple[str | None, str]]:
    """Every (owner, name) stored, in a stable order."""
    async with sessionmaker() as session:
        rows = (await session.execute(select(Scenario.ics_code, Scenario.name))).all()
    return sorted(((ics, name) for ics, name in rows), key=lambda row: (row[1], row[0] or ""))


async def _ids_by_owner(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, uuid.UUID]:
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(Scenario.ics_code, Scenario.id).where(Scenario.name == NAME)
            )
        ).all()
    return {str(ics): scenario_id for ics, scenario_id in rows}


async def test_two_icss_each_have_a_scenario_of_one_name(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    seeded_roles: list[str],
) -> None:
    await ensure_small_geography(sessionmaker)
    admin_a = await make_key("admin", ics_code=ICB_A, name="admin-a")
    admin_b = await make_key("admin", ics_code=ICB_B, name="admin-b")
    created_a = await client.post("/v1/scenarios", json=_body(NAME), headers=admin_a)
    created_b = await client.post(
        "/v1/scenarios", json=_body(NAME, description="B's plan"), headers=admin_b
    )
    assert created_a.status_code == created_b.status_code == 201, (created_a.text, created_b.text)
    assert created_a.headers["location"] == f"/v1/scenarios/{NAME}?ics_code={ICB_A}"
    assert await _stored(sessionmaker) == [(ICB_A, NAME), (ICB_B, NAME)]

    # Each ICS's keys mean their own ICS's scenario, and list only it.
    reader_a = await make_key("read", ics_code=ICB_A, name="reader-a")
    for key, owner in ((admin_a, ICB_A), (reader_a, ICB_A), (admin_b, ICB_B)):
        read = await client.get(f"/v1/scenarios/{NAME}", headers=key)
        assert read.status_code == 200, read.text
        assert read.json()["ics_code"] == owner
        listed = (await client.get("/v1/scenarios", headers=key)).json()["items"]
        assert [(s["name"], s["ics_code"]) for s in listed] == [
            ("baseline", None),
            (NAME, owner),
        ]
    # Naming the other ICS does not reach its scenario: the answer is that of a free name.
    assert_problem(
        await client.get(f"/v1/scenarios/{NAME}?ics_code={ICB_B}", headers=reader_a),
        404,
        "scenario_not_found",
    )

    # A key that sees every ICS names the ICS when several hold the name.
    reader = await make_key("read", name="reader-global")
    ambiguous = assert_problem(
        await client.get(f"/v1/scenarios/{NAME}", headers=reader), 409, "scenario_ambiguous"
    )
    assert ambiguous["ics_codes"] == [ICB_A, ICB_B]
    assert_problem(
        await client.get(f"/v1/scenarios/{NAME}/versions", headers=reader),
        409,
        "scenario_ambiguous",
    )
    chosen = await client.get(f"/v1/scenarios/{NAME}?ics_code={ICB_B}", headers=reader)
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["description"] == "B's plan"
    assert_problem(
        await client.get(f"/v1/scenarios/{NAME}?ics_code=E54000999", headers=reader),
        404,
        "scenario_not_found",
    )
    assert_problem(
        await client.get(f"/v1/scenarios/{NAME}?ics_code=nope", headers=reader),
        422,
        "validation_failed",
    )
    everything = (await client.get("/v1/scenarios", headers=reader)).json()["items"]
    assert [(s["name"], s["ics_code"]) for s in everything] == [
        ("baseline", None),
        (NAME, ICB_A),
        (NAME, ICB_B),
    ]

    # A change reaches the named ICS's scenario only.
    admin = await make_key("admin", name="admin-global")
    url = f"/v1/scenarios/{NAME}?ics_code={ICB_A}"
    etag = (await client.get(url, headers=admin)).headers["etag"]
    changed = await client.put(url, json={"title": "Changed"}, headers={**admin, "If-Match": etag})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["ics_code"], changed.json()["version"]) == (ICB_A, 2)
    other = (await client.get(f"/v1/scenarios/{NAME}", headers=admin_b)).json()
    assert (other["title"], other["version"]) == (NAME.title(), 1)


async def test_runs_use_the_scenario_of_their_scope(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    reference: ReferenceLoadSummary,
    seeded_roles: list[str],
) -> None:
    admin = await make_key("admin", name="admin-global")
    admin_a = await make_key("admin", ics_code=ICB_A, name="admin-a")
    for ics in (ICB_A, ICB_B):
        created = await client.post("/v1/scenarios", json=_body(NAME, ics_code=ics), headers=admin)
        assert created.status_code == 201, created.text
    owners = await _ids_by_owner(sessionmaker)
    request = {"scenario": NAME, "base_year": 2024, "horizon": 1, "iterations": 0}
    picked = {}
    for key, scope in ((admin, ICB_B), (admin_a, ICB_A)):
        response = await client.post(
            "/v1/projections", json={**request, "scope": scope}, headers=key
        )
        assert response.status_code == 202, response.text
        picked[scope] = uuid.UUID(response.json()["id"])
    # England is every ICS's: a run of it uses a national scenario only.
    england = await client.post(
        "/v1/projections", json={**request, "scope": ENGLAND_CODE}, headers=admin
    )
    assert_problem(england, 422, "unknown_scenario")
    await app.state.sender.join()
    async with sessionmaker() as session:
        runs = {
            run.id: run.scenario_id
            for run in (await session.execute(select(ProjectionRun))).scalars().all()
        }
    assert runs == {picked[ICB_A]: owners[ICB_A], picked[ICB_B]: owners[ICB_B]}


async def test_an_ics_may_not_take_a_national_name_nor_the_nation_an_icss(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    seeded_roles: list[str],
) -> None:
    await ensure_small_geography(sessionmaker)
    admin = await make_key("admin", name="admin-global")
    admin_a = await make_key("admin", ics_code=ICB_A, name="admin-a")
    assert (await client.post("/v1/scenarios", json=_body("national"), headers=admin)).is_success
    assert (await client.post("/v1/scenarios", json=_body("local"), headers=admin_a)).is_success
    refused = [
        (admin_a, _body("national")),  # an ICS shadowing a national name
        (admin, _body("national", ics_code=ICB_B)),  # likewise, made by a global key
        (admin, _body("local")),  # a national scenario shadowing an ICS's
        (admin_a, _body("local")),  # the same name twice in one ICS
        (admin_a, _body("baseline")),
    ]
    for key, body in refused:
        assert_problem(
            await client.post("/v1/scenarios", json=body, headers=key), 409, "scenario_name_taken"
        )
    # Another ICS may still use the ICS's name.
    taken_elsewhere = await client.post(
        "/v1/scenarios", json=_body("local", ics_code=ICB_B), headers=admin
    )
    assert taken_elsewhere.status_code == 201, taken_elsewhere.text
    assert await _stored(sessionmaker) == [
        (ICB_A, "local"),
        (ICB_B, "local"),
        (None, "national"),
    ]
    # An ICS key reading the national name gets the national scenario.
    national = await client.get("/v1/scenarios/national", headers=admin_a)
    assert national.status_code == 200
    assert national.json()["ics_code"] is None


def _shape(response: httpx.Response, name: str) -> tuple[int, Any]:
    """What an answer says, with the name asked for and anything unique to one request (ids,
    times, request ids, versions) taken out, so two answers can be compared."""
    if not response.content:
        return response.status_code, None
    text = response.text.replace(name, "<name>")
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)?", "<time>", text)
    text = re.sub(r'"request_id":"[^"]*"', '"request_id":"<id>"', text)
    return response.status_code, text


async def test_another_icss_private_name_answers_as_a_free_name(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    reference: ReferenceLoadSummary,
    seeded_roles: list[str],
) -> None:
    await ensure_small_geography(sessionmaker)
    admin_b = await make_key("admin", ics_code=ICB_B, name="admin-b")
    hidden, free = "hidden-plan", "never-made"
    assert (await client.post("/v1/scenarios", json=_body(hidden), headers=admin_b)).is_success
    organisation = await make_organisation(sessionmaker, home_lad_code=LAD_A1, ics_code=ICB_A)
    keys = {
        "ics_admin": await make_key("admin", ics_code=ICB_A, name="admin-a"),
        "ics_read": await make_key("read", ics_code=ICB_A, name="reader-a"),
        "org_submit": await make_key("submit", organisation_id=organisation.id, name="org"),
    }
    stale = {"If-Match": '"stale"'}
    requests: list[tuple[str, str, dict[str, Any] | None, dict[str, str]]] = [
        ("GET", "/v1/scenarios/{n}", None, {}),
        ("GET", "/v1/scenarios/{n}?ics_code=" + ICB_B, None, {}),
        ("GET", "/v1/scenarios/{n}/versions", None, {}),
        ("PUT", "/v1/scenarios/{n}", {"title": "x"}, stale),
        ("PUT", "/v1/scenarios/{n}?ics_code=" + ICB_B, {"title": "x"}, stale),
        ("GET", "/v1/projections?scenario={n}", None, {}),
        ("GET", f"/v1/areas/{ICB_A}/projections/latest?scenario={{n}}", None, {}),
        ("POST", "/v1/projections", {"scope": ICB_A, "scenario": "{n}", "base_year": 2024}, {}),
        # Last: creating takes the name in the key's own ICS, and is allowed for both.
        ("POST", "/v1/scenarios", _body("{n}"), {}),
    ]
    differences = []
    for kind, key in keys.items():
        for method, template, body, headers in requests:
            answers = []
            for name in (hidden, free):
                sent = None if body is None else _fill(body, name)
                response = await client.request(
                    method,
                    template.replace("{n}", name),
                    json=sent,
                    headers={**key, **headers},
                )
                assert response.status_code < 500, response.text
                answers.append(_shape(response, name))
            if answers[0] != answers[1]:
                differences.append(f"{kind} {method} {template}: {answers[0]} != {answers[1]}")
    assert not differences, "\n".join(differences)
    # And the hidden scenario is untouched.
    read = await client.get(f"/v1/scenarios/{hidden}", headers=admin_b)
    assert (read.json()["title"], read.json()["version"]) == (hidden.title(), 1)


def _fill(body: dict[str, Any], name: str) -> dict[str, Any]:
    return {
        key: (value.replace("{n}", name) if isinstance(value, str) else value)
        for key, value in body.items()
    }


async def test_concurrent_creates_of_one_name(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    seeded_roles: list[str],
) -> None:
    """Ten creates of one name in one ICS: one 201, nine 409s. Five from each of two ICSs: one
    201 in each. A national and an ICS's create of one name at once: exactly one stands."""
    await ensure_small_geography(sessionmaker)
    admin = await make_key("admin", name="admin-global")
    admin_a = await make_key("admin", ics_code=ICB_A, name="admin-a")
    admin_b = await make_key("admin", ics_code=ICB_B, name="admin-b")

    async def creates(*sent: tuple[dict[str, str], str]) -> list[httpx.Response]:
        return list(
            await asyncio.gather(
                *(client.post("/v1/scenarios", json=_body(name), headers=key) for key, name in sent)
            )
        )

    def statuses(answers: list[httpx.Response]) -> list[int]:
        assert all(a.status_code < 500 for a in answers), [a.text for a in answers]
        for answer in answers:
            if answer.status_code == 409:
                assert answer.json()["code"] == "scenario_name_taken", answer.text
        return sorted(a.status_code for a in answers)

    assert statuses(await creates(*[(admin_a, "race-one")] * 10)) == [201] + [409] * 9
    mixed = await creates(*[(admin_a, "race-two"), (admin_b, "race-two")] * 5)
    assert statuses(mixed) == [201, 201] + [409] * 8
    for _ in range(3):
        name = f"race-{uuid.uuid4().hex[:8]}"
        across = await creates(*[(admin, name), (admin_a, name)] * 3)
        assert statuses(across) == [201] + [409] * 5
    stored = await _stored(sessionmaker)
    assert stored.count((ICB_A, "race-one")) == 1
    assert [row for row in stored if row[1] == "race-two"] == [
        (ICB_A, "race-two"),
        (ICB_B, "race-two"),
    ]
    assert len(stored) == 3 + 3
