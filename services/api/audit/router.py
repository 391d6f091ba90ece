"""The audit trail: every write, readable by admins; an ICS admin reads its own ICS's."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from services.api.deps import AdminKey, SessionDep
from services.api.http import PageDep
from shared.repositories import audit as repo
from shared.schemas.audit import AuditEventRead
from shared.schemas.common import Page

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get(
    "",
    response_model=Page[AuditEventRead],
    summary="Audit events, newest first (admin; an ICS admin sees its ICS's keys' events)",
)
async def list_audit_events(
    session: SessionDep,
    principal: AdminKey,
    page: PageDep,
    key_id: Annotated[uuid.UUID | None, Query(description="The key that acted")] = None,
    actor: Annotated[
        str | None, Query(min_length=1, max_length=200, description="key:<name>")
    ] = None,
    action: Annotated[
        str | None, Query(min_length=1, max_length=100, description="e.g. scenario.create")
    ] = None,
    resource_type: Annotated[str | None, Query(min_length=1, max_length=50)] = None,
    resource_id: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    since: Annotated[datetime | None, Query(description="At or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="Before (ISO 8601)")] = None,
) -> Page[AuditEventRead]:
    rows, total = await repo.list_events(
        session,
        principal=principal,
        key_id=key_id,
        actor=actor,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        since=since,
        until=until,
        page=page,
    )
    return page.result([AuditEventRead.model_validate(row) for row in rows], total)
