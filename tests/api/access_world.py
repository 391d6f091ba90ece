"""The world the access tests run in: five organisations (A1, A2, A3 in ICS A; B1, B2 in
ICS B), a key of each kind, and one of everything a key may or may not see, made through the
API where it can be (runs and imports are written directly: nothing computes in these tests).

Targets: `own` (A1's, or ICS A's where the resource belongs to an ICS), `same` (A2's; ICS A's
again for ICS-owned resources) and `other` (B1's or ICS B's).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.session import transaction
from shared.models import ImportStatus, ProjectionRun, ReturnImport, RunStatus, Scenario
from tests.api.returns.helpers import line
from tests.factories import (
    ICB_A,
    ICB_B,
    LAD_A1,
    LAD_A2,
    LAD_B1,
    LAD_B2,
    ensure_small_geography,
    make_organisation,
)
from tests.helpers import KeyFactory


class World:
    """Three organisations in ICS A (A1 the keys' own), two in ICS B, and one of everything."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, str]] = {}
        self.params: dict[str, dict[str, str]] = {}

    def value(self, operation: str, name: str, target: str) -> str:
        if name == "code":
            if operation.startswith("GET /problems/"):
                return "rate_limited"
            if "/roles/" in operation:
                return "care-worker"
            return {"own": LAD_A1, "same": LAD_A2, "other": LAD_B1}[target]
        if name in ("deployment_id", "delivery_id"):
            return str(uuid.UUID(int=7))
        return self.params[name][target]


async def post_json(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code in (200, 201, 202), (path, response.text)
    result: dict[str, Any] = response.json()
    return result


async def build_world(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> World:
    world = World()
    await ensure_small_geography(sessionmaker)
    opened = date(2010, 1, 1)
    a1 = await make_organisation(sessionmaker, name="A1", ods_code="AAA1", opened_on=opened)
    a2 = await make_organisation(
        sessionmaker, name="A2", ods_code="AAA2", home_lad_code=LAD_A2, opened_on=opened
    )
    a3 = await make_organisation(sessionmaker, name="A3", ods_code="AAA3", opened_on=opened)
    b1 = await make_organisation(
        sessionmaker, name="B1", ods_code="BBB1", home_lad_code=LAD_B1, ics_code=ICB_B,
        opened_on=opened,
    )  # fmt: skip
    b2 = await make_organisation(
        sessionmaker, name="B2", ods_code="BBB2", home_lad_code=LAD_B2, ics_code=ICB_B,
        opened_on=opened,
    )  # fmt: skip
    k = world.keys
    k["global_admin"] = await make_key("admin", name="global-admin")
    k["ics_admin"] = await make_key("admin", ics_code=ICB_A, name="ics-admin")
    k["ics_read"] = await make_key("read", ics_code=ICB_A, name="ics-read")
    k["org_submit"] = await make_key("submit", organisation_id=a1.id, name="org-submit")
    k["org_read"] = await make_key("read", organisation_id=a1.id, name="org-read")
    k["revoked"] = await make_key("admin", ics_code=ICB_A, name="revoked")
    k["none"] = {}
    admin = k["global_admin"]
    me = (await client.get("/v1/keys/me", headers=k["revoked"])).json()
    assert (await client.delete(f"/v1/keys/{me['key_id']}", headers=admin)).status_code == 204

    returns = {}
    for target, organisation in (("own", a1), ("same", a2), ("other", b1)):
        body = {"as_at": "2025-03-31", "lines": [line()]}
        created = await post_json(
            client, f"/v1/organisations/{organisation.id}/returns", admin, body
        )
        returns[target] = created["id"]
    agreements = {}
    for target, ics, parties in (
        ("own", ICB_A, (a1, a2)),
        ("same", ICB_A, (a2, a3)),
        ("other", ICB_B, (b1, b2)),
    ):
        body = {
            "title": f"Agreement {target}",
            "ics_code": ics,
            "mode": "both",
            "start_date": "2025-01-01",
            "end_date": "2027-12-31",
            "parties": [{"organisation_id": str(p.id)} for p in parties],
            "scope": [
                {"role_code": "care-worker", "lending_organisation_id": str(parties[0].id),
                 "fte_cap": 2}
            ],
        }  # fmt: skip
        agreements[target] = (await post_json(client, "/v1/agreements", admin, body))["id"]
    for name, ics in (("plan-a", ICB_A), ("plan-b", ICB_B)):
        await post_json(
            client,
            "/v1/scenarios",
            admin,
            {"name": name, "title": name, "ics_code": ics, "parameters": {}},
        )
    key_targets = {}
    for target, binding in (
        ("own", {"ics_code": ICB_A}),
        ("same", {"organisation_id": str(a2.id)}),
        ("other", {"ics_code": ICB_B}),
    ):
        body = {"name": f"target-{target}", "scope": "read", **binding}
        key_targets[target] = (await post_json(client, "/v1/keys", admin, body))["id"]
    webhooks = {}
    for target, owner in (
        ("own", {"ics_code": ICB_A}),
        ("same", {"organisation_id": str(a2.id)}),
        ("other", {"ics_code": ICB_B}),
    ):
        body = {"url": "https://8.8.8.8/hook", "event_types": ["projection.succeeded"], **owner}
        webhooks[target] = (await post_json(client, "/v1/webhooks", admin, body))["id"]
    runs, imports = {}, {}
    async with transaction(sessionmaker) as session:
        scenario = (await session.execute(Scenario.__table__.select().limit(1))).first()
        assert scenario is not None
        for ics in (ICB_A, ICB_B):
            run = ProjectionRun(
                scenario_id=scenario.id,
                scenario_name=scenario.name,
                scenario_version=1,
                scope=ics,
                ics_code=ics,
                base_year=2025,
                horizon=2030,
                iterations=10,
                seed=1,
                status=RunStatus.succeeded,
                progress=1.0,
            )
            imported = ReturnImport(status=ImportStatus.failed, ics_code=ics)
            session.add_all([run, imported])
            await session.flush()
            runs[ics], imports[ics] = str(run.id), str(imported.id)
    world.params = {
        "organisation_id": {"own": str(a1.id), "same": str(a2.id), "other": str(b1.id)},
        "return_id": returns,
        "agreement_id": agreements,
        "name": {"own": "plan-a", "same": "plan-a", "other": "plan-b"},
        "run_id": {"own": runs[ICB_A], "same": runs[ICB_A], "other": runs[ICB_B]},
        "import_id": {"own": imports[ICB_A], "same": imports[ICB_A], "other": imports[ICB_B]},
        "key_id": key_targets,
        "webhook_id": webhooks,
    }
    return world
