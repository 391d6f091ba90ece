"""Delivering one webhook: sign, POST with httpx, log the attempt, retry with backoff.

Each delivery is a queue job. A 2xx answer delivers it; anything else (another status, a
timeout, a refused address) is logged as an attempt and retried after base x 2^(try-1)
seconds (capped), up to WEBHOOK_MAX_ATTEMPTS tries; then the delivery is `failed`. A
subscription whose deliveries have all failed for WEBHOOK_DISABLE_AFTER_S is disabled, with
the reason on the subscription. Delivery is at least once: receivers drop repeats by the
`webhook-id` header, which is the delivery's id and the same on every attempt.
"""

from __future__ import annotations

import json
import logging
import time
import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.domain.webhooks import signing, urls
from shared.config import Settings
from shared.db.session import transaction
from shared.errors import DomainError
from shared.models import DeliveryStatus
from shared.repositories import webhooks as repo

log = logging.getLogger("oneworkforce.webhooks")

EXCERPT_CHARS = 500
USER_AGENT = "OneWorkforce-Webhooks/1"


class RetryLater(Exception):
    """The attempt failed and another is due after defer_s seconds."""

    def __init__(self, defer_s: float) -> None:
        super().__init__(f"retry in {defer_s:.1f}s")
        self.defer_s = defer_s


def backoff_s(settings: Settings, job_try: int) -> float:
    return float(
        min(settings.webhook_retry_max_s, settings.webhook_retry_base_s * 2 ** (job_try - 1))
    )


def body_of(payload: dict[str, object]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def http_client() -> httpx.AsyncClient:
    """The client a worker keeps for its deliveries: built once (a TLS context costs tens of
    milliseconds of CPU), never following redirects; each POST sets its own timeout."""
    return httpx.AsyncClient(follow_redirects=False)


async def _post(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], settings: Settings
) -> tuple[int | None, str | None, str | None, float]:
    """(status code, response excerpt, error, latency ms) of one POST."""
    started = time.perf_counter()
    try:
        await urls.check_url(url, settings)
    except DomainError as exc:
        return None, None, f"{exc.code}: {exc.detail}", 0.0
    try:
        response = await client.post(
            url,
            content=body,
            headers=headers,
            timeout=settings.webhook_timeout_s,
            follow_redirects=False,
        )
        excerpt = response.text[:EXCERPT_CHARS]
        return (
            response.status_code,
            excerpt,
            None,
            (time.perf_counter() - started) * 1000.0,
        )
    except httpx.HTTPError as exc:
        return (
            None,
            None,
            f"{type(exc).__name__}: {exc}"[:EXCERPT_CHARS],
            (time.perf_counter() - started) * 1000.0,
        )


async def deliver(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    delivery_id: uuid.UUID,
    job_try: int,
    client: httpx.AsyncClient | None = None,
) -> str:
    """One attempt of one delivery; raises RetryLater when another attempt is due. `client`
    is the worker's (a one-off client otherwise)."""
    async with sessionmaker() as session:
        delivery = await repo.get_delivery(session, delivery_id=delivery_id)
        if delivery is None:
            return "missing"
        if delivery.status == DeliveryStatus.succeeded:
            return "succeeded"  # a repeated job: already delivered
        subscription = await repo.get_subscription(
            session, subscription_id=delivery.subscription_id
        )
        if subscription is None:
            return "missing"
        now = repo.now()
        attempt = delivery.attempts + 1
        enabled = subscription.enabled
        url = subscription.url
        secrets_in_use = [subscription.secret]
        if (
            subscription.previous_secret is not None
            and subscription.previous_secret_expires_at is not None
            and subscription.previous_secret_expires_at > now
        ):
            secrets_in_use.append(subscription.previous_secret)
        body = body_of(delivery.payload)
        subscription_id = subscription.id
        await session.rollback()

    if not enabled:
        async with transaction(sessionmaker) as session:
            await repo.record_attempt(
                session,
                delivery_id=delivery_id,
                attempt=attempt,
                status_code=None,
                latency_ms=None,
                response_excerpt=None,
                error="the subscription is disabled",
                outcome=DeliveryStatus.failed,
                at=now,
            )
        return "disabled"

    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        **signing.headers(
            secrets_in_use, message_id=str(delivery_id), timestamp=int(time.time()), body=body
        ),
    }
    if client is None:
        async with http_client() as own:
            posted = await _post(own, url, body, headers, settings)
    else:
        posted = await _post(client, url, body, headers, settings)
    status_code, excerpt, error, latency_ms = posted
    succeeded = status_code is not None and 200 <= status_code < 300
    final = succeeded or job_try >= settings.webhook_max_attempts
    outcome = (
        DeliveryStatus.succeeded
        if succeeded
        else (DeliveryStatus.failed if final else DeliveryStatus.pending)
    )
    at = repo.now()
    if error is None and not succeeded:
        error = f"HTTP {status_code}"
    async with transaction(sessionmaker) as session:
        disabled = await repo.mark_subscription_health(
            session,
            subscription_id=subscription_id,
            succeeded=succeeded,
            at=at,
            disable_after_s=settings.webhook_disable_after_s,
        )
        if disabled and outcome == DeliveryStatus.pending:
            outcome = DeliveryStatus.failed
            error = f"{error}; the subscription was disabled after failing for too long"
        await repo.record_attempt(
            session,
            delivery_id=delivery_id,
            attempt=attempt,
            status_code=status_code,
            latency_ms=round(latency_ms, 1),
            response_excerpt=excerpt,
            error=error,
            outcome=outcome,
            at=at,
        )
    log.info(
        "webhook attempt",
        extra={
            "delivery_id": str(delivery_id),
            "attempt": attempt,
            "status_code": status_code,
            "outcome": str(outcome),
        },
    )
    if disabled:
        log.warning(
            "webhook subscription disabled", extra={"subscription_id": str(subscription_id)}
        )
    if outcome == DeliveryStatus.pending:
        raise RetryLater(backoff_s(settings, job_try))
    return str(outcome)
