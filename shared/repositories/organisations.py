from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import Area, AreaType, Organisation
from shared.repositories.base import PageWindow, paginate


async def get(session: AsyncSession, *, organisation_id: uuid.UUID) -> Organisation | None:
    return await session.get(Organisation, organisation_id)


async def get_area(session: AsyncSession, *, code: str) -> Area | None:
    return await session.get(Area, code)


async def find_by(session: AsyncSession, **column_values: Any) -> Organisation | None:
    conditions = [getattr(Organisation, name) == value for name, value in column_values.items()]
    query = select(Organisation).where(*conditions).limit(1)
    return (await session.execute(query)).scalar_one_or_none()


async def add(session: AsyncSession, organisation: Organisation) -> Organisation:
    session.add(organisation)
    await session.flush()
    return organisation


async def delete(session: AsyncSession, organisation: Organisation) -> None:
    await session.delete(organisation)
    await session.flush()


def in_area(area: Area) -> ColumnElement[bool] | None:
    """Organisations in an area: its LAD's, its ICB's or England's; None for other area types."""
    if area.type == AreaType.lad:
        return Organisation.home_lad_code == area.code
    if area.type == AreaType.icb:
        return Organisation.ics_code == area.code
    if area.type == AreaType.country:
        return true()
    return None


async def count_in_ics(session: AsyncSession, *, ics_code: str) -> int:
    query = select(func.count()).select_from(Organisation).where(Organisation.ics_code == ics_code)
    return int((await session.execute(query)).scalar_one())


def visible_filter(
    *, ics_code: str | None, organisation_id: uuid.UUID | None
) -> ColumnElement[bool]:
    if organisation_id is not None:
        return Organisation.id == organisation_id
    if ics_code is not None:
        return Organisation.ics_code == ics_code
    return true()


async def list_organisations(
    session: AsyncSession,
    *,
    visible: ColumnElement[bool],
    kind: str | None,
    sector: str | None,
    ics_code: str | None,
    lad_code: str | None,
    q: str | None,
    page: PageWindow,
) -> tuple[Sequence[Organisation], int]:
    conditions: list[ColumnElement[bool]] = [visible]
    if kind:
        conditions.append(Organisation.kind == kind)
    if sector:
        conditions.append(Organisation.sector == sector)
    if ics_code:
        conditions.append(Organisation.ics_code == ics_code)
    if lad_code:
        conditions.append(Organisation.home_lad_code == lad_code)
    if q:
        pattern = f"%{q.lower()}%"
        conditions.append(
            or_(
                func.lower(Organisation.name).like(pattern),
                func.lower(func.coalesce(Organisation.ods_code, "")).like(pattern),
            )
        )
    query = select(Organisation).where(*conditions).order_by(Organisation.name, Organisation.id)
    return await paginate(session, query, page)
