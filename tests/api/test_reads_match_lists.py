"""Each domain builds what a key may see in one readable statement, and its reads and its lists
both start from it: generated over every domain and several kinds of key, what a key can read
one by one is exactly what its lists show it (every page, with a total that agrees), never
more and never less.

The items are everything the global admin's lists show; every other key then lists and reads
each of them. Keys are read by revoking them again: 409 `key_already_revoked` for a key the
admin manages, 404 for one it does not (nothing changes either way). The audit trail, which has
no read of one event, shows exactly the events of the keys the key list shows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api import deps
from services.api.main import create_app
from shared.db.session import transaction
from shared.models import ENGLAND_CODE, ProjectionRun, RunStatus, Scenario
from tests.api.access_world import World, build_world, post_json
from tests.api.returns.helpers import line
from tests.factories import ICB_A, ICB_B
from tests.helpers import KeyFactory, settings_for

# Inside the world's agreements (2025 to 2027), so they can be signed and staff deployed.
TODAY = date(2026, 6, 1)
Headers = dict[str, str]


@pytest.fixture
async def app(database_url: str, db: object) -> AsyncIterator[FastAPI]:
    """The API without rate limits (the check sends hundreds of requests), on a fixed day."""
    application = create_app(settings_for(database_url, rate_limit_enabled=False))
    application.dependency_overrides[deps.today] = lambda: TODAY
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sees a 500 as an answer (a mismatch), not as an exception."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@dataclass(frozen=True)
class Domain:
    """A domain's lists and the read of one item found in them."""

    name: str
    # The list URLs to page through, given the items of the domains checked before.
    lists: Callable[[dict[str, set[str]]], list[str]]
    # The read of an item, from the list it was found in and the item itself.
    read: Callable[[str, dict[str, Any]], str]
    method: str = "GET"
    # The read's status for an item the key sees (any other status: it does not).
    seen: int = 200
    # Which listed items take part (keys: the revoked ones, whose read changes nothing).
    keep: Callable[[dict[str, Any]], bool] = field(default=lambda item: True)


def _ids(name: str) -> Callable[[dict[str, set[str]]], set[str]]:
    def ids(found: dict[str, set[str]]) -> set[str]:
        return {url.rsplit("/", 1)[1] for url in found[name]}

    return ids


ORGANISATION_IDS = _ids("organisations")
AGREEMENT_IDS = _ids("agreements")

DOMAINS = [
    Domain(
        "organisations",
        lambda found: ["/v1/organisations"],
        lambda _, item: f"/v1/organisations/{item['id']}",
    ),
    Domain(
        "returns",
        lambda found: [
            f"/v1/organisations/{o}/returns?history=true" for o in sorted(ORGANISATION_IDS(found))
        ],
        lambda _, item: f"/v1/returns/{item['id']}",
    ),
    Domain(
        "agreements",
        lambda found: ["/v1/agreements"],
        lambda _, item: f"/v1/agreements/{item['id']}",
    ),
    Domain(
        "organisation agreements",
        lambda found: [
            f"/v1/organisations/{o}/agreements" for o in sorted(ORGANISATION_IDS(found))
        ],
        lambda _, item: f"/v1/agreements/{item['id']}",
    ),
    Domain(
        "deployments",
        lambda found: [f"/v1/agreements/{a}/deployments" for a in sorted(AGREEMENT_IDS(found))],
        lambda listed, item: f"{listed}/{item['id']}",
    ),
    Domain(
        "scenarios",
        lambda found: ["/v1/scenarios"],
        lambda _, item: f"/v1/scenarios/{item['name']}",
    ),
    Domain(
        "projection runs",
        lambda found: ["/v1/projections"],
        lambda _, item: f"/v1/projections/{item['id']}",
    ),
    Domain(
        "webhooks", lambda found: ["/v1/webhooks"], lambda _, item: f"/v1/webhooks/{item['id']}"
    ),
    Domain(
        "keys",
        lambda found: ["/v1/keys"],
        lambda _, item: f"/v1/keys/{item['id']}",
        method="DELETE",
        seen=409,
        keep=lambda item: item["revoked_at"] is not None,
    ),
]


async def listed(
    client: httpx.AsyncClient, domain: Domain, found: dict[str, set[str]], headers: Headers
) -> set[str]:
    """The reads of every item the key's lists show, over all their pages; a list the key may
    not open (403 or 404) shows nothing."""
    reads: set[str] = set()
    for url in domain.lists(found):
        page, seen_here, total = 1, 0, None
        while True:
            joiner = "&" if "?" in url else "?"
            response = await client.get(f"{url}{joiner}page={page}&limit=2", headers=headers)
            if response.status_code in (403, 404):
                break
            assert response.status_code == 200, (url, response.text)
            body = response.json()
            total = body["total"]
            seen_here += len(body["items"])
            reads |= {domain.read(url.split("?")[0], i) for i in body["items"] if domain.keep(i)}
            if not body["items"]:
                break
            page += 1
        assert total in (None, seen_here), f"{url}: total {total}, {seen_here} items listed"
    return reads


async def readable(
    client: httpx.AsyncClient, domain: Domain, reads: set[str], headers: Headers
) -> set[str]:
    """The reads, among all, that answer the key as seen."""
    seen: set[str] = set()
    for url in sorted(reads):
        response = await client.request(domain.method, url, headers=headers)
        assert response.status_code < 500, (url, response.text)
        if response.status_code == domain.seen:
            seen.add(url)
    return seen


async def add_to_world(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    world: World,
) -> dict[str, Headers]:
    """More kinds of key, a deployment in each ICS, an England run, and revoked keys of every
    binding; the kinds of key to check."""
    organisations = world.params["organisation_id"]
    b1 = organisations["other"]
    keys = {kind: world.keys[kind] for kind in ("global_admin", "ics_admin", "ics_read")}
    keys |= {kind: world.keys[kind] for kind in ("org_submit", "org_read")}
    keys["global_read"] = await make_key("read", name="global-read")
    keys["ics_b_admin"] = await make_key("admin", ics_code=ICB_B, name="ics-b-admin")
    keys["org_b_submit"] = await make_key("submit", organisation_id=b1, name="org-b-submit")
    admin = keys["global_admin"]
    for target in ("own", "other"):
        agreement_id = world.params["agreement_id"][target]
        agreement = (await client.get(f"/v1/agreements/{agreement_id}", headers=admin)).json()
        for party in agreement["parties"]:
            etag = (await client.get(f"/v1/agreements/{agreement_id}", headers=admin)).headers[
                "etag"
            ]
            signed = await client.post(
                f"/v1/agreements/{agreement_id}/sign",
                json={
                    "organisation_id": party["organisation_id"],
                    "signatory_name": "Signer",
                    "signatory_role": "Chief executive",
                },
                headers={**admin, "If-Match": etag},
            )
            assert signed.status_code == 200, signed.text
        lender, borrower = (party["organisation_id"] for party in agreement["parties"])
        body = {
            "from_organisation_id": lender,
            "to_organisation_id": borrower,
            "role_code": "care-worker",
            "fte": 1,
            "start_date": TODAY.isoformat(),
            "end_date": (TODAY + timedelta(days=30)).isoformat(),
            "reason": "Winter pressures",
        }
        await post_json(client, f"/v1/agreements/{agreement_id}/deployments", admin, body)
    # Keys of every binding, made by the admins of each ICS (so the audit trail has actors on
    # both sides) and revoked by the global admin.
    for name, maker, binding in (
        ("revoked-global", "global_admin", {}),
        ("revoked-ics-a", "ics_admin", {"ics_code": ICB_A}),
        ("revoked-a2", "ics_admin", {"organisation_id": organisations["same"]}),
        ("revoked-ics-b", "ics_b_admin", {"ics_code": ICB_B}),
        ("revoked-b1", "ics_b_admin", {"organisation_id": b1}),
    ):
        body = {"name": name, "scope": "read", **binding}
        created = await post_json(client, "/v1/keys", keys[maker], body)
        assert (await client.delete(f"/v1/keys/{created['id']}", headers=admin)).status_code == 204
    # A return from each ICS's partner, by its own key.
    for kind, organisation_id in (("org_submit", organisations["own"]), ("org_b_submit", b1)):
        body = {"as_at": "2024-03-31", "lines": [line()]}
        path = f"/v1/organisations/{organisation_id}/returns"
        await post_json(client, path, keys[kind], body)
    async with transaction(sessionmaker) as session:
        scenario = (await session.execute(Scenario.__table__.select().limit(1))).first()
        assert scenario is not None
        session.add(
            ProjectionRun(
                scenario_id=scenario.id,
                scenario_name=scenario.name,
                scenario_version=1,
                scope=ENGLAND_CODE,
                ics_code=None,
                base_year=2025,
                horizon=2030,
                iterations=10,
                seed=1,
                status=RunStatus.succeeded,
                progress=1.0,
            )
        )
    return keys


async def pages(
    client: httpx.AsyncClient, url: str, headers: Headers
) -> list[dict[str, Any]] | None:
    """Every item of a list over all its pages (None: the key may not open it)."""
    items: list[dict[str, Any]] = []
    while True:
        response = await client.get(
            f"{url}?page={len(items) // 100 + 1}&limit=100", headers=headers
        )
        if response.status_code == 403:
            return None
        assert response.status_code == 200, response.text
        batch = response.json()["items"]
        items += batch
        if len(batch) < 100:
            return items


async def test_every_domain_reads_exactly_what_it_lists(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    seeded_roles: list[str],
) -> None:
    world = await build_world(client, make_key, sessionmaker)
    keys = await add_to_world(client, make_key, sessionmaker, world)
    found: dict[str, set[str]] = {}
    problems: list[str] = []
    for domain in DOMAINS:
        every = await listed(client, domain, found, keys["global_admin"])
        found[domain.name] = every
        assert every == await readable(client, domain, every, keys["global_admin"]), domain.name
        views = set()
        for kind, headers in keys.items():
            shown = await listed(client, domain, found, headers)
            read = await readable(client, domain, every, headers)
            if shown != read:
                problems.append(
                    f"{domain.name} [{kind}]: listed, not readable {sorted(shown - read)}; "
                    f"readable, not listed {sorted(read - shown)}"
                )
            views.add(frozenset(read))
        if len(views) <= 2:
            # The world is built so that keys differ in what they see: the check can fail.
            problems.append(f"{domain.name}: every kind of key reads much the same")
    # The audit trail: the events of exactly the keys the key list shows.
    every_event = await pages(client, "/v1/audit", keys["global_admin"])
    assert every_event is not None
    actors = {event["key_id"] for event in every_event if event["key_id"] is not None}
    for kind, headers in keys.items():
        events = await pages(client, "/v1/audit", headers)
        managed = await pages(client, "/v1/keys", headers)
        assert (events is None) == (managed is None), kind
        if events is None or managed is None:
            continue
        shown = {event["key_id"] for event in events if event["key_id"] is not None}
        expected = actors & {key["id"] for key in managed}
        if shown != expected:
            problems.append(f"audit [{kind}]: events of {sorted(shown)}, keys {sorted(expected)}")
    assert len(actors) >= 4, "the ICS admins and partner keys acted"
    assert not problems, "\n".join(problems)
