"""Bulk return imports: their rows, their heartbeats, and which of them a key may read."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, false, or_, select
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.base import utcnow
from shared.models import ImportStatus, ReturnImport
from shared.schemas.keys import Principal


def readable_statement(principal: Principal) -> Select[ReturnImport]:
    """The imports a key may read: every one (a global key); those of its ICS (an ICS key);
    none (an organisation's key)."""
    query = select(ReturnImport)
    if principal.organisation_id is not None:
        return query.where(false())
    if principal.ics_code is not None:
        return query.where(ReturnImport.ics_code == principal.ics_code)
    return query


async def add(session: AsyncSession, row: ReturnImport) -> ReturnImport:
    session.add(row)
    await session.flush()
    return row


async def get(
    session: AsyncSession, *, import_id: uuid.UUID, lock: bool = False
) -> ReturnImport | None:
    return await session.get(ReturnImport, import_id, with_for_update=lock, populate_existing=lock)


async def get_readable(
    session: AsyncSession, *, principal: Principal, import_id: uuid.UUID
) -> ReturnImport | None:
    query = readable_statement(principal).where(ReturnImport.id == import_id)
    return (await session.execute(query)).scalar_one_or_none()


async def update(session: AsyncSession, row: ReturnImport, **values: Any) -> None:
    for name, value in values.items():
        setattr(row, name, value)
    await session.flush()


async def beat(session: AsyncSession, *, import_id: uuid.UUID, attempt: int) -> bool:
    """Record that the worker on this attempt is alive; False when the attempt is no longer
    the import's current one (reaped or finished)."""
    result = await session.execute(
        sql_update(ReturnImport)
        .where(
            ReturnImport.id == import_id,
            ReturnImport.attempts == attempt,
            ReturnImport.status == ImportStatus.running,
        )
        .values(heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def stuck(
    session: AsyncSession, *, heartbeat_before: datetime, limit: int = 100
) -> Sequence[ReturnImport]:
    """Running imports whose worker has been silent since the cut-off, locked for the reaper
    (an import whose worker is committing right now is skipped)."""
    query = (
        select(ReturnImport)
        .where(
            ReturnImport.status == ImportStatus.running,
            or_(ReturnImport.heartbeat_at.is_(None), ReturnImport.heartbeat_at < heartbeat_before),
        )
        .order_by(ReturnImport.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.execute(query)).scalars().all()


async def queued(
    session: AsyncSession, *, created_before: datetime, limit: int = 100
) -> Sequence[ReturnImport]:
    """Imports waiting for a worker since before the cut-off."""
    query = (
        select(ReturnImport)
        .where(
            ReturnImport.status == ImportStatus.queued,
            ReturnImport.created_at < created_before,
        )
        .order_by(ReturnImport.created_at)
        .limit(limit)
    )
    return (await session.execute(query)).scalars().all()
