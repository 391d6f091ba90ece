from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.context import request_id_var
from shared.models import AuditEvent


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
