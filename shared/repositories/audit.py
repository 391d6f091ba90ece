from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.context import request_id_var
from shared.models import ApiKey, AuditEvent, Organisation
from shared.repositories.base import PageWindow, paginate


async def record(
    session: AsyncSession,
    *,
    key_id: uuid.UUID | None,
    actor: str,
    action: str,
    resource_type: str,
    resource_id: str,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        key_id=key_id,
        actor=actor,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        request_id=request_id_var.get(),
        detail=detail,
    )
    session.add(event)
    await session.flush()
    return event


async def list_events(
    session: AsyncSession,
    *,
    ics_code: str | None,
    key_id: uuid.UUID | None = None,
    actor: str | None = None,
    action: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    page: PageWindow,
) -> tuple[Sequence[AuditEvent], int]:
    """Events newest first, filtered, with the total; `ics_code` keeps only events made by
    keys of that ICS: keys bound to it and keys of its organisations."""
    query = select(AuditEvent)
    if ics_code is not None:
        query = (
            query.join(ApiKey, ApiKey.id == AuditEvent.key_id)
            .outerjoin(Organisation, Organisation.id == ApiKey.organisation_id)
            .where(or_(ApiKey.ics_code == ics_code, Organisation.ics_code == ics_code))
        )
    conditions = {
        AuditEvent.key_id: key_id,
        AuditEvent.actor: actor,
        AuditEvent.action: action,
        AuditEvent.resource_type: resource_type,
        AuditEvent.resource_id: resource_id,
    }
    for column, value in conditions.items():
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    return await paginate(session, query.order_by(AuditEvent.at.desc(), AuditEvent.id), page)
