"""Input that once gave 500s or stored nonsense, on every database: control characters in any
text, numbers that are not finite or out of range, unique names created at the same moment,
lines without end, an unreachable database, and rate limits."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.main import create_app
from shared.models import Organisation, Scenario
from shared.vocab.return_lines import BULK_COLUMNS, LINE_COLUMNS
from tests.api.returns.helpers import counts, line
from tests.factories import ICB_A, LAD_A1, ensure_small_geography, make_organisation, make_role
from tests.helpers import KeyFactory, assert_problem, settings_for
from tests.live import free_port

AS_AT = "2025-03-31"


def _csv(lines: list[dict[str, Any]], columns: tuple[str, ...] = LINE_COLUMNS) -> bytes:
    out = [",".join(columns)]
    for item in lines:
        out.append(",".join("" if item.get(c) is None else str(item[c]) for c in columns))
    return ("\r\n".join(out) + "\r\n").encode()


@pytest.fixture
async def org(sessionmaker: async_sessionmaker[AsyncSession], db: object) -> uuid.UUID:
    await ensure_small_geography(sessionmaker)
    await make_role(sessionmaker, "care-worker")
    organisation = await make_organisation(sessionmaker, ods_code="RBT", opened_on=date(2010, 1, 1))
    return organisation.id


# Control characters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/roles?q=care%00worker"),
        ("GET", "/v1/organisations?q=%01"),
        ("GET", "/v1/scenarios/base%00line"),
        ("GET", "/v1/roles/care%1Fworker"),
        ("GET", "/v1/areas/E0600%0049/workforce"),
        ("GET", "/v1/agreements?role_code=a%00"),
    ],
)
async def test_control_characters_in_path_or_query_are_422(
    client: httpx.AsyncClient, make_key: KeyFactory, method: str, path: str
) -> None:
    admin = await make_key("admin")
    response = await client.request(method, path, headers=admin)
    assert_problem(response, 422, "control_character")
    # The key is checked first: without one the answer is 401, whatever the input.
    assert_problem(await client.request(method, path), 401, "missing_credentials")


async def test_control_characters_in_json_are_422_and_nothing_is_stored(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    org: uuid.UUID,
    sessionmaker: async_sessionmaker[AsyncSession],
    seeded_roles: list[str],
) -> None:
    admin = await make_key("admin")
    submit = await make_key("submit", organisation_id=org)
    bodies: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        ("/v1/scenarios", {"name": "nul", "title": "A\u0000B", "parameters": {}}, admin),
        (
            "/v1/roles",
            {
                "code": "nul-role",
                "name": "Nul",
                "sector": "health",
                "staff_group": "x",
                "capabilities": ["lifting\u0000"],
            },
            admin,
        ),
        (
            f"/v1/organisations/{org}/returns",
            {"as_at": AS_AT, "lines": [line(role_code="care-worker\u0007")]},
            submit,
        ),
    ]
    for path, body, headers in bodies:
        assert_problem(
            await client.post(path, json=body, headers=headers), 422, "control_character"
        )
    # An escaped backslash followed by "u0000" is ordinary text, not a control character.
    ok = await client.post(
        "/v1/scenarios",
        json={"name": "slash", "title": "C:\\u0000dir", "parameters": {}},
        headers=admin,
    )
    assert ok.status_code == 201, ok.text
    async with sessionmaker() as session:
        names = (await session.execute(select(Scenario.name))).scalars().all()
    assert "nul" not in names
    assert await counts(sessionmaker) == (0, 0, 0)


async def test_control_characters_in_csv_are_422(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    org: uuid.UUID,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    submit = await make_key("submit", organisation_id=org)
    body = _csv([line(), line(role_code="care\x00worker")])
    response = await client.post(
        f"/v1/organisations/{org}/returns?as_at={AS_AT}",
        content=body,
        headers={**submit, "Content-Type": "text/csv"},
    )
    problem = assert_problem(response, 422, "control_character")
    assert problem["errors"][0]["row"] == 3
    admin = await make_key("admin")
    bulk = _csv(
        [{"organisation_code": "RBT", "as_at": AS_AT, **line(role_code="x\x1bb")}], BULK_COLUMNS
    )
    response = await client.post(
        "/v1/imports/returns", content=bulk, headers={**admin, "Content-Type": "text/csv"}
    )
    problem = assert_problem(response, 422, "control_character")
    assert problem["errors"][0]["row"] == 2
    assert await counts(sessionmaker) == (0, 0, 0)


# Numbers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e309", "5000"])
async def test_json_numbers_must_be_finite_and_in_range(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    org: uuid.UUID,
    sessionmaker: async_sessionmaker[AsyncSession],
    value: str,
) -> None:
    submit = await make_key("submit", organisation_id=org)
    # Written by hand: JSON encoders refuse to write NaN or Infinity.
    body = json.dumps({"as_at": AS_AT, "lines": [line()]}).replace(
        '"mean_hourly_pay": 11.95', f'"mean_hourly_pay": {value}'
    )
    assert value in body
    response = await client.post(
        f"/v1/organisations/{org}/returns",
        content=body,
        headers={**submit, "Content-Type": "application/json"},
    )
    # Judged by the same rules as a CSV cell, beside every other problem of the return.
    problem = assert_problem(response, 422, "return_invalid")
    found = {(error["code"], error.get("column")) for error in problem["errors"]}
    assert found & {("not_a_number", "mean_hourly_pay"), ("number_out_of_range", "mean_hourly_pay")}
    assert await counts(sessionmaker) == (0, 0, 0)


@pytest.mark.parametrize(
    ("column", "value", "code"),
    [
        ("mean_hourly_pay", "nan", "not_a_number"),
        ("mean_hourly_pay", "inf", "not_a_number"),
        ("mean_hourly_pay", "Infinity", "not_a_number"),
        ("mean_hourly_pay", "1" + "0" * 400, "number_out_of_range"),
        ("mean_hourly_pay", "5000", "number_out_of_range"),
        ("headcount", "99999999999", "number_out_of_range"),
        ("sickness_days_12m", "1e5", "not_a_number"),
    ],
)
async def test_csv_numbers_must_be_finite_and_in_range(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    org: uuid.UUID,
    sessionmaker: async_sessionmaker[AsyncSession],
    column: str,
    value: str,
    code: str,
) -> None:
    submit = await make_key("submit", organisation_id=org)
    response = await client.post(
        f"/v1/organisations/{org}/returns?as_at={AS_AT}",
        content=_csv([line(**{column: value})]),
        headers={**submit, "Content-Type": "text/csv"},
    )
    problem = assert_problem(response, 422, "return_invalid")
    assert (code, column) in {(e["code"], e.get("column")) for e in problem["errors"]}, problem
    assert await counts(sessionmaker) == (0, 0, 0)


async def test_bulk_import_refuses_out_of_range_numbers(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    org: uuid.UUID,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    admin = await make_key("admin")
    rows = [
        {"organisation_code": "RBT", "as_at": AS_AT, **line(mean_hourly_pay="nan")},
        {"organisation_code": "RBT", "as_at": "2024-03-31", **line(mean_hourly_pay="1e309")},
        {"organisation_code": "RBT", "as_at": "2023-03-31", **line(mean_hourly_pay=2000)},
    ]
    accepted = await client.post(
        "/v1/imports/returns",
        content=_csv(rows, BULK_COLUMNS),
        headers={**admin, "Content-Type": "text/csv"},
    )
    assert accepted.status_code == 202, accepted.text
    await app.state.sender.join()
    result = (await client.get(accepted.headers["location"], headers=admin)).json()
    assert result["status"] == "failed"
    found = {(e["row"], e["code"]) for e in result["errors"]}
    assert {(2, "not_a_number"), (3, "not_a_number"), (4, "number_out_of_range")} <= found
    assert await counts(sessionmaker) == (0, 0, 0)


# Lines without end ----------------------------------------------------------------------------


async def test_a_line_longer_than_the_limit_fails_as_soon_as_it_is_seen(
    database_url: str, make_key: KeyFactory, org: uuid.UUID
) -> None:
    app = create_app(settings_for(database_url, max_csv_line_bytes=4096))
    admin = await make_key("admin")
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        yield (",".join(BULK_COLUMNS) + "\r\n").encode()
        for _ in range(10_000):  # 640 MB if it were all read
            sent += 1
            yield b"x" * 65536

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.post(
                "/v1/imports/returns",
                content=endless(),
                headers={**admin, "Content-Type": "text/csv"},
            )
    problem = assert_problem(response, 422, "csv_line_too_long")
    assert problem["errors"][0]["row"] == 2
    assert sent < 5, f"{sent} chunks were read before the long line was refused"


# Unique names created at the same moment ------------------------------------------------------


async def test_concurrent_creates_with_one_ods_code_give_one_201_and_409s(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    db: object,
) -> None:
    await ensure_small_geography(sessionmaker)
    admin = await make_key("admin", ics_code=ICB_A)
    body = {
        "name": "Race Care",
        "kind": "care_provider",
        "sector": "social_care",
        "ods_code": "RACE1",
        "home_lad_code": LAD_A1,
    }
    answers = await asyncio.gather(
        *(
            client.post("/v1/organisations", json={**body, "name": f"Race {i}"}, headers=admin)
            for i in range(10)
        )
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [409] * 9, [a.text for a in answers if a.status_code >= 500]
    async with sessionmaker() as session:
        stored = await session.execute(
            select(func.count()).select_from(Organisation).where(Organisation.ods_code == "RACE1")
        )
    assert stored.scalar_one() == 1


async def test_concurrent_creates_with_one_scenario_name_give_one_201_and_409s(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    seeded_roles: list[str],
) -> None:
    admin = await make_key("admin")
    body = {"name": "race", "title": "Race", "parameters": {}}
    answers = await asyncio.gather(
        *(client.post("/v1/scenarios", json=body, headers=admin) for _ in range(10))
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [409] * 9, [a.text for a in answers if a.status_code >= 500]


# Faults ----------------------------------------------------------------------------------------


async def test_an_unreachable_database_is_503_with_retry_after(db: object) -> None:
    # Nothing listens on this port: every connection is refused, as while PostgreSQL restarts.
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/absent"
    app = create_app(settings_for(url))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as http,
    ):
        response = await http.get(
            "/v1/roles", headers={"Authorization": "Bearer owf_0123abcd_" + "a" * 40}
        )
    assert_problem(response, 503, "database_unavailable")
    assert int(response.headers["retry-after"]) > 0


async def test_a_500_closes_the_connection(app: FastAPI, client: httpx.AsyncClient) -> None:
    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/test-broken", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/test-broken")
    assert_problem(response, 500, "internal_error")
    assert response.headers["connection"] == "close"


# Rate limits -----------------------------------------------------------------------------------


async def test_rate_limits_per_key_and_per_address(database_url: str, make_key: KeyFactory) -> None:
    app = create_app(
        settings_for(database_url, rate_limit_per_key="4/minute", rate_limit_per_address="3/minute")
    )
    reader = await make_key("read")
    other = await make_key("read", name="other")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            keyed = [(await http.get("/v1/roles", headers=reader)).status_code for _ in range(5)]
            limited = await http.get("/v1/roles", headers=reader)
            fresh = await http.get("/v1/roles", headers=other)
            anonymous = [(await http.get("/v1/roles")).status_code for _ in range(4)]
            probe = await http.get("/healthz")
    assert keyed == [200, 200, 200, 200, 429]
    problem = assert_problem(limited, 429, "rate_limited")
    assert 0 < int(limited.headers["retry-after"]) <= 60
    assert "4 per 1 minute" in problem["detail"]
    assert fresh.status_code == 200  # another key has its own count
    assert anonymous == [401, 401, 401, 429]
    assert probe.status_code == 200  # health probes are never limited


async def test_rate_limits_are_shared_through_redis(
    database_url: str, redis_url: str, make_key: KeyFactory
) -> None:
    """Two API processes (two apps) on one Redis count one key together, and leave no
    connection open in Redis when they stop."""
    settings = settings_for(database_url, redis_url=redis_url, rate_limit_per_key="3/minute")
    reader = await make_key("read", name=f"shared-{uuid.uuid4().hex[:6]}")
    first, second = create_app(settings), create_app(settings)
    statuses = []
    async with Redis.from_url(redis_url) as watcher:
        before = await _redis_connections(watcher)
        async with first.router.lifespan_context(first), second.router.lifespan_context(second):
            for index in range(4):
                target = first if index % 2 == 0 else second
                transport = httpx.ASGITransport(app=target)
                async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                    statuses.append((await http.get("/v1/roles", headers=reader)).status_code)
            serving = await _redis_connections(watcher)
        for _ in range(50):  # the server notes a closed connection a moment later
            stopped = await _redis_connections(watcher)
            if stopped == before:
                break
            await asyncio.sleep(0.05)
    assert statuses == [200, 200, 200, 429]
    assert serving > before  # the limiters counted in Redis ...
    assert stopped == before  # ... and closed their connections when the apps stopped


async def _redis_connections(redis: Redis) -> int:
    """Clients connected to this Redis database (this one included)."""
    database = redis.connection_pool.connection_kwargs.get("db", 0)
    clients = await redis.client_list()
    return sum(1 for client in clients if int(client["db"]) == int(database))
