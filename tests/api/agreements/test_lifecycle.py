"""The agreement lifecycle: signing, activation, suspension, changes that need every party to
sign again, termination, expiry read from the date, refused transitions, and If-Match."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.models import AuditEvent
from tests.api.agreements.conftest import CARE_WORKER, TODAY, Api, Clock, errors_of
from tests.helpers import assert_problem


async def _audit_actions(
    sessionmaker: async_sessionmaker[AsyncSession], resource_id: str
) -> list[str]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(AuditEvent.action)
            .where(AuditEvent.resource_id == resource_id)
            .order_by(AuditEvent.at, AuditEvent.id)
        )
        return list(rows.scalars().all())


async def test_the_whole_lifecycle(
    api: Api, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    world = api.world
    created = await api.create(headers=world.admin_a)
    assert created.status_code == 201, created.text
    agreement = created.json()
    agreement_id = agreement["id"]
    assert created.headers["location"] == f"/v1/agreements/{agreement_id}"
    assert created.headers["etag"]
    assert (agreement["status"], agreement["version"], agreement["fully_signed"]) == (
        "draft",
        1,
        False,
    )
    assert [p["organisation_name"] for p in agreement["parties"]] == [
        "Cheshire Care Ltd",
        "Liverpool Community Trust",
    ]

    first = await api.sign(agreement_id, world.a1)
    assert first.status_code == 200, first.text
    signed = first.json()
    assert signed["status"] == "draft"
    assert signed["version"] == 2
    party = signed["parties"][0]
    assert party["signed_at"] is not None
    assert party["signed_on_behalf"] is False
    assert party["signatory_name"] == "Signer for Cheshire Care Ltd"
    assert first.headers["etag"] != created.headers["etag"]

    # The start date has come, so the last signature puts the agreement in force.
    second = await api.sign(agreement_id, world.a2)
    assert second.json()["status"] == "active"
    assert second.json()["fully_signed"] is True
    assert second.json()["activated_at"] is not None
    assert (await api.deploy(agreement_id)).status_code == 201

    suspended = await api.act(agreement_id, "suspend", json={"reason": "Under review"})
    assert suspended.json()["status"] == "suspended"
    assert suspended.json()["suspended_at"] is not None
    resumed = await api.act(agreement_id, "resume")
    assert resumed.json()["status"] == "active"
    assert resumed.json()["suspended_at"] is None

    # New scope: every party must sign again, and no deployments until they have.
    scope = [*agreement_body_scope(api), _scope(api, "a3", cap=1)]
    parties = [*agreement["parties"], {"organisation_id": str(world.a3.id)}]
    changed = await api.patch(
        agreement_id,
        {"parties": [{"organisation_id": p["organisation_id"]} for p in parties], "scope": scope},
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["status"] == "pending_resign"
    assert body["fully_signed"] is False
    assert all(p["signed_at"] is None for p in body["parties"])
    assert len(body["parties"]) == 3
    assert_problem(await api.deploy(agreement_id), 409, "agreement_not_active")

    for organisation in (world.a1, world.a2):
        assert (await api.sign(agreement_id, organisation)).json()["status"] == "pending_resign"
    # a3 is signed for by the ICS admin on its behalf.
    on_behalf = await api.act(
        agreement_id,
        "sign",
        json={
            "organisation_id": str(world.a3.id),
            "signatory_name": "B. Smith",
            "signatory_role": "Director",
        },
    )
    assert on_behalf.status_code == 200, on_behalf.text
    assert on_behalf.json()["status"] == "active"
    assert on_behalf.json()["parties"][2]["signed_on_behalf"] is True

    terminated = await api.act(agreement_id, "terminate", json={"reason": "Replaced"})
    assert terminated.json()["status"] == "terminated"
    assert terminated.json()["termination_reason"] == "Replaced"
    assert terminated.json()["terminated_at"] is not None
    assert terminated.json()["version"] == 10  # one per change; activation rides on a signature

    assert await _audit_actions(sessionmaker, agreement_id) == [
        "agreement.create",
        "agreement.sign",
        "agreement.sign",
        "agreement.activate",
        "agreement.suspend",
        "agreement.resume",
        "agreement.update",
        "agreement.sign",
        "agreement.sign",
        "agreement.sign",
        "agreement.activate",
        "agreement.terminate",
    ]


def _scope(api: Api, lender: str, *, cap: float, role: str = CARE_WORKER) -> dict[str, Any]:
    organisation = getattr(api.world, lender)
    return {"role_code": role, "lending_organisation_id": str(organisation.id), "fte_cap": cap}


def agreement_body_scope(api: Api) -> list[dict[str, Any]]:
    return [_scope(api, "a1", cap=2), _scope(api, "a2", cap=1)]


async def test_a_future_agreement_is_activated_once_its_start_has_come(
    api: Api, clock: Clock
) -> None:
    start = TODAY + timedelta(days=7)
    agreement_id = (await api.create_ok(start_date=start.isoformat()))["id"]
    assert_problem(await api.act(agreement_id, "activate"), 409, "agreement_not_fully_signed")
    await api.sign(agreement_id, api.world.a1)
    body = assert_problem(
        await api.act(agreement_id, "activate"), 409, "agreement_not_fully_signed"
    )
    assert body["unsigned_organisation_ids"] == [str(api.world.a2.id)]

    signed = await api.sign(agreement_id, api.world.a2)
    assert signed.json()["status"] == "draft"
    assert signed.json()["fully_signed"] is True
    body = assert_problem(await api.act(agreement_id, "activate"), 409, "agreement_not_started")
    assert body["start_date"] == start.isoformat()

    clock.today = start
    activated = await api.act(agreement_id, "activate")
    assert activated.status_code == 200, activated.text
    assert activated.json()["status"] == "active"
    assert_problem(await api.act(agreement_id, "activate"), 409, "agreement_already_active")


async def test_past_its_end_date_an_agreement_reads_as_expired(api: Api, clock: Clock) -> None:
    agreement = await api.active()
    agreement_id = agreement["id"]
    before = await api.get(agreement_id)
    clock.today = TODAY + timedelta(days=366)

    after = await api.get(agreement_id)
    assert after.json()["status"] == "expired"
    assert after.json()["version"] == before.json()["version"]
    # The status is part of the representation, so the ETag moves with it.
    assert after.headers["etag"] != before.headers["etag"]
    stale = await api.client.get(
        f"/v1/agreements/{agreement_id}",
        headers={**api.world.admin_a, "If-None-Match": before.headers["etag"]},
    )
    assert stale.status_code == 200

    for action, json in (("suspend", None), ("resume", None), ("terminate", {"reason": "x"})):
        assert_problem(await api.act(agreement_id, action, json=json), 409, "agreement_expired")
    assert_problem(await api.patch(agreement_id, {"title": "Renamed"}), 409, "agreement_expired")
    assert_problem(await api.sign(agreement_id, api.world.a1), 409, "agreement_expired")
    body = assert_problem(await api.deploy(agreement_id), 409, "agreement_not_active")
    assert body["agreement_status"] == "expired"

    # A fully signed draft whose end has passed can no longer be activated.
    clock.today = TODAY
    late = await api.create_ok(start_date=(TODAY + timedelta(days=1)).isoformat())
    await api.sign(late["id"], api.world.a1)
    await api.sign(late["id"], api.world.a2)
    clock.today = TODAY + timedelta(days=366)
    assert (await api.get(late["id"])).json()["status"] == "draft"
    assert_problem(await api.act(late["id"], "activate"), 409, "agreement_expired")


async def test_refused_transitions_name_the_state(api: Api) -> None:
    world = api.world
    sign_a1: dict[str, Any] = {"signatory_name": "X", "signatory_role": "Y"}

    draft = (await api.create_ok())["id"]
    assert_problem(await api.act(draft, "suspend"), 409, "agreement_not_active")
    assert_problem(await api.act(draft, "resume"), 409, "agreement_not_suspended")
    await api.sign(draft, world.a1)
    assert_problem(await api.sign(draft, world.a1), 409, "party_already_signed")

    active = (await api.active())["id"]
    assert_problem(await api.act(active, "activate"), 409, "agreement_already_active")
    assert_problem(await api.sign(active, world.a1), 409, "agreement_already_active")
    body = assert_problem(await api.act(active, "resume"), 409, "agreement_not_suspended")
    assert body["agreement_status"] == "active"

    await api.act(active, "suspend")
    assert_problem(await api.act(active, "suspend"), 409, "agreement_already_suspended")
    assert_problem(await api.act(active, "activate"), 409, "agreement_suspended")
    assert_problem(
        await api.act(active, "sign", headers=world.submit[world.a1.id], json=sign_a1),
        409,
        "agreement_suspended",
    )

    await api.act(active, "terminate", json={"reason": "Ended by the board"})
    for action, json in (
        ("activate", None),
        ("suspend", None),
        ("resume", None),
        ("terminate", {"reason": "again"}),
    ):
        assert_problem(await api.act(active, action, json=json), 409, "agreement_terminated")
    assert_problem(
        await api.act(active, "sign", headers=world.submit[world.a1.id], json=sign_a1),
        409,
        "agreement_terminated",
    )
    assert_problem(await api.patch(active, {"title": "New"}), 409, "agreement_terminated")
    assert_problem(await api.deploy(active), 409, "agreement_not_active")
    # A terminate needs a reason.
    assert_problem(await api.act(draft, "terminate", json={}), 422, "validation_failed")


async def test_signing_rules(api: Api, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = api.world
    agreement_id = (await api.create_ok())["id"]
    names = {"signatory_name": "C. Lee", "signatory_role": "Chair"}

    needs_party = await api.act(agreement_id, "sign", json=names)
    assert_problem(needs_party, 422, "organisation_required")
    not_party = await api.act(
        agreement_id, "sign", json={**names, "organisation_id": str(world.a3.id)}
    )
    assert_problem(not_party, 422, "organisation_not_party")
    for_other = await api.act(
        agreement_id,
        "sign",
        headers=world.submit[world.a1.id],
        json={**names, "organisation_id": str(world.a2.id)},
    )
    assert_problem(for_other, 403, "not_your_organisation")
    read_key = await api.act(agreement_id, "sign", headers=world.read[world.a1.id], json=names)
    assert_problem(read_key, 403, "insufficient_scope")
    for headers in (world.submit[world.a3.id], world.admin_b):
        outsider = await api.act(agreement_id, "sign", headers=headers, etag='"x"', json={**names})
        assert_problem(outsider, 404, "agreement_not_found")
    assert_problem(
        await api.act(agreement_id, "sign", headers=world.submit[world.a1.id], json={}),
        422,
        "validation_failed",
    )
    # Nothing above signed anything.
    assert (await api.get(agreement_id)).json()["version"] == 1

    own = await api.act(
        agreement_id,
        "sign",
        headers=world.submit[world.a1.id],
        json={**names, "organisation_id": str(world.a1.id)},
    )
    assert own.status_code == 200, own.text
    behalf = await api.act(
        agreement_id,
        "sign",
        headers=world.global_admin,
        json={**names, "organisation_id": str(world.a2.id)},
    )
    assert behalf.json()["parties"][1]["signed_on_behalf"] is True
    async with sessionmaker() as session:
        details = (
            (
                await session.execute(
                    select(AuditEvent.detail).where(
                        AuditEvent.resource_id == agreement_id,
                        AuditEvent.action == "agreement.sign",
                    )
                )
            )
            .scalars()
            .all()
        )
    assert sorted(bool(d and d["signed_on_behalf"]) for d in details) == [False, True]


async def test_if_match_is_required_and_must_be_current(api: Api) -> None:
    agreement_id = (await api.create_ok())["id"]
    etag = await api.etag(agreement_id)
    url = f"/v1/agreements/{agreement_id}"

    missing = await api.client.patch(url, json={"title": "New"}, headers=api.world.admin_a)
    assert_problem(missing, 428, "if_match_required")
    missing_action = await api.client.post(
        f"{url}/terminate", json={"reason": "x"}, headers=api.world.admin_a
    )
    assert_problem(missing_action, 428, "if_match_required")

    renamed = await api.patch(agreement_id, {"title": "Renamed"}, etag=etag)
    assert renamed.status_code == 200
    assert renamed.json()["version"] == 2
    stale = await api.patch(agreement_id, {"title": "Lost update"}, etag=etag)
    body = assert_problem(stale, 412, "etag_mismatch")
    assert stale.headers["etag"] == renamed.headers["etag"]
    assert body["code"] == "etag_mismatch"
    stale_sign = await api.act(
        agreement_id,
        "sign",
        headers=api.world.submit[api.world.a1.id],
        etag=etag,
        json={"signatory_name": "X", "signatory_role": "Y"},
    )
    assert_problem(stale_sign, 412, "etag_mismatch")
    current = await api.get(agreement_id)
    assert current.json()["title"] == "Renamed"
    assert current.json()["version"] == 2

    cached = await api.client.get(
        url, headers={**api.world.admin_a, "If-None-Match": renamed.headers["etag"]}
    )
    assert cached.status_code == 304
    assert cached.headers["etag"] == renamed.headers["etag"]


async def test_concurrent_changes_with_one_etag_let_exactly_one_through(api: Api) -> None:
    agreement_id = (await api.create_ok())["id"]
    etag = await api.etag(agreement_id)
    responses = await asyncio.gather(
        *(api.patch(agreement_id, {"title": f"Title {n}"}, etag=etag) for n in range(5))
    )
    assert sorted(r.status_code for r in responses) == [200, 412, 412, 412, 412]
    assert (await api.get(agreement_id)).json()["version"] == 2


async def test_changes_that_keep_the_terms_need_no_new_signatures(api: Api) -> None:
    agreement = await api.active()
    agreement_id = agreement["id"]
    changed = await api.patch(
        agreement_id,
        {"title": "Renamed", "governance": {"notes": "Reviewed in March", "indemnity": None}},
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["status"] == "active"
    assert body["fully_signed"] is True
    assert body["version"] == agreement["version"] + 1
    assert body["governance"] == {
        "risk_share": "Costs follow the staff member",
        "indemnity": None,
        "host_employer": "The lending organisation stays the employer",
        "notes": "Reviewed in March",
    }
    # The same parties and scope again change nothing: no new version.
    same = await api.patch(
        agreement_id,
        {
            "parties": [{"organisation_id": p["organisation_id"]} for p in body["parties"]],
            "scope": body["scope"],
            "start_date": body["start_date"],
        },
    )
    assert same.json()["version"] == body["version"]
    assert same.json()["status"] == "active"


async def test_new_dates_or_mode_need_every_party_to_sign_again(api: Api) -> None:
    agreement = await api.active()
    extended = await api.patch(
        agreement["id"], {"end_date": (TODAY + timedelta(days=500)).isoformat()}
    )
    assert extended.json()["status"] == "pending_resign"

    suspended = await api.active()
    await api.act(suspended["id"], "suspend")
    crisis = await api.patch(suspended["id"], {"mode": "crisis"})
    assert crisis.json()["status"] == "pending_resign"
    assert crisis.json()["suspended_at"] is None
    assert_problem(await api.act(crisis.json()["id"], "resume"), 409, "agreement_not_suspended")
    body = assert_problem(
        await api.act(crisis.json()["id"], "suspend"), 409, "agreement_not_active"
    )
    assert body["agreement_status"] == "pending_resign"

    # A change to a draft clears the signatures given so far.
    draft = (await api.create_ok())["id"]
    await api.sign(draft, api.world.a1)
    rescoped = await api.patch(draft, {"scope": [_scope(api, "a1", cap=3)]})
    assert rescoped.json()["status"] == "draft"
    assert rescoped.json()["parties"][0]["signed_at"] is None


async def test_invalid_changes_are_refused_and_change_nothing(api: Api) -> None:
    world = api.world
    agreement = await api.active()
    agreement_id = agreement["id"]

    body = assert_problem(
        await api.patch(agreement_id, {"parties": [{"organisation_id": str(world.a1.id)}]}),
        422,
        "too_few_parties",
    )
    # a2 lends in the scope, so dropping it also breaks the scope.
    assert {e["code"] for e in errors_of(body)} == {"too_few_parties", "lender_not_party"}
    assert_problem(
        await api.patch(
            agreement_id,
            {
                "parties": [
                    {"organisation_id": str(world.a1.id)},
                    {"organisation_id": str(world.b1.id)},
                ],
                "scope": [_scope(api, "a1", cap=1)],
            },
        ),
        422,
        "unknown_organisation",
    )
    assert_problem(
        await api.patch(agreement_id, {"end_date": (TODAY - timedelta(days=20)).isoformat()}),
        422,
        "invalid_date_range",
    )
    assert_problem(await api.patch(agreement_id, {"title": None}), 422, "validation_failed")
    assert_problem(await api.patch(agreement_id, {"colour": "red"}), 422, "validation_failed")
    assert_problem(await api.patch(agreement_id, {"scope": []}), 422, "scope_required")

    # Current deployments hold the terms they rely on.
    deployed = await api.deploy(agreement_id, fte=1.5)
    assert deployed.status_code == 201
    lower_cap = await api.patch(
        agreement_id, {"scope": [_scope(api, "a1", cap=1), _scope(api, "a2", cap=1)]}
    )
    conflict = assert_problem(lower_cap, 409, "terms_conflict_with_deployments")
    assert conflict["deployments"] == [
        {"deployment_id": deployed.json()["id"], "code": "cap_exceeded"}
    ]
    shorter = await api.patch(agreement_id, {"end_date": (TODAY + timedelta(days=20)).isoformat()})
    assert_problem(shorter, 409, "terms_conflict_with_deployments")
    unchanged = await api.get(agreement_id)
    assert unchanged.json()["version"] == agreement["version"]
    assert unchanged.json()["status"] == "active"
