from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.context import request_id_var
from shared.models import ApiKey, AuditEvent, KeyScope
from shared.repositories import api_keys
from shared.repositories.base import PageWindow, paginate
from shared.schemas.keys import Principal


def readable_statement(principal: Principal) -> Select[AuditEvent]:
    """The events an admin key may read: every event, the command line's too (a global admin);
    those made by the keys it manages (an ICS admin: its own ICS's keys and its partners')."""
    query = select(AuditEvent)
    if principal.is_global and principal.has(KeyScope.admin):
        return query
    keys = api_keys.readable_statement(principal).with_only_columns(ApiKey.id)
    return query.where(AuditEvent.key_id.in_(keys))


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
    principal: Principal,
    key_id: uuid.UUID | None = None,
    actor: str | None = None,
    action: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    page: PageWindow,
) -> tuple[Sequence[AuditEvent], int]:
    """The events the key may read, newest first, filtered, with the total."""
    query = readable_statement(principal)
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
