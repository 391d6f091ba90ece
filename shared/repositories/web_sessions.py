"""Explorer browser sessions: one row per sign-in, found by the hash of its token."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import ApiKey, WebSession


async def add(session: AsyncSession, web_session: WebSession) -> WebSession:
    session.add(web_session)
    await session.flush()
    return web_session


async def get_with_key(
    session: AsyncSession, *, token_sha256: str
) -> tuple[WebSession, ApiKey] | None:
    """The session with this token hash and the key it acts for, in one query."""
    query = (
        select(WebSession, ApiKey)
        .join(ApiKey, ApiKey.id == WebSession.key_id)
        .where(WebSession.token_sha256 == token_sha256)
    )
    row = (await session.execute(query)).first()
    return None if row is None else (row[0], row[1])


async def end(session: AsyncSession, *, session_id: uuid.UUID, at: datetime) -> None:
    await session.execute(
        update(WebSession)
        .where(WebSession.id == session_id, WebSession.ended_at.is_(None))
        .values(ended_at=at)
    )


async def delete_expired(session: AsyncSession, *, before: datetime) -> int:
    """Forget sessions that expired before this time; returns how many."""
    result = await session.execute(delete(WebSession).where(WebSession.expires_at < before))
    return int(getattr(result, "rowcount", 0) or 0)
