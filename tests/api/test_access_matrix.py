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
Writes are also checked for effect: a write answered 4xx (refused, or bad input) leaves every
table as it was, row for row (see `Tables`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.api.main import create_app
from shared.db.base import Base
from tests.api.access_world import World, build_world
from tests.conftest import KEEP_TABLES
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


# Columns a request changes without writing anything for its caller: when a key was last used.
VOLATILE_COLUMNS = frozenset({("api_keys", "last_used_at")})


Snapshot = dict[str, tuple[int, str | None]]


class Tables:
    """Every table's row count and a digest of its rows, read in one statement: two equal
    snapshots mean no row was added, removed or changed in between (reference data aside)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        selects = []
        for table in Base.metadata.sorted_tables:
            if table.name in KEEP_TABLES:
                continue
            columns = [
                f'"{column.name}"'
                for column in table.columns
                if (table.name, column.name) not in VOLATILE_COLUMNS
            ]
            if engine.dialect.name == "postgresql":
                row = f"md5(ROW({', '.join(columns)})::text)"
                digest = f"md5(coalesce(string_agg({row}, '' ORDER BY {row}), ''))"
            else:
                # SQLite has no digest function: the rows themselves, compared in Python.
                row = " || ',' || ".join(f"quote({column})" for column in columns)
                digest = f"group_concat({row}, ';')"
            selects.append(f"SELECT '{table.name}', count(*), {digest} FROM {table.name}")
        self.statement = text(" UNION ALL ".join(selects))

    async def snapshot(self) -> Snapshot:
        async with self.engine.connect() as connection:
            rows = (await connection.execute(self.statement)).all()
        return {str(name): (int(count), digest) for name, count, digest in rows}


class WriteEffects:
    """Checks that writes answered 4xx change nothing, with as few snapshots as that needs.

    A cell the matrix expects to be refused (F, 4, U) is not snapshotted on its own: a run of
    them is checked as one, from the snapshot before the first to the one before the next
    cell that may write (a P cell) or the end. A P cell is snapshotted before and after, since
    it may change the tables (and a P answered 4xx must not)."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.before: Snapshot | None = None
        self.refused: list[str] = []  # the run of cells since `before`
        self.problems: list[str] = []

    async def check(self) -> None:
        """Compare the tables with `before`, for the run of refused cells since it."""
        if self.before is None:
            self.before = await self.tables.snapshot()
            return
        if not self.refused:
            return
        after = await self.tables.snapshot()
        self._compare(self.refused, after)
        self.before, self.refused = after, []

    def expect_refused(self, cell: str, status: int) -> None:
        self.refused.append(f"{cell} ({status})")

    async def after_write(self, cell: str, status: int) -> None:
        after = await self.tables.snapshot()
        if 400 <= status < 500:
            self._compare([f"{cell} ({status})"], after)
        # A cell expected refused that wrote is a mismatch already; the run before it is
        # then checked no further.
        self.before, self.refused = after, []

    def _compare(self, cells: list[str], after: Snapshot) -> None:
        assert self.before is not None
        changed = [
            f"{name} ({self.before[name][0]} -> {after[name][0]} rows)"
            for name in self.before
            if self.before[name] != after[name]
        ]
        if changed:
            shown = ", ".join(cells[:6]) + (f" and {len(cells) - 6} more" if len(cells) > 6 else "")
            self.problems.append(f"a write answered 4xx changed {', '.join(changed)}: {shown}")


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
    db: AsyncEngine,
    seeded_roles: list[str],
) -> None:
    world = await build_world(client, make_key, sessionmaker)
    document = app.openapi()
    # Reads first, then writes: no read runs between two writes WriteEffects compares.
    ordered = sorted(operations(document), key=lambda op: op.split(" ", 1)[0] != "GET")
    effects = WriteEffects(Tables(db))
    mismatches: list[str] = []
    for operation in ordered:
        groups = MATRIX[operation].split()
        for kind, group in zip(KINDS, groups, strict=True):
            for target, expected in zip(TARGETS, group, strict=True):
                method, url = _url(world, operation, target)
                refused = expected in "F4U"
                if method != "GET" and (not refused or effects.before is None):
                    await effects.check()
                response = await client.request(method, url, headers=world.keys[kind])
                got = _outcome(response.status_code)
                cell = f"{operation} [{kind}, {target}]"
                if not _agrees(expected, got):
                    mismatches.append(
                        f"{cell} expected {expected}, got "
                        f"{response.status_code} {response.text[:120]}"
                    )
                if method == "GET":
                    continue
                if refused and 400 <= response.status_code < 500:
                    effects.expect_refused(cell, response.status_code)
                else:
                    await effects.after_write(cell, response.status_code)
    await effects.check()
    mismatches.extend(effects.problems)
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
