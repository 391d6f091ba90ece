"""API keys (only their hashes), and which of them an admin key manages."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, false, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import ApiKey, KeyScope, Organisation
from shared.repositories import organisations
from shared.repositories.base import PageWindow, paginate
from shared.schemas.keys import Principal


def readable_statement(principal: Principal) -> Select[ApiKey]:
    """The keys an admin key manages: every key (a global admin); those bound to its ICS and to
    the organisations it may see (an ICS admin); none for any other key. The list of keys,
    revoking one and the audit trail's events all start here."""
    query = select(ApiKey)
    if not principal.has(KeyScope.admin) or principal.organisation_id is not None:
        return query.where(false())
    if principal.ics_code is None:
        return query
    partners = organisations.readable_statement(principal).with_only_columns(Organisation.id)
    return query.where(
        or_(ApiKey.ics_code == principal.ics_code, ApiKey.organisation_id.in_(partners))
    )


async def get_by_prefix(session: AsyncSession, *, prefix: str) -> ApiKey | None:
    result = await session.execute(select(ApiKey).where(ApiKey.prefix == prefix))
    return result.scalar_one_or_none()


async def get(session: AsyncSession, *, key_id: uuid.UUID) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


async def get_readable(
    session: AsyncSession, *, principal: Principal, key_id: uuid.UUID
) -> ApiKey | None:
    query = readable_statement(principal).where(ApiKey.id == key_id)
    return (await session.execute(query)).scalar_one_or_none()


async def add(session: AsyncSession, key: ApiKey) -> ApiKey:
    session.add(key)
    await session.flush()
    return key


async def list_keys(session: AsyncSession, *, include_revoked: bool = True) -> Sequence[ApiKey]:
    """Every key, oldest first (the operator's view at the command line)."""
    query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return (await session.execute(query)).scalars().all()


async def list_readable(
    session: AsyncSession, *, principal: Principal, page: PageWindow
) -> tuple[Sequence[ApiKey], int]:
    """A page of the keys the key manages, oldest first, and their total."""
    query = readable_statement(principal).order_by(ApiKey.created_at, ApiKey.id)
    return await paginate(session, query, page)


async def touch(session: AsyncSession, *, key_id: uuid.UUID, at: datetime) -> None:
    await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=at))
