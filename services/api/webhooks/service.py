"""Webhook subscriptions: who may manage which, create, change, rotate, delete, redeliver."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.domain.webhooks import errors, signing, urls
from services.domain.webhooks.events import EVENT_TYPES
from shared.config import Settings
from shared.errors import FieldErrors
from shared.jobs import JobName, deliver_webhook_job_id
from shared.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from shared.repositories import areas as areas_repo
from shared.repositories import audit, outbox
from shared.repositories import organisations as organisations_repo
from shared.repositories import webhooks as repo
from shared.schemas.keys import Principal
from shared.schemas.webhooks import WebhookCreate, WebhookRotate, WebhookUpdate


def _check_event_types(event_types: list[str]) -> list[str]:
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        problems = FieldErrors()
        for name in unknown:
            problems.add(errors.UnknownEventType, "event_types", f"unknown event type {name!r}")
        raise errors.UnknownEventType(
            f"Unknown event types: {', '.join(unknown)}.",
            errors=problems.errors,
            known_event_types=list(EVENT_TYPES),
        )
    return sorted(set(event_types))


async def _owner(
    session: AsyncSession, principal: Principal, data: WebhookCreate
) -> tuple[str | None, uuid.UUID | None]:
    """The subscription's owner: given in the body or the key's own binding, and within it."""
    ics_code = data.ics_code
    organisation_id = data.organisation_id
    if ics_code is None and organisation_id is None:
        ics_code, organisation_id = principal.ics_code, principal.organisation_id
    if (ics_code is None) == (organisation_id is None):
        raise errors.WebhookOwnerInvalid(
            "A subscription is owned by one ICS or one organisation: give ics_code or "
            "organisation_id.",
            field="ics_code",
        )
    if ics_code is not None:
        area = await areas_repo.get(session, code=ics_code)
        if area is None or area.type != "icb":
            raise errors.WebhookOwnerInvalid(f"{ics_code} is not an ICB.", field="ics_code")
        if principal.organisation_id is not None or principal.ics_code not in (None, ics_code):
            raise errors.WebhookOwnerInvalid(
                "The key may only create subscriptions for its own ICS.", field="ics_code"
            )
        return ics_code, None
    assert organisation_id is not None
    organisation = await organisations_repo.get_readable(
        session, principal=principal, organisation_id=organisation_id
    )
    if organisation is None:
        raise errors.WebhookOwnerInvalid(
            "No such organisation among those the key manages.", field="organisation_id"
        )
    return None, organisation.id


async def visible(
    session: AsyncSession, principal: Principal, subscription_id: uuid.UUID, *, lock: bool = False
) -> WebhookSubscription:
    subscription = await repo.get(
        session, principal=principal, subscription_id=subscription_id, lock=lock
    )
    if subscription is None:
        raise errors.WebhookNotFound("No such webhook subscription.")
    return subscription


async def _audit(
    session: AsyncSession, principal: Principal, action: str, subscription: WebhookSubscription
) -> None:
    await audit.record(
        session,
        key_id=principal.key_id,
        actor=principal.actor,
        action=f"webhook.{action}",
        resource_type="webhook",
        resource_id=str(subscription.id),
        detail={"url": subscription.url, "event_types": list(subscription.event_types)},
    )


async def create(
    session: AsyncSession, *, principal: Principal, data: WebhookCreate, settings: Settings
) -> WebhookSubscription:
    event_types = _check_event_types(data.event_types)
    await urls.check_url(data.url, settings)
    ics_code, organisation_id = await _owner(session, principal, data)
    subscription = await repo.add(
        session,
        WebhookSubscription(
            ics_code=ics_code,
            organisation_id=organisation_id,
            url=data.url,
            event_types=event_types,
            description=data.description,
            secret=signing.new_secret(),
            created_by_key_id=principal.key_id,
        ),
    )
    await _audit(session, principal, "create", subscription)
    return subscription


async def update(
    session: AsyncSession,
    *,
    principal: Principal,
    subscription_id: uuid.UUID,
    data: WebhookUpdate,
    settings: Settings,
) -> WebhookSubscription:
    subscription = await visible(session, principal, subscription_id, lock=True)
    changes = data.model_dump(exclude_unset=True)
    if changes.get("event_types") is not None:
        changes["event_types"] = _check_event_types(changes["event_types"])
    if changes.get("url") is not None:
        await urls.check_url(changes["url"], settings)
    for name in ("url", "event_types"):
        if name in changes and changes[name] is None:
            del changes[name]
    if changes.get("enabled") is True and not subscription.enabled:
        subscription.disabled_reason = None
        subscription.failing_since = None
    if changes.get("enabled") is False and subscription.enabled:
        subscription.disabled_reason = f"Disabled by {principal.actor}."
    for name, value in changes.items():
        if value is not None or name == "description":
            setattr(subscription, name, value)
    subscription.version += 1
    await session.flush()
    await _audit(session, principal, "update", subscription)
    return subscription


async def rotate(
    session: AsyncSession,
    *,
    principal: Principal,
    subscription_id: uuid.UUID,
    data: WebhookRotate,
    settings: Settings,
) -> WebhookSubscription:
    """A new secret; the old one also signs for the grace period, so receivers can switch."""
    subscription = await visible(session, principal, subscription_id, lock=True)
    grace = settings.webhook_secret_grace_s if data.grace_seconds is None else data.grace_seconds
    subscription.previous_secret = subscription.secret if grace > 0 else None
    subscription.previous_secret_expires_at = (
        repo.now() + timedelta(seconds=grace) if grace > 0 else None
    )
    subscription.secret = signing.new_secret()
    subscription.version += 1
    await session.flush()
    await _audit(session, principal, "rotate_secret", subscription)
    return subscription


async def delete(
    session: AsyncSession, *, principal: Principal, subscription_id: uuid.UUID
) -> None:
    subscription = await visible(session, principal, subscription_id, lock=True)
    await _audit(session, principal, "delete", subscription)
    await repo.delete(session, subscription)


async def redeliver(
    session: AsyncSession,
    *,
    principal: Principal,
    subscription_id: uuid.UUID,
    delivery_id: uuid.UUID,
) -> WebhookDelivery:
    """Send a delivery again (same webhook-id, so receivers can tell it is a repeat)."""
    subscription = await visible(session, principal, subscription_id)
    delivery = await repo.get_delivery(
        session, delivery_id=delivery_id, subscription_id=subscription.id
    )
    if delivery is None:
        raise errors.DeliveryNotFound("No such delivery for this subscription.")
    delivery.redeliveries += 1
    delivery.status = DeliveryStatus.pending
    await outbox.add(
        session,
        job_name=JobName.deliver_webhook,
        job_id=deliver_webhook_job_id(delivery.id, delivery.redeliveries),
        payload={"delivery_id": str(delivery.id)},
    )
    await audit.record(
        session,
        key_id=principal.key_id,
        actor=principal.actor,
        action="webhook.redeliver",
        resource_type="webhook_delivery",
        resource_id=str(delivery.id),
    )
    await session.flush()
    return delivery
