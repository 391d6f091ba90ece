"""import.succeeded and import.failed reach the ICSs that may hear of them:

- an import made with an ICS's key: that ICS, with the whole import (its key may read it);
- an import made with a global key (no ICS; only global keys may read it): each ICS whose
  organisations its lines name, with only its own part (its organisations, the returns stored
  for them or the problems on their lines) and no link to the import;
- never an organisation: organisations' keys read no imports (they hear return.accepted).
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.api.projections.helpers import AS_AT
from tests.api.returns.helpers import counts, line
from tests.api.returns.test_imports import bulk_csv
from tests.api.webhooks.receiver import Receiver, events_at, subscribe
from tests.factories import ICB_A, ICB_B, LAD_B1, ensure_small_geography, make_organisation
from tests.factories import make_role as make_role_row
from tests.helpers import KeyFactory

IMPORT_EVENTS = ["import.succeeded", "import.failed"]
OTHER_DATE = "2024-03-31"


async def _import(
    app: FastAPI, client: httpx.AsyncClient, body: bytes, key: dict[str, str], status: str
) -> dict[str, Any]:
    accepted = await client.post(
        "/v1/imports/returns", content=body, headers={**key, "Content-Type": "text/csv"}
    )
    assert accepted.status_code == 202, accepted.text
    await app.state.sender.join()
    result: dict[str, Any] = (await client.get(accepted.headers["location"], headers=key)).json()
    assert result["status"] == status, result
    await app.state.sender.join()
    return result


async def _setup(
    sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    receiver: Receiver,
) -> dict[str, Any]:
    await ensure_small_geography(sessionmaker)
    await make_role_row(sessionmaker, "care-worker")
    a1 = await make_organisation(sessionmaker, ods_code="RA1")
    a2 = await make_organisation(sessionmaker, ods_code="RA2")
    b1 = await make_organisation(sessionmaker, ods_code="RB1", home_lad_code=LAD_B1, ics_code=ICB_B)
    admin_a = await make_key("admin", ics_code=ICB_A)
    admin_b = await make_key("admin", ics_code=ICB_B)
    await subscribe(client, admin_a, receiver.url("/a"), IMPORT_EVENTS)
    await subscribe(client, admin_b, receiver.url("/b"), IMPORT_EVENTS)
    # An organisation's key reads no imports: its subscription hears of none.
    await subscribe(client, admin_a, receiver.url("/a1"), IMPORT_EVENTS, organisation_id=str(a1.id))
    return {"a1": a1, "a2": a2, "b1": b1, "admin_a": admin_a, "admin_b": admin_b}


async def test_an_ics_import_is_heard_whole_by_its_ics_only(
    hook_app: FastAPI,
    hook_client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    receiver: Receiver,
) -> None:
    world = await _setup(sessionmaker, hook_client, make_key, receiver)
    rows = [("RA1", AS_AT, line()), ("RA2", AS_AT, line()), ("RA2", OTHER_DATE, line())]
    result = await _import(hook_app, hook_client, bulk_csv(rows), world["admin_a"], "succeeded")

    [event] = events_at(receiver, "/a")
    assert event["type"] == "import.succeeded"
    assert event["data"] == {
        "import_id": result["id"],
        "ics_code": ICB_A,
        "global_import": False,
        "status": "succeeded",
        "return_count": 3,
        "links": {"import": f"/v1/imports/{result['id']}"},
    }
    assert receiver.at("/b") == []
    assert receiver.at("/a1") == []


async def test_a_global_import_is_heard_by_each_ics_it_touches_with_its_own_part(
    hook_app: FastAPI,
    hook_client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    receiver: Receiver,
) -> None:
    world = await _setup(sessionmaker, hook_client, make_key, receiver)
    importer = await make_key("admin")
    # Only ICS A's organisations: ICS B hears nothing.
    only_a = [("RA1", AS_AT, line()), ("RA2", AS_AT, line()), ("RA2", OTHER_DATE, line())]
    first = await _import(hook_app, hook_client, bulk_csv(only_a), importer, "succeeded")
    assert receiver.at("/b") == []
    [heard] = events_at(receiver, "/a")
    assert heard["type"] == "import.succeeded"
    assert heard["data"] == {
        "import_id": first["id"],
        "ics_code": ICB_A,
        "global_import": True,
        "status": "succeeded",
        "organisation_ids": sorted([str(world["a1"].id), str(world["a2"].id)]),
        "return_count": 3,
        "links": {"workforce": f"/v1/areas/{ICB_A}/workforce"},
    }
    # The import itself is not the ICS's to read; its link is.
    assert (
        await hook_client.get(f"/v1/imports/{first['id']}", headers=world["admin_a"])
    ).status_code == 404
    workforce = await hook_client.get(heard["data"]["links"]["workforce"], headers=world["admin_a"])
    assert workforce.status_code == 200, workforce.text

    # Both ICSs: each hears of its own organisations and returns, never the other's.
    both = [("RA1", OTHER_DATE, line()), ("RB1", AS_AT, line()), ("RB1", OTHER_DATE, line())]
    second = await _import(hook_app, hook_client, bulk_csv(both), importer, "succeeded")
    assert second["return_count"] == 3
    later = [e for e in events_at(receiver, "/a") if e["data"]["import_id"] == second["id"]]
    assert [(e["data"]["organisation_ids"], e["data"]["return_count"]) for e in later] == [
        ([str(world["a1"].id)], 1)
    ]
    [of_b] = events_at(receiver, "/b")
    assert of_b["data"]["import_id"] == second["id"]
    assert of_b["data"]["ics_code"] == ICB_B
    assert (of_b["data"]["organisation_ids"], of_b["data"]["return_count"]) == (
        [str(world["b1"].id)],
        2,
    )
    assert receiver.at("/a1") == []


async def test_a_failed_global_import_tells_each_ics_of_the_problems_on_its_lines(
    hook_app: FastAPI,
    hook_client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    receiver: Receiver,
) -> None:
    world = await _setup(sessionmaker, hook_client, make_key, receiver)
    importer = await make_key("admin")
    bad = line(fte_in_post=400)  # far above the headcount
    rows = [
        ("RA1", AS_AT, bad),
        ("RA2", AS_AT, bad),
        ("RB1", AS_AT, line()),
        ("NOSUCH", AS_AT, line()),  # names no organisation: nobody's
    ]
    result = await _import(hook_app, hook_client, bulk_csv(rows), importer, "failed")
    assert await counts(sessionmaker) == (0, 0, 0)  # nothing stored, staging cleared
    on_a = [e for e in result["errors"] if e.get("organisation_code") in ("RA1", "RA2")]
    assert len(on_a) >= 2

    [of_a] = events_at(receiver, "/a")
    assert of_a["type"] == "import.failed"
    assert of_a["data"] == {
        "import_id": result["id"],
        "ics_code": ICB_A,
        "global_import": True,
        "status": "failed",
        "organisation_ids": sorted([str(world["a1"].id), str(world["a2"].id)]),
        "error_count": len(on_a),
        "links": {"workforce": f"/v1/areas/{ICB_A}/workforce"},
    }
    [of_b] = events_at(receiver, "/b")
    assert of_b["type"] == "import.failed"
    assert of_b["data"]["organisation_ids"] == [str(world["b1"].id)]
    assert of_b["data"]["error_count"] == 0  # its lines were fine; the import still failed
    assert receiver.at("/a1") == []
