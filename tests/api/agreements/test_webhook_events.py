"""Agreement and deployment events reach the agreement's ICS and its parties, and nobody else:
on activation and on resuming (agreement.activated), suspension, termination, and for each
deployment created, ended early or cut short by the agreement's termination."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from standardwebhooks.webhooks import Webhook

from tests.api.agreements.conftest import NURSE, TODAY, Api
from tests.api.webhooks.receiver import Receiver, events_at, local_webhooks, subscribe

AGREEMENT_EVENTS = [
    "agreement.activated",
    "agreement.suspended",
    "agreement.terminated",
    "deployment.created",
    "deployment.ended",
]


@pytest.fixture
def local_receiver(app: FastAPI, receiver: Receiver) -> Iterator[Receiver]:
    with local_webhooks(app.state.settings):
        yield receiver


def _story(events: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    """(type, the resource's id, what changed) of each event, in the order of the changes."""
    told = []
    for event in sorted(events, key=lambda e: (e["timestamp"], e["type"])):
        data = event["data"]
        resource = data.get("deployment_id") or data["agreement_id"]
        detail = data.get("resumed") if "resumed" in data else data["status"]
        told.append((event["type"], resource, detail))
    return told


async def test_agreement_and_deployment_events_reach_the_ics_and_parties_only(
    app: FastAPI, api: Api, local_receiver: Receiver
) -> None:
    world, receiver = api.world, local_receiver
    ics = await subscribe(api.client, world.admin_a, receiver.url("/ics"), AGREEMENT_EVENTS)
    party = await subscribe(
        api.client, world.admin_a, receiver.url("/a1"), AGREEMENT_EVENTS,
        organisation_id=str(world.a1.id),
    )  # fmt: skip
    # Not a party (a3, same ICS) and another ICS: neither may read the agreement.
    await subscribe(
        api.client, world.admin_a, receiver.url("/a3"), AGREEMENT_EVENTS,
        organisation_id=str(world.a3.id),
    )  # fmt: skip
    await subscribe(api.client, world.admin_b, receiver.url("/b"), AGREEMENT_EVENTS)

    agreement = await api.active()
    agreement_id = agreement["id"]
    first = (await api.deploy(agreement_id)).json()
    assert await _acted(api, agreement_id, "suspend", {"reason": "Review"}) == "suspended"
    assert await _acted(api, agreement_id, "resume") == "active"
    second = (
        await api.deploy(
            agreement_id, role_code=NURSE, end_date=(TODAY + timedelta(days=60)).isoformat()
        )
    ).json()
    # Ended early by hand, before the agreement ends.
    ended = await api.client.post(
        f"/v1/agreements/{agreement_id}/deployments/{second['id']}/end",
        json={"ended_on": (TODAY + timedelta(days=5)).isoformat(), "reason": "Back to base"},
        headers=world.admin_a,
    )
    assert ended.status_code == 200, ended.text
    third = (
        await api.deploy(agreement_id, start_date=(TODAY + timedelta(days=10)).isoformat())
    ).json()
    assert await _acted(api, agreement_id, "terminate", {"reason": "Replaced"}) == "terminated"
    await app.state.sender.join()

    expected = [
        ("agreement.activated", agreement_id, False),
        ("deployment.created", first["id"], "active"),
        ("agreement.suspended", agreement_id, "suspended"),
        ("agreement.activated", agreement_id, True),  # resumed
        ("deployment.created", second["id"], "active"),
        ("deployment.ended", second["id"], "ended"),
        ("deployment.created", third["id"], "active"),
        ("agreement.terminated", agreement_id, "terminated"),
        # Cut short by the termination: every deployment whose last day was still to come,
        # the second too (its early end was after today).
        ("deployment.ended", first["id"], "ended"),
        ("deployment.ended", second["id"], "ended"),
        ("deployment.ended", third["id"], "ended"),
    ]
    for path in ("/ics", "/a1"):
        story = _story(events_at(receiver, path))
        assert story[:8] == expected[:8], path
        assert sorted(story[8:]) == sorted(expected[8:]), path
    assert receiver.at("/a3") == []
    assert receiver.at("/b") == []

    cut_short = {
        e["data"]["deployment_id"]: e["data"]
        for e in events_at(receiver, "/ics")
        if e["type"] == "deployment.ended"
    }
    assert cut_short[first["id"]]["ended_early_on"] == TODAY.isoformat()
    assert cut_short[first["id"]]["end_reason"] == "The agreement was terminated."
    # Not started yet when the agreement ended: withdrawn, its last day the day before it.
    assert cut_short[third["id"]]["ended_early_on"] == (TODAY + timedelta(days=9)).isoformat()
    assert cut_short[second["id"]]["ended_early_on"] == TODAY.isoformat()
    assert cut_short[second["id"]]["end_reason"] == "Back to base"  # its own reason stays
    by_hand = [e for e in events_at(receiver, "/ics") if e["type"] == "deployment.ended"]
    assert (TODAY + timedelta(days=5)).isoformat() in {e["data"]["ended_early_on"] for e in by_hand}
    for path, secret in (("/ics", ics["secret"]), ("/a1", party["secret"])):
        for request in receiver.at(path):
            Webhook(secret).verify(request.body, request.headers)


async def _acted(
    api: Api, agreement_id: str, action: str, body: dict[str, Any] | None = None
) -> str:
    response = await api.act(agreement_id, action, json=body)
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status
