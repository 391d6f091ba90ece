"""Webhook events: what happened, who may hear of it, and the deliveries it creates.

emit() runs inside the transaction of the change it reports: it writes one delivery per
matching, enabled subscription and one outbox row per delivery, so nothing is sent unless the
change commits, and everything committed is sent (after the commit, or by the relay's timer).

A subscription only receives events its owner's key could read:
- an ICS-owned subscription: events of its ICS, and England projection runs (which every
  ICS key may read);
- an organisation-owned subscription: events about that organisation (its returns and
  imports, agreements it is a party to and their deployments).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.jobs import JobName, deliver_webhook_job_id
from shared.models import ProjectionRun, WebhookDelivery
from shared.repositories import outbox
from shared.repositories import webhooks as repo


class EventType(StrEnum):
    projection_succeeded = "projection.succeeded"
    projection_failed = "projection.failed"
    projection_stale = "projection.stale"
    return_accepted = "return.accepted"
    return_superseded = "return.superseded"
    import_succeeded = "import.succeeded"
    import_failed = "import.failed"
    agreement_activated = "agreement.activated"
    agreement_suspended = "agreement.suspended"
    agreement_terminated = "agreement.terminated"
    deployment_created = "deployment.created"
    deployment_ended = "deployment.ended"


EVENT_TYPES: tuple[str, ...] = tuple(event.value for event in EventType)


@dataclass(frozen=True)
class Audience:
    """Who may read what an event is about: an ICS, organisations, or (every_ics) anything
    every ICS may read, such as an England projection run."""

    ics_code: str | None
    organisation_ids: tuple[uuid.UUID, ...] = field(default_factory=tuple)
    every_ics: bool = False


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def emit(
    session: AsyncSession, event_type: EventType, *, audience: Audience, data: dict[str, Any]
) -> list[WebhookDelivery]:
    """Queue the event for every enabled subscription that wants it and may read it."""
    subscriptions = await repo.audience_subscriptions(
        session,
        ics_code=audience.ics_code,
        organisation_ids=list(audience.organisation_ids),
        every_ics=audience.every_ics,
    )
    payload = {
        "type": event_type.value,
        "timestamp": datetime.now(UTC).isoformat(),
        "data": _json_ready(data),
    }
    deliveries = []
    for subscription in subscriptions:
        if event_type.value not in subscription.event_types:
            continue
        delivery = await repo.add_delivery(
            session, subscription_id=subscription.id, event_type=event_type.value, payload=payload
        )
        await outbox.add(
            session,
            job_name=JobName.deliver_webhook,
            job_id=deliver_webhook_job_id(delivery.id, 0),
            payload={"delivery_id": str(delivery.id)},
        )
        deliveries.append(delivery)
    return deliveries


async def projection_event(
    session: AsyncSession, event_type: EventType, run: ProjectionRun, **extra: Any
) -> list[WebhookDelivery]:
    """A run succeeded, failed or went stale: heard by its ICS (every ICS for England)."""
    data = {
        "run_id": run.id,
        "scope": run.scope,
        "scenario": run.scenario_name,
        "scenario_version": run.scenario_version,
        "base_year": run.base_year,
        "horizon": run.horizon,
        "links": {
            "run": f"/v1/projections/{run.id}",
            "results": f"/v1/projections/{run.id}/results",
        },
        **extra,
    }
    audience = Audience(ics_code=run.ics_code, every_ics=run.ics_code is None)
    return await emit(session, event_type, audience=audience, data=data)


async def return_events(
    session: AsyncSession,
    *,
    return_id: uuid.UUID,
    organisation_id: uuid.UUID,
    ics_code: str | None,
    as_at: Any,
    version: int,
    superseded_id: uuid.UUID | None,
) -> None:
    """return.accepted, and return.superseded for the version it replaces."""
    audience = Audience(ics_code=ics_code, organisation_ids=(organisation_id,))
    common = {"organisation_id": organisation_id, "as_at": str(as_at)}
    await emit(
        session,
        EventType.return_accepted,
        audience=audience,
        data={
            "return_id": return_id,
            "version": version,
            **common,
            "links": {"return": f"/v1/returns/{return_id}"},
        },
    )
    if superseded_id is not None:
        await emit(
            session,
            EventType.return_superseded,
            audience=audience,
            data={
                "return_id": superseded_id,
                "version": version - 1,
                "superseded_by": return_id,
                **common,
                "links": {"diff": f"/v1/returns/{return_id}/diff"},
            },
        )


async def import_event(
    session: AsyncSession,
    event_type: EventType,
    *,
    import_id: uuid.UUID,
    ics_code: str | None,
    **data: Any,
) -> None:
    """A bulk import of returns ended (succeeded or failed): heard by its ICS."""
    await emit(
        session,
        event_type,
        audience=Audience(ics_code=ics_code),
        data={"import_id": import_id, "ics_code": ics_code, **data},
    )
