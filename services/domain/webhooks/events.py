"""Webhook events: what happened, who may hear of it, and the deliveries it creates.

emit() runs inside the transaction of the change it reports: it writes one delivery per
matching, enabled subscription and one outbox row per delivery, so nothing is sent unless the
change commits, and everything committed is sent (after the commit, or by the relay's timer).

A subscription only receives events its owner's key could read:
- an ICS-owned subscription: events of its ICS, and England projection runs (which every
  ICS key may read);
- an organisation-owned subscription: events about that organisation (its returns,
  agreements it is a party to and their deployments); organisations' keys read no imports.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.jobs import JobName, deliver_webhook_job_id
from shared.models import Agreement, Deployment, ProjectionRun, WebhookSubscription
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


@dataclass(frozen=True)
class Event:
    """One event to announce: its type, who may hear of it and what it says."""

    type: EventType
    audience: Audience
    data: dict[str, Any]


def hears(subscription: WebhookSubscription, audience: Audience) -> bool:
    """Whether the subscription's owner may read what the event is about."""
    if subscription.organisation_id is not None:
        return subscription.organisation_id in audience.organisation_ids
    if subscription.ics_code is None:
        return False
    return audience.every_ics or subscription.ics_code == audience.ics_code


async def emit(
    session: AsyncSession, event_type: EventType, *, audience: Audience, data: dict[str, Any]
) -> int:
    """Queue the event for every enabled subscription that wants it and may read it."""
    return await emit_many(session, [Event(event_type, audience, data)])


async def emit_many(session: AsyncSession, events: Sequence[Event]) -> int:
    """Queue many events at once (a bulk import's returns): one look-up of the subscriptions
    for all of them, then every delivery and its outbox row in one statement batch each.
    Returns how many deliveries it queued."""
    if not events:
        return 0
    wanted = {event.type.value for event in events}
    subscriptions = [
        subscription
        for subscription in await repo.audience_subscriptions(
            session,
            ics_codes=sorted({e.audience.ics_code for e in events if e.audience.ics_code}),
            organisation_ids=[o for e in events for o in e.audience.organisation_ids],
            every_ics=any(event.audience.every_ics for event in events),
        )
        if wanted.intersection(subscription.event_types)
    ]
    if not subscriptions:
        return 0
    timestamp = datetime.now(UTC).isoformat()
    deliveries: list[dict[str, Any]] = []
    for event in events:
        listeners = [
            subscription.id
            for subscription in subscriptions
            if event.type.value in subscription.event_types and hears(subscription, event.audience)
        ]
        if not listeners:
            continue
        payload = {
            "type": event.type.value,
            "timestamp": timestamp,
            "data": _json_ready(event.data),
        }
        deliveries.extend(
            {
                "id": uuid.uuid4(),
                "subscription_id": subscription_id,
                "event_type": event.type.value,
                "payload": payload,
            }
            for subscription_id in listeners
        )
    await repo.add_deliveries(session, deliveries)
    await outbox.add_many(
        session,
        job_name=JobName.deliver_webhook,
        jobs=[
            (deliver_webhook_job_id(row["id"], 0), {"delivery_id": str(row["id"])})
            for row in deliveries
        ],
    )
    return len(deliveries)


def agreement_event_of(
    event_type: EventType,
    resource: Agreement | Deployment,
    agreement: Agreement,
    *,
    resumed: bool = False,
    expired: bool = False,
) -> Event:
    """An agreement's or a deployment's event (the agreement's parties loaded): heard by the
    agreement's ICS and its parties, who may all read the agreement and its deployments.

    `resumed` tells a resumed agreement.activated from a first activation; `expired` an
    agreement.terminated sent because the end date passed from one sent on termination."""
    data: dict[str, Any]
    if isinstance(resource, Agreement):
        data = {
            "agreement_id": resource.id,
            "title": resource.title,
            "status": "expired" if expired else str(resource.status),
            "links": {"agreement": f"/v1/agreements/{resource.id}"},
        }
        if event_type == EventType.agreement_activated:
            data["resumed"] = resumed
        if event_type == EventType.agreement_terminated:
            data["expired"] = expired
            data["end_date"] = resource.end_date.isoformat()
    else:
        data = _deployment_data(resource, ended=event_type == EventType.deployment_ended)
    audience = Audience(
        ics_code=agreement.ics_code,
        organisation_ids=tuple(party.organisation_id for party in agreement.parties),
    )
    return Event(event_type, audience, data)


def _deployment_data(deployment: Deployment, *, ended: bool) -> dict[str, Any]:
    early = deployment.ended_early_on
    return {
        "deployment_id": deployment.id,
        "agreement_id": deployment.agreement_id,
        "from_organisation_id": deployment.from_organisation_id,
        "to_organisation_id": deployment.to_organisation_id,
        "role_code": deployment.role_code,
        "fte": deployment.fte,
        "start_date": deployment.start_date.isoformat(),
        "end_date": deployment.end_date.isoformat(),
        # A deployment that reached its end date is ended without a change to its stored row.
        "status": "ended" if ended else str(deployment.status),
        "ended_early_on": None if early is None else early.isoformat(),
        "effective_end_date": (early or deployment.end_date).isoformat(),
        "end_reason": deployment.end_reason,
        "links": {
            "deployment": f"/v1/agreements/{deployment.agreement_id}/deployments/{deployment.id}"
        },
    }


def projection_event_of(event_type: EventType, run: ProjectionRun, **extra: Any) -> Event:
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
    return Event(event_type, audience, data)


async def projection_event(
    session: AsyncSession, event_type: EventType, run: ProjectionRun, **extra: Any
) -> int:
    """Queue one run's event (see projection_event_of)."""
    return await emit_many(session, [projection_event_of(event_type, run, **extra)])


async def runs_stale(session: AsyncSession, runs: Sequence[ProjectionRun]) -> int:
    """projection.stale for finished runs whose inputs just changed, queued together."""
    return await emit_many(
        session,
        [
            projection_event_of(EventType.projection_stale, run, status="succeeded", stale=True)
            for run in runs
        ],
    )


async def run_succeeded(session: AsyncSession, run: ProjectionRun) -> int:
    """projection.succeeded; and projection.stale at once when an input changed while the run
    was running (it was marked stale then, before anyone could hear that it had finished)."""
    events = [projection_event_of(EventType.projection_succeeded, run, status="succeeded")]
    if run.stale:
        events.append(
            projection_event_of(EventType.projection_stale, run, status="succeeded", stale=True)
        )
    return await emit_many(session, events)


@dataclass(frozen=True)
class StoredReturn:
    """A return version just stored, and the version it replaced (if any)."""

    return_id: uuid.UUID
    organisation_id: uuid.UUID
    ics_code: str | None
    as_at: date
    version: int
    superseded_id: uuid.UUID | None = None


def return_events_of(stored: StoredReturn) -> list[Event]:
    """return.accepted, and return.superseded for the version it replaces: heard by the
    organisation and its ICS."""
    audience = Audience(ics_code=stored.ics_code, organisation_ids=(stored.organisation_id,))
    common = {"organisation_id": stored.organisation_id, "as_at": stored.as_at.isoformat()}
    events = [
        Event(
            EventType.return_accepted,
            audience,
            {
                "return_id": stored.return_id,
                "version": stored.version,
                **common,
                "links": {"return": f"/v1/returns/{stored.return_id}"},
            },
        )
    ]
    if stored.superseded_id is not None:
        events.append(
            Event(
                EventType.return_superseded,
                audience,
                {
                    "return_id": stored.superseded_id,
                    "version": stored.version - 1,
                    "superseded_by": stored.return_id,
                    **common,
                    "links": {"diff": f"/v1/returns/{stored.return_id}/diff"},
                },
            )
        )
    return events


async def returns_stored(session: AsyncSession, returns: Sequence[StoredReturn]) -> int:
    """The events of one return (a submission) or of thousands (a bulk import), queued in
    bulk; how many deliveries that made."""
    return await emit_many(session, [event for r in returns for event in return_events_of(r)])


@dataclass(frozen=True)
class ImportPart:
    """What a bulk import made with a global key did for one ICS's organisations: the
    organisations its lines named, the returns it stored for them (it succeeded) or the
    problems it reported on their lines (it failed)."""

    ics_code: str
    organisation_ids: tuple[uuid.UUID, ...]
    return_count: int = 0
    error_count: int = 0


async def import_event(
    session: AsyncSession,
    event_type: EventType,
    *,
    import_id: uuid.UUID,
    ics_code: str | None,
    parts: Sequence[ImportPart] = (),
    **data: Any,
) -> None:
    """A bulk import of returns ended (succeeded or failed): heard by its ICS.

    An import made with a global key has no ICS, and only global keys may read it: each ICS
    whose organisations its lines named hears of it instead, with its own `parts` entry only
    (no link to the import, which its key could not read). Organisations' keys read no
    imports, so organisations hear of their returns (return.accepted), not of imports."""
    if ics_code is not None:
        await emit(
            session,
            event_type,
            audience=Audience(ics_code=ics_code),
            data={"import_id": import_id, "ics_code": ics_code, "global_import": False, **data},
        )
        return
    succeeded = event_type == EventType.import_succeeded
    await emit_many(
        session,
        [
            Event(
                event_type,
                Audience(ics_code=part.ics_code),
                {
                    "import_id": import_id,
                    "ics_code": part.ics_code,
                    "global_import": True,
                    "status": data.get("status"),
                    "organisation_ids": list(part.organisation_ids),
                    **(
                        {"return_count": part.return_count}
                        if succeeded
                        else {"error_count": part.error_count}
                    ),
                    "links": {"workforce": f"/v1/areas/{part.ics_code}/workforce"},
                },
            )
            for part in parts
        ],
    )
