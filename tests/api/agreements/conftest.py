"""Fixtures for the agreement tests: a fixed clock, organisations in two ICSs, roles, keys and
helpers that drive an agreement through its lifecycle over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.api import deps
from services.api.keys import service as keys_service
from services.api.main import create_app
from shared.db.session import transaction
from shared.models import KeyScope, Organisation
from shared.schemas.keys import ApiKeyCreate
from tests.factories import (
    ICB_A,
    ICB_B,
    LAD_A2,
    LAD_B1,
    ensure_small_geography,
    make_organisation,
    make_role,
)
from tests.helpers import settings_for

TODAY = date(2027, 3, 1)
CARE_WORKER = "test-care-worker"
NURSE = "test-community-nurse"
UNUSED_ROLE = "test-health-coach"

Headers = dict[str, str]


@pytest.fixture(scope="session")
async def shared_app(database_url: str) -> AsyncIterator[FastAPI]:
    """One application per backend for these tests: starting one per test costs more than the
    tests themselves (a new engine recompiles every statement)."""
    application = create_app(settings_for(database_url))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def app(shared_app: FastAPI, db: AsyncEngine) -> Iterator[FastAPI]:
    yield shared_app
    shared_app.dependency_overrides.clear()


@dataclass
class Clock:
    """The API's idea of today; tests move it to see agreements start and expire."""

    today: date = TODAY


@pytest.fixture
def clock(app: FastAPI) -> Clock:
    current = Clock()
    app.dependency_overrides[deps.today] = lambda: current.today
    return current


@dataclass
class World:
    """Three organisations in ICS A, one in ICS B, roles, and keys bound in every way."""

    a1: Organisation
    a2: Organisation
    a3: Organisation
    b1: Organisation
    admin_a: Headers
    admin_b: Headers
    global_admin: Headers
    read_a: Headers
    read_global: Headers
    submit: dict[uuid.UUID, Headers] = field(default_factory=dict)
    read: dict[uuid.UUID, Headers] = field(default_factory=dict)


@pytest.fixture
async def world(
    sessionmaker: async_sessionmaker[AsyncSession], db: AsyncEngine, clock: Clock
) -> World:
    await ensure_small_geography(sessionmaker)
    a1 = await make_organisation(
        sessionmaker, name="Cheshire Care Ltd", ods_code="VN1A1", cqc_location_id="1-101234567"
    )
    a2 = await make_organisation(
        sessionmaker,
        name="Liverpool Community Trust",
        kind="nhs_trust",
        sector="health",
        home_lad_code=LAD_A2,
        ods_code="RA2",
    )
    a3 = await make_organisation(sessionmaker, name="Wirral Home Care")
    b1 = await make_organisation(
        sessionmaker, name="Hartlepool Care", home_lad_code=LAD_B1, ics_code=ICB_B
    )
    for code, name in (
        (CARE_WORKER, "Care worker"),
        (NURSE, "Community nurse"),
        (UNUSED_ROLE, "Health coach"),
    ):
        await make_role(sessionmaker, code, name=name)
    specs: dict[str, tuple[str, uuid.UUID | None, str | None]] = {
        "admin_a": ("admin", None, ICB_A),
        "admin_b": ("admin", None, ICB_B),
        "global_admin": ("admin", None, None),
        "read_a": ("read", None, ICB_A),
        "read_global": ("read", None, None),
        "read_a1": ("read", a1.id, None),
        **{f"submit_{o.id}": ("submit", o.id, None) for o in (a1, a2, a3, b1)},
    }
    keys: dict[str, Headers] = {}
    # One transaction for every key: these tests make many, and each commit costs.
    async with transaction(sessionmaker) as session:
        for name, (scope, organisation_id, ics_code) in specs.items():
            data = ApiKeyCreate(
                name=name, scope=KeyScope(scope), organisation_id=organisation_id, ics_code=ics_code
            )
            _, secret = await keys_service.create_key(
                session, data, actor="test", actor_key_id=None
            )
            keys[name] = {"Authorization": f"Bearer {secret}"}
    return World(
        a1=a1,
        a2=a2,
        a3=a3,
        b1=b1,
        admin_a=keys["admin_a"],
        admin_b=keys["admin_b"],
        global_admin=keys["global_admin"],
        read_a=keys["read_a"],
        read_global=keys["read_global"],
        submit={o.id: keys[f"submit_{o.id}"] for o in (a1, a2, a3, b1)},
        read={a1.id: keys["read_a1"]},
    )


def agreement_body(world: World, **overrides: Any) -> dict[str, Any]:
    """Parties a1 and a2; a1 lends up to 2 FTE of care workers and 1 of nurses, a2 1 FTE of
    care workers; in force from ten days ago for a year."""
    body: dict[str, Any] = {
        "title": "Cheshire and Merseyside mutual aid",
        "ics_code": ICB_A,
        "mode": "both",
        "start_date": (TODAY - timedelta(days=10)).isoformat(),
        "end_date": (TODAY + timedelta(days=365)).isoformat(),
        "governance": {
            "risk_share": "Costs follow the staff member",
            "indemnity": "Host indemnifies clinical work",
            "host_employer": "The lending organisation stays the employer",
        },
        "parties": [
            {"organisation_id": str(world.a1.id), "signatory_name": "A. Jones"},
            {"organisation_id": str(world.a2.id), "signatory_role": "Chief People Officer"},
        ],
        "scope": [
            {"role_code": CARE_WORKER, "lending_organisation_id": str(world.a1.id), "fte_cap": 2},
            {"role_code": NURSE, "lending_organisation_id": str(world.a1.id), "fte_cap": 1},
            {"role_code": CARE_WORKER, "lending_organisation_id": str(world.a2.id), "fte_cap": 1},
        ],
    }
    body.update(overrides)
    return body


@dataclass
class Api:
    """Small helpers over the client that keep each test about its rule."""

    client: httpx.AsyncClient
    world: World

    async def create(self, headers: Headers | None = None, **overrides: Any) -> httpx.Response:
        return await self.client.post(
            "/v1/agreements",
            json=agreement_body(self.world, **overrides),
            headers=headers or self.world.admin_a,
        )

    async def create_ok(self, **overrides: Any) -> dict[str, Any]:
        response = await self.create(**overrides)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def get(self, agreement_id: str, headers: Headers | None = None) -> httpx.Response:
        return await self.client.get(
            f"/v1/agreements/{agreement_id}", headers=headers or self.world.admin_a
        )

    async def etag(self, agreement_id: str) -> str:
        response = await self.get(agreement_id)
        assert response.status_code == 200, response.text
        return response.headers["etag"]

    async def act(
        self,
        agreement_id: str,
        action: str,
        *,
        headers: Headers | None = None,
        json: dict[str, Any] | None = None,
        etag: str | None = None,
    ) -> httpx.Response:
        """POST an action with a fresh If-Match unless one is given."""
        if_match = etag if etag is not None else await self.etag(agreement_id)
        return await self.client.post(
            f"/v1/agreements/{agreement_id}/{action}",
            json=json,
            headers={**(headers or self.world.admin_a), "If-Match": if_match},
        )

    async def patch(
        self,
        agreement_id: str,
        body: dict[str, Any],
        *,
        headers: Headers | None = None,
        etag: str | None = None,
    ) -> httpx.Response:
        if_match = etag if etag is not None else await self.etag(agreement_id)
        return await self.client.patch(
            f"/v1/agreements/{agreement_id}",
            json=body,
            headers={**(headers or self.world.admin_a), "If-Match": if_match},
        )

    async def sign(self, agreement_id: str, organisation: Organisation) -> httpx.Response:
        return await self.act(
            agreement_id,
            "sign",
            headers=self.world.submit[organisation.id],
            json={"signatory_name": f"Signer for {organisation.name}", "signatory_role": "CEO"},
        )

    async def active(self, **overrides: Any) -> dict[str, Any]:
        """A new agreement signed by both parties, so active."""
        created = await self.create_ok(**overrides)
        for organisation in (self.world.a1, self.world.a2):
            response = await self.sign(created["id"], organisation)
            assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["status"] == "active"
        return body

    async def deploy(
        self, agreement_id: str, *, headers: Headers | None = None, **overrides: Any
    ) -> httpx.Response:
        body: dict[str, Any] = {
            "from_organisation_id": str(self.world.a1.id),
            "to_organisation_id": str(self.world.a2.id),
            "role_code": CARE_WORKER,
            "fte": 1,
            "start_date": TODAY.isoformat(),
            "end_date": (TODAY + timedelta(days=30)).isoformat(),
            "reason": "Winter pressures at the trust",
        }
        body.update(overrides)
        return await self.client.post(
            f"/v1/agreements/{agreement_id}/deployments",
            json=body,
            headers=headers or self.world.admin_a,
        )


def errors_of(problem: dict[str, object]) -> list[dict[str, Any]]:
    """The `errors` list of a problem body, typed for the assertions."""
    return cast(list[dict[str, Any]], problem["errors"])


@pytest.fixture
def api(client: httpx.AsyncClient, world: World) -> Api:
    return Api(client=client, world=world)
