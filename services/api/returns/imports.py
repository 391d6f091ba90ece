"""Bulk return imports: accept a streamed CSV (202), then validate and load it as a job."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession

from services.domain.returns import importer as returns_import
from services.domain.returns.errors import ImportNotFound
from services.domain.returns.lines import DEFAULT_MAX_LINE_BYTES
from shared.jobs import ImportReturnsPayload, JobName, import_returns_job_id
from shared.models import ImportStatus, ReturnImport
from shared.repositories import audit, imports, outbox
from shared.schemas.keys import Principal


async def accept(
    session: AsyncSession,
    chunks: AsyncIterator[bytes],
    *,
    principal: Principal,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> ReturnImport:
    """Stage the upload and queue its validation; nothing reaches the returns tables yet."""
    import_id = uuid.uuid4()
    started = time.perf_counter()
    lines = await returns_import.stage(
        session, chunks, import_id=import_id, max_line_bytes=max_line_bytes
    )
    row = await imports.add(
        session,
        ReturnImport(
            id=import_id,
            status=ImportStatus.queued,
            submitted_by_key_id=principal.key_id,
            ics_code=principal.ics_code,
            line_count=lines,
            timings={"stage_s": round(time.perf_counter() - started, 3)},
        ),
    )
    await outbox.add(
        session,
        job_name=JobName.import_returns,
        job_id=import_returns_job_id(import_id),
        payload=ImportReturnsPayload(import_id=import_id).model_dump(mode="json"),
    )
    await audit.record(
        session,
        key_id=principal.key_id,
        actor=principal.actor,
        action="returns.import.accept",
        resource_type="return_import",
        resource_id=str(import_id),
        detail={"lines": lines},
    )
    return row


async def get_visible(
    session: AsyncSession, *, principal: Principal, import_id: uuid.UUID
) -> ReturnImport:
    row = await imports.get_readable(session, principal=principal, import_id=import_id)
    if row is None:
        raise ImportNotFound("No such import.")
    return row
