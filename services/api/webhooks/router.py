"""Webhook subscriptions (admin keys of an ICS or an organisation) and their delivery log."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from services.api.deps import AdminKey, SessionDep, SettingsDep
from services.api.http import PageDep
from services.api.openapi import raises
from services.api.webhooks import service
from services.domain.webhooks.errors import (
    DeliveryNotFound,
    UnknownEventType,
    WebhookNotFound,
    WebhookOwnerInvalid,
    WebhookUrlForbidden,
    WebhookUrlNotHttps,
    WebhookUrlUnresolvable,
)
from services.domain.webhooks.events import EVENT_TYPES
from shared.repositories import webhooks as repo
from shared.schemas.common import Page
from shared.schemas.webhooks import (
    WebhookAttemptRead,
    WebhookCreate,
    WebhookDeliveryRead,
    WebhookRead,
    WebhookRotate,
    WebhookUpdate,
    WebhookWithSecret,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

_URL_ERRORS = (WebhookUrlNotHttps, WebhookUrlForbidden, WebhookUrlUnresolvable, UnknownEventType)
_EVENTS = ", ".join(f"`{name}`" for name in EVENT_TYPES)


@router.post(
    "",
    status_code=201,
    response_model=WebhookWithSecret,
    responses=raises(*_URL_ERRORS, WebhookOwnerInvalid),
    summary="Subscribe an HTTPS endpoint to events; the signing secret is shown once",
    description=(
        f"Events: {_EVENTS}. Each POST is signed with the Standard Webhooks scheme "
        "(`webhook-id`, `webhook-timestamp`, `webhook-signature`, HMAC-SHA256). A subscriber "
        "receives only events about what its owner's key could read. URLs must be https and "
        "resolve to public addresses."
    ),
)
async def create_webhook(
    data: WebhookCreate,
    session: SessionDep,
    principal: AdminKey,
    settings: SettingsDep,
    response: Response,
) -> WebhookWithSecret:
    subscription = await service.create(session, principal=principal, data=data, settings=settings)
    response.headers["Location"] = f"/v1/webhooks/{subscription.id}"
    return WebhookWithSecret.model_validate(subscription)


@router.get("", response_model=Page[WebhookRead], summary="The subscriptions the key manages")
async def list_webhooks(
    session: SessionDep, principal: AdminKey, page: PageDep
) -> Page[WebhookRead]:
    items, total = await repo.list_page(session, principal=principal, page=page)
    return page.result([WebhookRead.model_validate(item) for item in items], total)


@router.get(
    "/{webhook_id}",
    response_model=WebhookRead,
    responses=raises(WebhookNotFound),
    summary="One subscription",
)
async def get_webhook(
    webhook_id: uuid.UUID, session: SessionDep, principal: AdminKey
) -> WebhookRead:
    return WebhookRead.model_validate(await service.visible(session, principal, webhook_id))


@router.patch(
    "/{webhook_id}",
    response_model=WebhookRead,
    responses=raises(WebhookNotFound, *_URL_ERRORS),
    summary="Change the URL, event types or description; enable or disable",
)
async def update_webhook(
    webhook_id: uuid.UUID,
    data: WebhookUpdate,
    session: SessionDep,
    principal: AdminKey,
    settings: SettingsDep,
) -> WebhookRead:
    subscription = await service.update(
        session, principal=principal, subscription_id=webhook_id, data=data, settings=settings
    )
    return WebhookRead.model_validate(subscription)


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=WebhookWithSecret,
    responses=raises(WebhookNotFound),
    summary="A new signing secret (shown once); the old one also signs for a grace period",
)
async def rotate_webhook_secret(
    webhook_id: uuid.UUID,
    session: SessionDep,
    principal: AdminKey,
    settings: SettingsDep,
    data: WebhookRotate | None = None,
) -> WebhookWithSecret:
    subscription = await service.rotate(
        session,
        principal=principal,
        subscription_id=webhook_id,
        data=data or WebhookRotate(),
        settings=settings,
    )
    return WebhookWithSecret.model_validate(subscription)


@router.delete(
    "/{webhook_id}",
    status_code=204,
    responses=raises(WebhookNotFound),
    summary="Delete a subscription and its log",
)
async def delete_webhook(
    webhook_id: uuid.UUID, session: SessionDep, principal: AdminKey
) -> Response:
    await service.delete(session, principal=principal, subscription_id=webhook_id)
    return Response(status_code=204)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=Page[WebhookDeliveryRead],
    responses=raises(WebhookNotFound),
    summary="The delivery log: each event sent, newest first, with every attempt",
)
async def list_deliveries(
    webhook_id: uuid.UUID,
    session: SessionDep,
    principal: AdminKey,
    page: PageDep,
    status: Annotated[Literal["pending", "succeeded", "failed"] | None, Query()] = None,
) -> Page[WebhookDeliveryRead]:
    subscription = await service.visible(session, principal, webhook_id)
    deliveries, total = await repo.list_deliveries(
        session,
        subscription_id=subscription.id,
        status=status,
        page=page,
    )
    attempts = await repo.attempts_of(session, delivery_ids=[d.id for d in deliveries])
    return page.result(
        [
            WebhookDeliveryRead(
                id=d.id,
                event_type=d.event_type,
                status=d.status,
                attempts=d.attempts,
                redeliveries=d.redeliveries,
                last_status_code=d.last_status_code,
                last_attempt_at=d.last_attempt_at,
                delivered_at=d.delivered_at,
                created_at=d.created_at,
                payload=dict(d.payload),
                attempt_log=[WebhookAttemptRead.model_validate(a) for a in attempts.get(d.id, [])],
            )
            for d in deliveries
        ],
        total,
    )


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    responses=raises(WebhookNotFound, DeliveryNotFound),
    summary="Send a delivery again (same webhook-id)",
)
async def redeliver(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, session: SessionDep, principal: AdminKey
) -> Response:
    delivery = await service.redeliver(
        session, principal=principal, subscription_id=webhook_id, delivery_id=delivery_id
    )
    return Response(
        status_code=202,
        headers={
            "Location": f"/v1/webhooks/{webhook_id}/deliveries?status=pending",
            "Retry-After": "2",
            "X-Delivery-Id": str(delivery.id),
        },
    )
