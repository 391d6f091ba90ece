"""Deployments: each refusal rule with its code, the cap counted over overlapping dates, the cap
under concurrent requests, ending early, and deployments cut short by termination."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.models import AuditEvent, Deployment
from tests.api.agreements.conftest import CARE_WORKER, NURSE, TODAY, UNUSED_ROLE, Api, Clock
from tests.helpers import assert_problem


def _day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


async def _count(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return (await session.execute(select(func.count()).select_from(Deployment))).scalar_one()


async def test_a_deployment_within_the_rules_is_created_and_audited(
    api: Api, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    agreement = await api.active()
    response = await api.deploy(agreement["id"], fte=0.5)
    assert response.status_code == 201, response.text
    deployment = response.json()
    assert response.headers["location"] == (
        f"/v1/agreements/{agreement['id']}/deployments/{deployment['id']}"
    )
    assert deployment["status"] == "active"
    assert deployment["fte"] == 0.5
    assert deployment["effective_end_date"] == _day(30)

    fetched = await api.client.get(response.headers["location"], headers=api.world.read_a)
    assert fetched.json() == deployment
    async with sessionmaker() as session:
        actions = (
            (
                await session.execute(
                    select(AuditEvent.action).where(AuditEvent.resource_id == deployment["id"])
                )
            )
            .scalars()
            .all()
        )
    assert actions == ["deployment.create"]


async def test_each_refused_deployment_has_its_own_code_and_stores_nothing(
    api: Api, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    world = api.world
    agreement = await api.active()
    agreement_id = agreement["id"]

    assert_problem(
        await api.deploy(agreement_id, to_organisation_id=str(world.a1.id)),
        422,
        "deployment_same_organisation",
    )
    body = assert_problem(
        await api.deploy(agreement_id, to_organisation_id=str(world.a3.id)),
        422,
        "organisation_not_party",
    )
    assert body["errors"] == [
        {
            "field": "to_organisation_id",
            "code": "organisation_not_party",
            "message": "not a party to the agreement",
        }
    ]
    body = assert_problem(
        await api.deploy(agreement_id, start_date=_day(-11)),
        422,
        "deployment_outside_agreement_dates",
    )
    assert body["agreement_start_date"] == _day(-10)
    assert_problem(
        await api.deploy(agreement_id, end_date=_day(400)),
        422,
        "deployment_outside_agreement_dates",
    )
    assert_problem(await api.deploy(agreement_id, role_code=UNUSED_ROLE), 422, "role_not_in_scope")
    # Nurses are in scope, but only a1 lends them.
    assert_problem(
        await api.deploy(
            agreement_id,
            role_code=NURSE,
            from_organisation_id=str(world.a2.id),
            to_organisation_id=str(world.a1.id),
        ),
        422,
        "role_not_in_scope",
    )
    assert_problem(
        await api.deploy(agreement_id, start_date=_day(5), end_date=_day(4)),
        422,
        "invalid_date_range",
    )
    assert_problem(await api.deploy(agreement_id, fte=0), 422, "validation_failed")
    assert_problem(await api.deploy(agreement_id, fte=-1), 422, "validation_failed")
    body = assert_problem(await api.deploy(agreement_id, fte=2.5), 409, "cap_exceeded")
    assert (body["fte_cap"], body["deployed_fte"], body["requested_fte"]) == (2.0, 0.0, 2.5)
    assert await _count(sessionmaker) == 0


async def test_deployments_need_an_active_agreement(api: Api) -> None:
    draft = await api.create_ok()
    body = assert_problem(await api.deploy(draft["id"]), 409, "agreement_not_active")
    assert body["agreement_status"] == "draft"

    agreement = await api.active()
    assert (await api.act(agreement["id"], "suspend")).status_code == 200
    body = assert_problem(await api.deploy(agreement["id"]), 409, "agreement_not_active")
    assert body["agreement_status"] == "suspended"
    assert (await api.act(agreement["id"], "resume")).status_code == 200
    assert (await api.deploy(agreement["id"])).status_code == 201


async def test_the_cap_counts_only_deployments_out_at_the_same_time(api: Api) -> None:
    agreement_id = (await api.active())["id"]
    # a1 may lend 2 FTE of care workers at once.
    assert (await api.deploy(agreement_id, fte=1, start_date=_day(0), end_date=_day(9))).is_success
    assert (
        await api.deploy(agreement_id, fte=1, start_date=_day(20), end_date=_day(29))
    ).is_success
    # Days 5-25 overlap each of them, but never both at once: 1 FTE is out at the peak.
    assert (await api.deploy(agreement_id, fte=1, start_date=_day(5), end_date=_day(25))).is_success
    # Now days 5-9 and 20-25 have 2 FTE out; 0.5 more on day 9 breaks the cap.
    body = assert_problem(
        await api.deploy(agreement_id, fte=0.5, start_date=_day(9), end_date=_day(9)),
        409,
        "cap_exceeded",
    )
    assert (body["fte_cap"], body["deployed_fte"], body["requested_fte"]) == (2.0, 2.0, 0.5)
    assert body["available_fte"] == 0.0
    # Day 10 to 19 has only 1 FTE out.
    assert (
        await api.deploy(agreement_id, fte=1, start_date=_day(10), end_date=_day(19))
    ).is_success
    # Another lender's cap is separate: a2 lends 1 FTE of care workers to a1.
    other = await api.deploy(
        agreement_id,
        from_organisation_id=str(api.world.a2.id),
        to_organisation_id=str(api.world.a1.id),
        fte=1,
    )
    assert other.status_code == 201, other.text


async def test_concurrent_requests_never_exceed_the_cap(
    api: Api, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Ten requests of 0.5 FTE race for a cap of 2 FTE: exactly four succeed."""
    agreement_id = (await api.active())["id"]
    responses = await asyncio.gather(*(api.deploy(agreement_id, fte=0.5) for _ in range(10)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] * 4 + [409] * 6, [r.text for r in responses if r.status_code >= 500]
    for response in responses:
        if response.status_code == 409:
            assert response.json()["code"] == "cap_exceeded"
            assert response.json()["deployed_fte"] == 2.0
    async with sessionmaker() as session:
        deployed = (await session.execute(select(func.sum(Deployment.fte)))).scalar_one()
    assert deployed == 2.0


async def test_concurrent_requests_for_different_lenders_do_not_block_each_other(
    api: Api,
) -> None:
    agreement_id = (await api.active())["id"]
    a1_to_a2 = [api.deploy(agreement_id, fte=1) for _ in range(3)]
    a2_to_a1 = [
        api.deploy(
            agreement_id,
            from_organisation_id=str(api.world.a2.id),
            to_organisation_id=str(api.world.a1.id),
            fte=1,
        )
        for _ in range(2)
    ]
    responses = await asyncio.gather(*a1_to_a2, *a2_to_a1)
    assert sorted(r.status_code for r in responses[:3]) == [201, 201, 409]
    assert sorted(r.status_code for r in responses[3:]) == [201, 409]


async def test_ending_early_frees_the_cap_from_the_day_after(api: Api) -> None:
    agreement_id = (await api.active())["id"]
    first = (await api.deploy(agreement_id, fte=2)).json()
    assert_problem(await api.deploy(agreement_id, fte=1, start_date=_day(20)), 409, "cap_exceeded")

    url = f"/v1/agreements/{agreement_id}/deployments/{first['id']}/end"
    ended = await api.client.post(
        url, json={"ended_on": _day(10), "reason": "Trust recovered"}, headers=api.world.admin_a
    )
    assert ended.status_code == 200, ended.text
    assert ended.json()["status"] == "ended"
    assert ended.json()["ended_early_on"] == _day(10)
    assert ended.json()["effective_end_date"] == _day(10)
    assert (await api.deploy(agreement_id, fte=2, start_date=_day(11))).status_code == 201
    assert_problem(await api.deploy(agreement_id, fte=1, start_date=_day(10)), 409, "cap_exceeded")

    again = await api.client.post(url, json={"ended_on": _day(5)}, headers=api.world.admin_a)
    assert_problem(again, 409, "deployment_already_ended")


async def test_ending_early_refuses_dates_that_are_not_early(api: Api) -> None:
    agreement_id = (await api.active())["id"]
    deployment = (await api.deploy(agreement_id, start_date=_day(5))).json()
    url = f"/v1/agreements/{agreement_id}/deployments/{deployment['id']}/end"
    admin = api.world.admin_a
    late = await api.client.post(url, json={"ended_on": _day(30)}, headers=admin)
    assert_problem(late, 422, "ended_on_not_early")
    early = await api.client.post(url, json={"ended_on": _day(3)}, headers=admin)
    assert_problem(early, 422, "ended_on_before_start")
    assert_problem(await api.client.post(url, json={}, headers=admin), 422, "validation_failed")
    # The day before the start withdraws it: it never occupies the cap.
    withdrawn = await api.client.post(url, json={"ended_on": _day(4)}, headers=admin)
    assert withdrawn.status_code == 200, withdrawn.text
    assert (await api.deploy(agreement_id, fte=2, start_date=_day(5))).status_code == 201

    missing = f"/v1/agreements/{agreement_id}/deployments/{agreement_id}/end"
    not_found = await api.client.post(missing, json={"ended_on": _day(4)}, headers=admin)
    assert_problem(not_found, 404, "deployment_not_found")


async def test_deployments_list_filters_and_shows_finished_ones_as_ended(
    api: Api, clock: Clock
) -> None:
    world = api.world
    agreement_id = (await api.active())["id"]
    await api.deploy(agreement_id, fte=1, start_date=_day(0), end_date=_day(5))
    await api.deploy(agreement_id, fte=1, start_date=_day(3), end_date=_day(40))
    await api.deploy(
        agreement_id,
        from_organisation_id=str(world.a2.id),
        to_organisation_id=str(world.a1.id),
        fte=1,
        start_date=_day(0),
        end_date=_day(40),
    )
    url = f"/v1/agreements/{agreement_id}/deployments"

    async def listed(**params: str) -> list[tuple[str, str]]:
        response = await api.client.get(url, params=params, headers=world.read[world.a1.id])
        assert response.status_code == 200, response.text
        return [(d["start_date"], d["end_date"]) for d in response.json()["items"]]

    assert len(await listed()) == 3
    assert len(await listed(role=CARE_WORKER, organisation=str(world.a2.id))) == 3
    assert await listed(active_on=_day(20)) == [(_day(0), _day(40)), (_day(3), _day(40))]
    clock.today = TODAY + timedelta(days=10)
    assert await listed(status="ended") == [(_day(0), _day(5))]
    assert len(await listed(status="active")) == 2
    page = await api.client.get(url, params={"limit": 1, "page": 2}, headers=world.read_a)
    assert page.json()["total"] == 3
    assert len(page.json()["items"]) == 1


async def test_terminating_cuts_running_deployments_short_and_withdraws_future_ones(
    api: Api, clock: Clock
) -> None:
    agreement_id = (await api.active())["id"]
    running = (await api.deploy(agreement_id, fte=1, start_date=_day(-5))).json()
    future = (await api.deploy(agreement_id, fte=1, start_date=_day(10))).json()
    done = (await api.deploy(agreement_id, fte=1, start_date=_day(-9), end_date=_day(-1))).json()
    terminated = await api.act(agreement_id, "terminate", json={"reason": "Merger"})
    assert terminated.status_code == 200, terminated.text

    listed = await api.client.get(
        f"/v1/agreements/{agreement_id}/deployments", headers=api.world.admin_a
    )
    by_id = {d["id"]: d for d in listed.json()["items"]}
    assert by_id[running["id"]]["ended_early_on"] == _day(0)
    assert by_id[running["id"]]["status"] == "ended"
    assert by_id[future["id"]]["ended_early_on"] == _day(9)
    assert by_id[future["id"]]["end_reason"] == "The agreement was terminated."
    assert by_id[done["id"]]["ended_early_on"] is None


async def test_keys_that_may_not_cannot_deploy(
    api: Api, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    world = api.world
    agreement_id = (await api.active())["id"]
    assert_problem(
        await api.deploy(agreement_id, headers=world.admin_b), 404, "agreement_not_found"
    )
    for headers in (world.read_a, world.submit[world.a1.id], world.read_global):
        assert_problem(await api.deploy(agreement_id, headers=headers), 403, "insufficient_scope")
    assert await _count(sessionmaker) == 0
    assert (await api.deploy(agreement_id, headers=world.global_admin)).status_code == 201
    # Reading is for anyone who may read the agreement, and nobody else.
    url = f"/v1/agreements/{agreement_id}/deployments"
    assert (await api.client.get(url, headers=world.submit[world.a2.id])).status_code == 200
    for headers in (world.submit[world.a3.id], world.admin_b):
        assert_problem(await api.client.get(url, headers=headers), 404, "agreement_not_found")
    missing = f"/v1/agreements/{agreement_id}/deployments/{agreement_id}"
    assert_problem(await api.client.get(missing, headers=world.read_a), 404, "deployment_not_found")


async def test_unknown_agreement_is_404(api: Api, client: httpx.AsyncClient) -> None:
    response = await api.deploy("00000000-0000-0000-0000-000000000000")
    assert_problem(response, 404, "agreement_not_found")
