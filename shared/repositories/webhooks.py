"""Webhook subscriptions, deliveries and attempts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.base import utcnow
from shared.models import (
    DeliveryStatus,
    Organisation,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from shared.repositories import organisations
from shared.repositories.base import PageWindow, paginate
from shared.schemas.keys import Principal


def readable_statement(principal: Principal) -> Select[WebhookSubscription]:
    """The subscriptions a key manages: those owned by the organisations it may see, and (an
    ICS key) its ICS's own; every one for a global key. Reads, changes and the list of
    subscriptions all start here."""
    query = select(WebhookSubscription)
    if principal.is_global:
        return query
    owners = organisations.readable_statement(principal).with_only_columns(Organisation.id)
    owned: ColumnElement[bool] = WebhookSubscription.organisation_id.in_(owners)
    if principal.ics_code is not None:
        owned = or_(WebhookSubscription.ics_code == principal.ics_code, owned)
    return query.where(owned)


async def get(
    session: AsyncSession,
    *,
    principal: Principal,
    subscription_id: uuid.UUID,
    lock: bool = False,
) -> WebhookSubscription | None:
    query = readable_statement(principal).where(WebhookSubscription.id == subscription_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def list_page(
    session: AsyncSession, *, principal: Principal, page: PageWindow
) -> tuple[Sequence[WebhookSubscription], int]:
    query = readable_statement(principal)
    return await paginate(
        session, query.order_by(WebhookSubscription.created_at, WebhookSubscription.id), page
    )


async def add(session: AsyncSession, subscription: WebhookSubscription) -> WebhookSubscription:
    session.add(subscription)
    await session.flush()
    return subscription


async def delete(session: AsyncSession, subscription: WebhookSubscription) -> None:
    await session.delete(subscription)
    await session.flush()


# Organisation ids per query: well inside every driver's limit on bound parameters.
_IDS_PER_QUERY = 1000


async def audience_subscriptions(
    session: AsyncSession,
    *,
    ics_codes: Sequence[str],
    organisation_ids: Sequence[uuid.UUID],
    every_ics: bool = False,
) -> list[WebhookSubscription]:
    """Enabled subscriptions that may hear of something about these ICSs (or, every_ics,
    about something every ICS may read) or these organisations: a superset for a batch of
    events, which the caller narrows event by event."""
    found: dict[uuid.UUID, WebhookSubscription] = {}
    enabled = WebhookSubscription.enabled.is_(True)
    owners: list[ColumnElement[bool]] = []
    if every_ics:
        owners.append(WebhookSubscription.ics_code.is_not(None))
    elif ics_codes:
        owners.append(WebhookSubscription.ics_code.in_(sorted(set(ics_codes))))
    unique_ids = sorted(set(organisation_ids))
    for start in range(0, len(unique_ids), _IDS_PER_QUERY):
        owners.append(
            WebhookSubscription.organisation_id.in_(unique_ids[start : start + _IDS_PER_QUERY])
        )
    for owner in owners:
        query = select(WebhookSubscription).where(enabled, owner)
        for subscription in (await session.execute(query)).scalars():
            found[subscription.id] = subscription
    return sorted(found.values(), key=lambda s: (s.created_at, s.id))


async def add_deliveries(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert deliveries (id, subscription_id, event_type, payload) in one statement batch."""
    if rows:
        await session.execute(insert(WebhookDelivery), list(rows))


async def get_delivery(
    session: AsyncSession, *, delivery_id: uuid.UUID, subscription_id: uuid.UUID | None = None
) -> WebhookDelivery | None:
    query = select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
    if subscription_id is not None:
        query = query.where(WebhookDelivery.subscription_id == subscription_id)
    return (await session.execute(query)).scalar_one_or_none()


async def get_subscription(
    session: AsyncSession, *, subscription_id: uuid.UUID
) -> WebhookSubscription | None:
    return await session.get(WebhookSubscription, subscription_id)


async def list_deliveries(
    session: AsyncSession,
    *,
    subscription_id: uuid.UUID,
    status: str | None,
    page: PageWindow,
) -> tuple[Sequence[WebhookDelivery], int]:
    query = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    return await paginate(
        session, query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id), page
    )


async def attempts_of(
    session: AsyncSession, *, delivery_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[WebhookAttempt]]:
    if not delivery_ids:
        return {}
    rows = await session.execute(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(list(delivery_ids)))
        .order_by(WebhookAttempt.delivery_id, WebhookAttempt.attempt)
    )
    out: dict[uuid.UUID, list[WebhookAttempt]] = {}
    for attempt in rows.scalars():
        out.setdefault(attempt.delivery_id, []).append(attempt)
    return out


async def record_attempt(
    session: AsyncSession,
    *,
    delivery_id: uuid.UUID,
    attempt: int,
    status_code: int | None,
    latency_ms: float | None,
    response_excerpt: str | None,
    error: str | None,
    outcome: DeliveryStatus,
    at: datetime,
) -> None:
    session.add(
        WebhookAttempt(
            delivery_id=delivery_id,
            attempt=attempt,
            attempted_at=at,
            status_code=status_code,
            latency_ms=latency_ms,
            response_excerpt=response_excerpt,
            error=error,
        )
    )
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(
            attempts=attempt,
            status=outcome,
            last_status_code=status_code,
            last_attempt_at=at,
            delivered_at=at if outcome == DeliveryStatus.succeeded else None,
        )
    )


async def mark_subscription_health(
    session: AsyncSession,
    *,
    subscription_id: uuid.UUID,
    succeeded: bool,
    at: datetime,
    disable_after_s: float,
) -> bool:
    """Track when a subscription started failing; disable it once that is too long ago.
    Returns True when this call disabled it."""
    subscription = await session.get(WebhookSubscription, subscription_id, with_for_update=True)
    if subscription is None:
        return False
    if succeeded:
        subscription.failing_since = None
        return False
    if subscription.failing_since is None:
        subscription.failing_since = at
        return False
    failing_for = (at - subscription.failing_since).total_seconds()
    if subscription.enabled and failing_for >= disable_after_s:
        subscription.enabled = False
        subscription.disabled_reason = (
            f"Disabled at {at.isoformat()}: every delivery since "
            f"{subscription.failing_since.isoformat()} failed ({failing_for / 3600:.1f} hours). "
            "Fix the endpoint, then PATCH enabled=true and redeliver what it missed."
        )
        subscription.version += 1
        return True
    return False


def now() -> datetime:
    return utcnow()
