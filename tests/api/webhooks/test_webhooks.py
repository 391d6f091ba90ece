"""Webhooks end to end with a real local receiver: a finished projection reaches its ICS's
subscriber as one signed projection.succeeded that standardwebhooks verifies, and nothing
reaches another ICS's; failures are retried with backoff and logged; rotation, redelivery,
disabling, the SSRF guard, bad input and keys that may not."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.domain.reference.loader import ReferenceLoadSummary
from shared.db.base import utcnow
from shared.db.session import transaction
from shared.models import WebhookSubscription
from tests.api.projections.helpers import line, run_projection, setup_icb
from tests.api.webhooks.receiver import Receiver, deliveries, subscribe
from tests.factories import ICB_A, ICB_B, LAD_A1, make_organisation, make_role
from tests.helpers import KeyFactory, assert_problem


async def test_a_finished_projection_reaches_its_ics_signed_and_no_other_ics(
    hook_app: FastAPI,
    hook_client: httpx.AsyncClient,
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
    receiver: Receiver,
) -> None:
    admin_a = await make_key("admin", ics_code=ICB_A)
    admin_b = await make_key("admin", ics_code=ICB_B)
    mine = await subscribe(
        hook_client, admin_a, receiver.url("/a"), ["projection.succeeded", "projection.failed"]
    )
    assert mine["ics_code"] == ICB_A
    theirs = await subscribe(
        hook_client, admin_b, receiver.url("/b"), ["projection.succeeded", "return.accepted"]
    )
    # The secret is shown once: reads do not carry it.
    again = await hook_client.get(f"/v1/webhooks/{mine['id']}", headers=admin_a)
    assert "secret" not in again.json()

    await setup_icb(hook_client, hook_app.state.sessionmaker, admin_a)
    run = await run_projection(hook_client, hook_app, admin_a, scope=ICB_A, horizon=3, iterations=5)
    assert run["status"] == "succeeded"
    await hook_app.state.sender.join()

    received = receiver.at("/a")
    assert len(received) == 1
    request = received[0]
    payload = Webhook(mine["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "projection.succeeded"
    assert payload["data"]["run_id"] == run["id"]
    assert payload["data"]["scope"] == ICB_A
    with pytest.raises(WebhookVerificationError):
        Webhook(theirs["secret"]).verify(request.body, request.headers)
    tampered = request.body.replace(b"succeeded", b"failed")
    with pytest.raises(WebhookVerificationError):
        Webhook(mine["secret"]).verify(tampered, request.headers)
    # Another ICS's subscriber hears nothing about this ICS (not its returns, not its runs).
    assert receiver.at("/b") == []
    assert await deliveries(hook_client, admin_b, theirs["id"]) == []

    log = await deliveries(hook_client, admin_a, mine["id"])
    assert len(log) == 1
    assert log[0]["id"] == request.headers["webhook-id"]
    assert log[0]["status"] == "succeeded"
    assert log[0]["attempts"] == 1
    attempt = log[0]["attempt_log"][0]
    assert attempt["status_code"] == 200
    assert attempt["latency_ms"] is not None
    assert attempt["response_excerpt"] == "ok"


async def test_failures_are_retried_with_backoff_then_logged(
    hook_app: FastAPI,
    hook_client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    reference: ReferenceLoadSummary,
    receiver: Receiver,
) -> None:
    admin = await make_key("admin", ics_code=ICB_A)
    role = (await make_role(sessionmaker)).code
    org = await make_organisation(sessionmaker, home_lad_code=LAD_A1, ics_code=ICB_A)
    hook = await subscribe(hook_client, admin, receiver.url("/flaky"), ["return.accepted"])
    receiver.answer("/flaky", 500, 500)

    body = {"as_at": "2025-03-31", "lines": [line(role)]}
    posted = await hook_client.post(f"/v1/organisations/{org.id}/returns", json=body, headers=admin)
    assert posted.status_code == 201, posted.text
    await hook_app.state.sender.join()

    received = receiver.at("/flaky")
    assert len(received) == 3  # 500, 500, then delivered
    assert len({r.headers["webhook-id"] for r in received}) == 1  # one message, three attempts
    for request in received:
        Webhook(hook["secret"]).verify(request.body, request.headers)
    delivery = (await deliveries(hook_client, admin, hook["id"]))[0]
    assert delivery["status"] == "succeeded"
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 500, 200]
    assert delivery["attempt_log"][0]["response_excerpt"] == "receiver error"
    assert delivery["attempt_log"][0]["error"] == "HTTP 500"
    assert delivery["payload"]["data"]["organisation_id"] == str(org.id)

    # Redeliver: the same webhook-id again.
    url = f"/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/redeliver"
    again = await hook_client.post(url, headers=admin)
    assert again.status_code == 202
    await hook_app.state.sender.join()
    assert len(receiver.at("/flaky")) == 4
    assert receiver.at("/flaky")[-1].headers["webhook-id"] == delivery["id"]

    # A receiver that never answers 2xx: the delivery ends failed after the last attempt.
    receiver.answer("/flaky", *([503] * 10))
    second = {"as_at": "2025-03-31", "lines": [line(role, headcount=41, age_under_25=7)]}
    posted = await hook_client.post(
        f"/v1/organisations/{org.id}/returns", json=second, headers=admin
    )
    assert posted.status_code == 201, posted.text
    await hook_app.state.sender.join()
    failed = await hook_client.get(
        f"/v1/webhooks/{hook['id']}/deliveries", params={"status": "failed"}, headers=admin
    )
    items = failed.json()["items"]
    assert len(items) == 1
    assert items[0]["attempts"] == 4  # WEBHOOK_MAX_ATTEMPTS in this app
    assert [a["status_code"] for a in items[0]["attempt_log"]] == [503] * 4
    state = (await hook_client.get(f"/v1/webhooks/{hook['id']}", headers=admin)).json()
    assert state["failing_since"] is not None
    assert state["enabled"] is True

    # Failing for a day: the next failure disables the subscription and says why.
    async with transaction(sessionmaker) as session:
        await session.execute(
            update(WebhookSubscription)
            .where(WebhookSubscription.id == uuid.UUID(hook["id"]))
            .values(failing_since=utcnow() - timedelta(days=1, minutes=1))
        )
    third = {"as_at": "2025-03-31", "lines": [line(role, headcount=42, age_under_25=8)]}
    await hook_client.post(f"/v1/organisations/{org.id}/returns", json=third, headers=admin)
    await hook_app.state.sender.join()
    state = (await hook_client.get(f"/v1/webhooks/{hook['id']}", headers=admin)).json()
    assert state["enabled"] is False
    assert "failed" in state["disabled_reason"]
    # Re-enabled by PATCH, which clears the reason.
    enabled = await hook_client.patch(
        f"/v1/webhooks/{hook['id']}", json={"enabled": True}, headers=admin
    )
    assert enabled.json()["enabled"] is True
    assert enabled.json()["disabled_reason"] is None


async def test_rotation_signs_with_both_secrets_for_the_grace_period(
    hook_app: FastAPI,
    hook_client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    reference: ReferenceLoadSummary,
    receiver: Receiver,
) -> None:
    admin = await make_key("admin", ics_code=ICB_A)
    org = await make_organisation(sessionmaker, home_lad_code=LAD_A1, ics_code=ICB_A)
    role = (await make_role(sessionmaker)).code
    # Owned by the organisation: hears about that organisation.
    hook = await subscribe(
        hook_client, admin, receiver.url("/org"), ["return.accepted", "return.superseded"],
        organisation_id=str(org.id),
    )  # fmt: skip
    assert hook["organisation_id"] == str(org.id)
    rotated = await hook_client.post(
        f"/v1/webhooks/{hook['id']}/rotate-secret", json={"grace_seconds": 3600}, headers=admin
    )
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret != hook["secret"]
    assert rotated.json()["previous_secret_expires_at"] is not None

    for version in range(2):
        body = {"as_at": "2025-03-31", "lines": [line(role, headcount=40 + version,
                                                      age_under_25=6 + version)]}  # fmt: skip
        posted = await hook_client.post(
            f"/v1/organisations/{org.id}/returns", json=body, headers=admin
        )
        assert posted.status_code == 201
    await hook_app.state.sender.join()
    received = receiver.at("/org")
    types = sorted(json.loads(r.body)["type"] for r in received)
    assert types == ["return.accepted", "return.accepted", "return.superseded"]
    for request in received:
        Webhook(new_secret).verify(request.body, request.headers)
        Webhook(hook["secret"]).verify(request.body, request.headers)  # still in its grace

    # Without a grace period the old secret stops signing at once.
    await hook_client.post(
        f"/v1/webhooks/{hook['id']}/rotate-secret", json={"grace_seconds": 0}, headers=admin
    )


async def test_urls_event_types_and_keys_are_checked(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
    reference: ReferenceLoadSummary,
) -> None:
    """The default settings: https only, public addresses only."""
    admin = await make_key("admin", ics_code=ICB_A)

    async def count() -> int:
        async with sessionmaker() as session:
            total: int = (
                await session.execute(select(func.count()).select_from(WebhookSubscription))
            ).scalar_one()
            return total

    before = await count()
    for url, code in (
        ("http://example.org/hook", "webhook_url_not_https"),
        ("ftp://example.org/hook", "webhook_url_not_https"),
        ("https://user:pw@example.org/hook", "webhook_url_not_https"),
        ("https://127.0.0.1/hook", "webhook_url_forbidden"),
        ("https://localhost:8443/hook", "webhook_url_forbidden"),
        ("https://10.1.2.3/hook", "webhook_url_forbidden"),
        ("https://192.168.0.10/hook", "webhook_url_forbidden"),
        ("https://169.254.169.254/latest/meta-data", "webhook_url_forbidden"),
        ("https://[::1]/hook", "webhook_url_forbidden"),
        ("https://[::ffff:127.0.0.1]/hook", "webhook_url_forbidden"),
        ("https://100.64.0.1/hook", "webhook_url_forbidden"),
    ):
        response = await client.post(
            "/v1/webhooks", json={"url": url, "event_types": ["return.accepted"]}, headers=admin
        )
        problem = assert_problem(response, 422, code)
        assert problem["errors"][0]["field"] == "url"
    unknown = assert_problem(
        await client.post(
            "/v1/webhooks",
            json={"url": "https://8.8.8.8/hook", "event_types": ["return.eaten"]},
            headers=admin,
        ),
        422,
        "unknown_event_type",
    )
    assert "projection.succeeded" in unknown["known_event_types"]
    assert_problem(
        await client.post("/v1/webhooks", json={"url": "https://8.8.8.8/h"}, headers=admin),
        422,
        "validation_failed",
    )
    assert_problem(
        await client.post(
            "/v1/webhooks",
            json={"url": "https://8.8.8.8/h", "event_types": ["return.accepted"],
                  "ics_code": ICB_B},
            headers=admin,
        ),
        422,
        "webhook_owner_invalid",
    )  # fmt: skip
    assert await count() == before

    # A public address literal needs no lookup and is accepted.
    created = await client.post(
        "/v1/webhooks",
        json={"url": "https://8.8.8.8/hook", "event_types": ["projection.succeeded"]},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    hook_id = created.json()["id"]
    url = f"/v1/webhooks/{hook_id}"
    listed = await client.get("/v1/webhooks", headers=admin)
    assert [item["id"] for item in listed.json()["items"]] == [hook_id]
    changed = await client.patch(
        url, json={"event_types": ["projection.failed", "projection.stale"]}, headers=admin
    )
    assert changed.json()["event_types"] == ["projection.failed", "projection.stale"]
    assert_problem(
        await client.patch(url, json={"url": "https://127.0.0.1/x"}, headers=admin),
        422,
        "webhook_url_forbidden",
    )
    assert_problem(
        await client.patch(url, json={"event_types": ["nope"]}, headers=admin),
        422,
        "unknown_event_type",
    )

    # Keys that may not: read keys are refused; another ICS's admin cannot see it.
    reader = await make_key("read", ics_code=ICB_A)
    assert_problem(await client.get("/v1/webhooks", headers=reader), 403, "insufficient_scope")
    other = await make_key("admin", ics_code=ICB_B)
    for method, path in (
        ("GET", url),
        ("PATCH", url),
        ("DELETE", url),
        ("POST", f"{url}/rotate-secret"),
        ("GET", f"{url}/deliveries"),
    ):
        response = await client.request(
            method, path, headers=other, json={} if method in ("PATCH", "POST") else None
        )
        assert_problem(response, 404, "webhook_not_found")
    assert (await client.get("/v1/webhooks", headers=other)).json()["items"] == []
    missing = f"{url}/deliveries/00000000-0000-0000-0000-000000000000/redeliver"
    assert_problem(await client.post(missing, headers=admin), 404, "webhook_delivery_not_found")

    deleted = await client.delete(url, headers=admin)
    assert deleted.status_code == 204
    assert_problem(await client.get(url, headers=admin), 404, "webhook_not_found")
