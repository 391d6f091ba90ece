"""The access matrix, generated from the OpenAPI document: every operation, with every kind of
key, against a target of its own, one in the same ICS and one in another ICS.

MATRIX holds every cell's expected outcome in one table. An operation in the document without
a row fails the test, so a new endpoint cannot ship without its access decided here.

Kinds of key (columns, in order): global admin, ICS admin (ICS A), ICS read (ICS A),
organisation submit (A1, in ICS A), organisation read (A1), revoked (was ICS admin of A), none.
Targets (the three letters of each column): own (A1's, or ICS A's where the resource belongs to
an ICS), same ICS (A2's; ICS A's again for ICS-owned resources), other ICS (B1's or ICS B's).

Outcomes: Y served, 4 = 404 (what the key may not see does not exist for it), F = 403 (scope),
U = 401; P = passed the access checks (anything but 401, 403 and 5xx): writes are sent without
a body, so they prove the key and scope checks and are refused as bad input or carried out.
Lists are also checked for contents: a list shows exactly the targets its read shows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.main import create_app
from tests.api.access_world import World, build_world
from tests.factories import ICB_B
from tests.helpers import KeyFactory, settings_for

KINDS = ("global_admin", "ics_admin", "ics_read", "org_submit", "org_read", "revoked", "none")
TARGETS = ("own", "same", "other")

# One row per operation: seven groups (KINDS), three outcomes each (TARGETS).
MATRIX: dict[str, str] = {
    # Probes and the caller itself.
    "GET /healthz": "YYY YYY YYY YYY YYY YYY YYY",
    "GET /problems": "YYY YYY YYY YYY YYY YYY YYY",
    "GET /problems/{code}": "YYY YYY YYY YYY YYY YYY YYY",
    "GET /readyz": "YYY YYY YYY YYY YYY YYY YYY",
    "GET /v1/keys/me": "YYY YYY YYY YYY YYY UUU UUU",
    # Keys and the audit trail: admins, within their ICS (its keys and its partners' keys).
    "GET /v1/keys": "YYY YYY FFF FFF FFF UUU UUU",
    "POST /v1/keys": "PPP PPP FFF FFF FFF UUU UUU",
    "DELETE /v1/keys/{key_id}": "PPP PPP FFF FFF FFF UUU UUU",
    "GET /v1/audit": "YYY YYY FFF FFF FFF UUU UUU",
    # Reference data any key may read.
    "GET /v1/areas": "YYY YYY YYY YYY YYY UUU UUU",
    "GET /v1/areas/{code}": "YYY YYY YYY YYY YYY UUU UUU",
    "GET /v1/areas/{code}/population": "YYY YYY YYY YYY YYY UUU UUU",
    "GET /v1/population-datasets": "YYY YYY YYY YYY YYY UUU UUU",
    "GET /v1/roles": "YYY YYY YYY YYY YYY UUU UUU",
    "GET /v1/roles/{code}": "YYY YYY YYY YYY YYY UUU UUU",
    # The role catalogue is national: only global admins change it.
    "GET /v1/fhir/CodeSystem/roles": "YYY YYY YYY YYY YYY UUU UUU",
    "POST /v1/roles": "PPP FFF FFF FFF FFF UUU UUU",
    "PATCH /v1/roles/{code}": "PPP FFF FFF FFF FFF UUU UUU",
    "DELETE /v1/roles/{code}": "PPP FFF FFF FFF FFF UUU UUU",
    "GET /v1/returns/template.csv": "YYY YYY YYY YYY YYY UUU UUU",
    # Area figures: an ICS key reads its own ICS's areas; organisation keys none.
    "GET /v1/areas/{code}/workforce": "YYY YY4 YY4 444 444 UUU UUU",
    "GET /v1/areas/{code}/needs": "YYY YYY YYY YYY YYY UUU UUU",
    "GET /v1/areas/{code}/projections/latest": "444 444 444 444 444 UUU UUU",
    "GET /v1/areas/{code}/data-gaps": "YYY YY4 YY4 444 444 UUU UUU",
    "GET /v1/areas/{code}/equality": "YYY YY4 YY4 444 444 UUU UUU",
    "GET /v1/areas/{code}/pay-parity": "YYY YY4 YY4 444 444 UUU UUU",
    "GET /v1/areas/{code}/track-record": "YYY YY4 YY4 444 444 UUU UUU",
    "GET /v1/areas/{code}/unpaid-care": "YYY YYY YYY YYY YYY UUU UUU",
    "GET /v1/role-equivalences": "YYY YYY YYY YYY YYY UUU UUU",
    # Organisations: an ICS key sees its ICS's, an organisation key its own.
    "GET /v1/organisations": "YYY YYY YYY YYY YYY UUU UUU",
    "POST /v1/organisations": "PPP PPP FFF FFF FFF UUU UUU",
    "GET /v1/organisations/{organisation_id}": "YYY YY4 YY4 Y44 Y44 UUU UUU",
    "PATCH /v1/organisations/{organisation_id}": "PPP PPP FFF FFF FFF UUU UUU",
    "DELETE /v1/organisations/{organisation_id}": "PPP PPP FFF FFF FFF UUU UUU",
    # Returns: submit keys of the organisation, admins of its ICS.
    "GET /v1/organisations/{organisation_id}/returns": "YYY YY4 FFF Y44 FFF UUU UUU",
    "POST /v1/organisations/{organisation_id}/returns": "PPP PPP FFF PPP FFF UUU UUU",
    "GET /v1/returns/{return_id}": "YYY YY4 FFF Y44 FFF UUU UUU",
    "GET /v1/returns/{return_id}/diff": "YYY YY4 FFF Y44 FFF UUU UUU",
    "POST /v1/imports/returns": "PPP PPP FFF FFF FFF UUU UUU",
    "GET /v1/imports/{import_id}": "YYY YY4 FFF FFF FFF UUU UUU",
    # Agreements: an ICS key sees its ICS's, an organisation key those it is a party to.
    "GET /v1/agreements": "YYY YYY YYY YYY YYY UUU UUU",
    "POST /v1/agreements": "PPP PPP FFF FFF FFF UUU UUU",
    "GET /v1/organisations/{organisation_id}/agreements": "YYY YY4 YY4 Y44 Y44 UUU UUU",
    "GET /v1/agreements/{agreement_id}": "YYY YY4 YY4 Y44 Y44 UUU UUU",
    "GET /v1/agreements/{agreement_id}/fhir": "YYY YY4 YY4 Y44 Y44 UUU UUU",
    "PATCH /v1/agreements/{agreement_id}": "PPP PPP FFF FFF FFF UUU UUU",
    "POST /v1/agreements/{agreement_id}/sign": "PPP PPP FFF PPP FFF UUU UUU",
    "POST /v1/agreements/{agreement_id}/activate": "PPP PPP FFF FFF FFF UUU UUU",
    "POST /v1/agreements/{agreement_id}/suspend": "PPP PPP FFF FFF FFF UUU UUU",
    "POST /v1/agreements/{agreement_id}/resume": "PPP PPP FFF FFF FFF UUU UUU",
    "POST /v1/agreements/{agreement_id}/terminate": "PPP PPP FFF FFF FFF UUU UUU",
    "GET /v1/agreements/{agreement_id}/deployments": "YYY YY4 YY4 Y44 Y44 UUU UUU",
    "POST /v1/agreements/{agreement_id}/deployments": "PPP PPP FFF FFF FFF UUU UUU",
    # No deployment exists in this world: every key that passes the checks gets 404.
    "GET /v1/agreements/{agreement_id}/deployments/{deployment_id}": (
        "444 444 444 444 444 UUU UUU"
    ),
    "POST /v1/agreements/{agreement_id}/deployments/{deployment_id}/end": (
        "PPP PPP FFF FFF FFF UUU UUU"
    ),
    # Scenarios: national ones for everyone, an ICS's own for its keys (and global keys).
    "GET /v1/scenarios": "YYY YYY YYY YYY YYY UUU UUU",
    "GET /v1/scenarios/schema": "YYY YYY YYY YYY YYY UUU UUU",
    "POST /v1/scenarios": "PPP PPP FFF FFF FFF UUU UUU",
    "GET /v1/scenarios/{name}": "YYY YY4 YY4 444 444 UUU UUU",
    "PUT /v1/scenarios/{name}": "PPP PPP FFF FFF FFF UUU UUU",
    "GET /v1/scenarios/{name}/versions": "YYY YY4 YY4 444 444 UUU UUU",
    # Projection runs: an ICS key sees its ICS's runs and England's; organisation keys none.
    "GET /v1/projections": "YYY YYY YYY YYY YYY UUU UUU",
    "POST /v1/projections": "PPP PPP FFF FFF FFF UUU UUU",
    "GET /v1/projections/compare": "PPP PPP PPP PPP PPP UUU UUU",
    "GET /v1/projections/{run_id}": "YYY YY4 YY4 444 444 UUU UUU",
    "GET /v1/projections/{run_id}/results": "YYY YY4 YY4 444 444 UUU UUU",
    # The world's runs have no results to draw: a reachable chart answers 404 results_not_found.
    "GET /v1/projections/{run_id}/chart.svg": "PPP PP4 PP4 444 444 UUU UUU",
    "GET /v1/projections/{run_id}/chart.png": "PPP PP4 PP4 444 444 UUU UUU",
    "GET /v1/projections/{run_id}/export": "YYY YY4 YY4 444 444 UUU UUU",
    "GET /v1/projections/{run_id}/fingerprint": "YYY YY4 YY4 444 444 UUU UUU",
    "GET /v1/projections/{run_id}/explain": "PP4 PP4 PP4 444 444 UUU UUU",
    # Webhooks: admin keys manage their ICS's subscriptions and its organisations'.
    "GET /v1/webhooks": "YYY YYY FFF FFF FFF UUU UUU",
    "POST /v1/webhooks": "PPP PPP FFF FFF FFF UUU UUU",
    "GET /v1/webhooks/{webhook_id}": "YYY YY4 FFF FFF FFF UUU UUU",
    "PATCH /v1/webhooks/{webhook_id}": "PPP PPP FFF FFF FFF UUU UUU",
    "DELETE /v1/webhooks/{webhook_id}": "PPP PPP FFF FFF FFF UUU UUU",
    "POST /v1/webhooks/{webhook_id}/rotate-secret": "PPP PPP FFF FFF FFF UUU UUU",
    "GET /v1/webhooks/{webhook_id}/deliveries": "YYY YY4 FFF FFF FFF UUU UUU",
    # No delivery exists in this world: every key that passes the checks gets 404.
    "POST /v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver": (
        "444 444 FFF FFF FFF UUU UUU"
    ),
}

# A list and the read whose visibility it must match: (list, read, field naming the item).
LISTS = [
    ("GET /v1/organisations", "GET /v1/organisations/{organisation_id}", "organisation_id", "id"),
    ("GET /v1/agreements", "GET /v1/agreements/{agreement_id}", "agreement_id", "id"),
    ("GET /v1/scenarios", "GET /v1/scenarios/{name}", "name", "name"),
    ("GET /v1/projections", "GET /v1/projections/{run_id}", "run_id", "id"),
    ("GET /v1/webhooks", "GET /v1/webhooks/{webhook_id}", "webhook_id", "id"),
    (
        "GET /v1/organisations/{organisation_id}/returns",
        "GET /v1/returns/{return_id}",
        "return_id",
        "id",
    ),
]
# Filters that must not widen a list: (list with a filter, read, parameter, field).
FILTERED = [
    ("GET /v1/agreements?ics_code=" + ICB_B, "GET /v1/agreements/{agreement_id}", "agreement_id"),
    ("GET /v1/organisations?ics_code=" + ICB_B, "GET /v1/organisations/{organisation_id}", None),
    ("GET /v1/projections?ics_code=" + ICB_B, "GET /v1/projections/{run_id}", "run_id"),
]


@pytest.fixture
async def app(database_url: str, db: object) -> AsyncIterator[FastAPI]:
    """The API without rate limits: the matrix sends hundreds of requests a minute."""
    application = create_app(settings_for(database_url, rate_limit_enabled=False))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sees a 500 as an answer (a mismatch), not as an exception."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def operations(document: dict[str, Any]) -> list[str]:
    return [
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]


def test_every_operation_has_a_row(app_document: dict[str, Any]) -> None:
    documented = set(operations(app_document))
    assert sorted(documented - MATRIX.keys()) == [], "operations without an access row"
    assert sorted(MATRIX.keys() - documented) == [], "rows for operations that do not exist"
    for operation, row in MATRIX.items():
        groups = row.split()
        assert len(groups) == len(KINDS), operation
        assert all(len(g) == len(TARGETS) and set(g) <= set("Y4FUP") for g in groups), operation


@pytest.fixture(scope="module")
def app_document() -> dict[str, Any]:
    from shared.config import Settings

    document: dict[str, Any] = create_app(Settings(_env_file=None)).openapi()
    return document


def _url(world: World, operation: str, target: str) -> tuple[str, str]:
    method, path = operation.split(" ", 1)
    while "{" in path:
        start = path.index("{")
        end = path.index("}", start)
        name = path[start + 1 : end]
        path = path[:start] + world.value(operation, name, target) + path[end + 1 :]
    return method, path


def _outcome(status: int) -> str:
    if status >= 500:
        return "5"
    return {401: "U", 403: "F", 404: "4"}.get(status, "Y")


def _agrees(expected: str, got: str) -> bool:
    if expected == "P":
        return got in ("Y", "4")
    return expected == got


async def test_access_matrix(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    seeded_roles: list[str],
) -> None:
    world = await build_world(client, make_key, sessionmaker)
    document = app.openapi()
    ordered = sorted(operations(document), key=lambda op: op.split(" ", 1)[0] != "GET")
    mismatches: list[str] = []
    for operation in ordered:
        groups = MATRIX[operation].split()
        for kind, group in zip(KINDS, groups, strict=True):
            for target, expected in zip(TARGETS, group, strict=True):
                method, url = _url(world, operation, target)
                response = await client.request(method, url, headers=world.keys[kind])
                got = _outcome(response.status_code)
                if not _agrees(expected, got):
                    mismatches.append(
                        f"{operation} [{kind}, {target}] expected {expected}, got "
                        f"{response.status_code} {response.text[:120]}"
                    )
    assert not mismatches, f"{len(mismatches)} cells differ:\n" + "\n".join(mismatches)


async def test_lists_show_exactly_what_their_reads_show(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    seeded_roles: list[str],
) -> None:
    world = await build_world(client, make_key, sessionmaker)
    problems: list[str] = []
    for list_op, read_op, param, field in LISTS:
        for kind in KINDS[:5]:
            if MATRIX[list_op].split()[KINDS.index(kind)][0] != "Y":
                continue
            readable = {
                world.params[param][target]
                for target, outcome in zip(
                    TARGETS, MATRIX[read_op].split()[KINDS.index(kind)], strict=True
                )
                if outcome == "Y"
            }
            every = set(world.params[param].values())
            for target in TARGETS if "{" in list_op else ("own",):
                method, url = _url(world, list_op, target)
                response = await client.request(
                    method, url + "?limit=500", headers=world.keys[kind]
                )
                if response.status_code != 200:
                    continue
                body = response.json()
                items = body["items"] if isinstance(body, dict) else body
                shown = {str(item[field]) for item in items} & every
                if "{" in list_op:
                    # A nested list (an organisation's returns) shows no more than the reads.
                    if shown - readable:
                        problems.append(f"{list_op} [{kind}, {target}] shows {shown - readable}")
                elif shown != readable:
                    problems.append(
                        f"{list_op} [{kind}] shows {sorted(shown)}, its read shows "
                        f"{sorted(readable)}"
                    )
    for filtered_op, read_op, filter_param in FILTERED:
        for kind in KINDS[:5]:
            method, url = filtered_op.split(" ", 1)
            response = await client.request(method, url, headers=world.keys[kind])
            assert response.status_code in (200, 422), (filtered_op, kind, response.text)
            if response.status_code != 200 or filter_param is None:
                continue
            items = response.json()["items"]
            readable = {
                world.params[filter_param][target]
                for target, outcome in zip(
                    TARGETS, MATRIX[read_op].split()[KINDS.index(kind)], strict=True
                )
                if outcome == "Y"
            }
            every = set(world.params[filter_param].values())
            shown = {str(item["id"]) for item in items} & every
            if shown - readable:
                problems.append(f"{filtered_op} [{kind}] shows {shown - readable}")
    assert not problems, "\n".join(problems)
