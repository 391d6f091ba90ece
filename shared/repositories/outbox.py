from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.context import request_id_var
from shared.db.base import utcnow
from shared.models import OutboxMessage

PENDING_KEY = "outbox_pending"


def _with_request_id(payload: dict[str, Any], request_id: str | None) -> dict[str, Any]:
    """The payload naming the request that caused the job, so the job's log lines name it."""
    if request_id and not payload.get("request_id"):
        return {**payload, "request_id": request_id}
    return payload


async def add(
    session: AsyncSession,
    *,
    job_name: str,
    job_id: str,
    payload: dict[str, Any],
    defer_s: float = 0.0,
) -> OutboxMessage:
    message = OutboxMessage(
        job_name=job_name,
        job_id=job_id,
        payload=_with_request_id(payload, request_id_var.get()),
        defer_s=defer_s,
    )
    session.add(message)
    await session.flush()
    # Remembered on the session so the edge can send it right after the commit.
    session.info.setdefault(PENDING_KEY, []).append(message.id)
    return message


async def add_many(
    session: AsyncSession, *, job_name: str, jobs: Sequence[tuple[str, dict[str, Any]]]
) -> list[uuid.UUID]:
    """add() for many jobs of one kind, (job id, payload) each, in one statement batch."""
    if not jobs:
        return []
    request_id = request_id_var.get()
    now = utcnow()
    ids = [uuid.uuid4() for _ in jobs]
    rows = [
        {
            "id": message_id,
            "job_name": job_name,
            "job_id": job_id,
            "payload": _with_request_id(payload, request_id),
            "defer_s": 0.0,
            "created_at": now,
        }
        for message_id, (job_id, payload) in zip(ids, jobs, strict=True)
    ]
    await session.execute(insert(OutboxMessage), rows)
    session.info.setdefault(PENDING_KEY, []).extend(ids)
    return ids


def take_pending(session: AsyncSession) -> list[uuid.UUID]:
    pending: list[uuid.UUID] = session.info.pop(PENDING_KEY, [])
    return pending


async def claim_unsent(
    session: AsyncSession,
    *,
    ids: Sequence[uuid.UUID] | None = None,
    older_than: datetime | None = None,
    limit: int = 100,
) -> Sequence[OutboxMessage]:
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None))
        .order_by(OutboxMessage.created_at)
        .limit(limit)
        # Several API replicas may relay at once; each row goes to one of them.
        .with_for_update(skip_locked=True)
    )
    if ids is not None:
        query = query.where(OutboxMessage.id.in_(list(ids)))
    if older_than is not None:
        query = query.where(OutboxMessage.created_at <= older_than)
    return (await session.execute(query)).scalars().all()


async def mark_sent(session: AsyncSession, *, message_id: uuid.UUID) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(sent_at=utcnow(), send_attempts=OutboxMessage.send_attempts + 1, last_error=None)
    )


async def mark_failed(session: AsyncSession, *, message_id: uuid.UUID, error: str) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(send_attempts=OutboxMessage.send_attempts + 1, last_error=error[:2000])
    )


def stale_cutoff(seconds: float) -> datetime:
    return utcnow() - timedelta(seconds=seconds)


async def backlog(session: AsyncSession) -> tuple[int, datetime | None]:
    """How many rows are unsent, and when the oldest of them was written."""
    row = (
        await session.execute(
            select(func.count(), func.min(OutboxMessage.created_at)).where(
                OutboxMessage.sent_at.is_(None)
            )
        )
    ).one()
    return int(row[0]), row[1]


async def sent_before(
    session: AsyncSession, *, job_ids: Sequence[str], cutoff: datetime
) -> Sequence[OutboxMessage]:
    """These jobs' rows that were sent before the cut-off, locked for one reconciler."""
    if not job_ids:
        return []
    query = (
        select(OutboxMessage)
        .where(
            OutboxMessage.job_id.in_(list(job_ids)),
            OutboxMessage.sent_at.is_not(None),
            OutboxMessage.sent_at < cutoff,
        )
        .order_by(OutboxMessage.created_at)
        .with_for_update(skip_locked=True)
    )
    return (await session.execute(query)).scalars().all()


async def mark_unsent(
    session: AsyncSession, *, message_ids: Sequence[uuid.UUID], note: str
) -> None:
    """The queue lost these jobs: the relay sends them again."""
    if not message_ids:
        return
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(list(message_ids)))
        .values(sent_at=None, last_error=note[:2000])
    )
