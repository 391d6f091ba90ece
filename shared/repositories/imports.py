from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import ReturnImport


async def add(session: AsyncSession, row: ReturnImport) -> ReturnImport:
    session.add(row)
    await session.flush()
    return row


async def get(
    session: AsyncSession, *, import_id: uuid.UUID, lock: bool = False
) -> ReturnImport | None:
    return await session.get(ReturnImport, import_id, with_for_update=lock)


async def update(session: AsyncSession, row: ReturnImport, **values: Any) -> None:
    for name, value in values.items():
        setattr(row, name, value)
    await session.flush()
