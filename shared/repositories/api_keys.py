from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import ApiKey, Organisation


async def get_by_prefix(session: AsyncSession, *, prefix: str) -> ApiKey | None:
    result = await session.execute(select(ApiKey).where(ApiKey.prefix == prefix))
    return result.scalar_one_or_none()


async def get(session: AsyncSession, *, key_id: uuid.UUID) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


async def add(session: AsyncSession, key: ApiKey) -> ApiKey:
    session.add(key)
    await session.flush()
    return key


async def list_keys(
    session: AsyncSession, *, include_revoked: bool = True, ics_code: str | None = None
) -> Sequence[ApiKey]:
    """Keys, oldest first; `ics_code` keeps the keys bound to that ICS and to its
    organisations."""
    query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if ics_code is not None:
        query = query.outerjoin(Organisation, Organisation.id == ApiKey.organisation_id).where(
            or_(ApiKey.ics_code == ics_code, Organisation.ics_code == ics_code)
        )
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return (await session.execute(query)).scalars().all()


async def touch(session: AsyncSession, *, key_id: uuid.UUID, at: datetime) -> None:
    await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=at))
