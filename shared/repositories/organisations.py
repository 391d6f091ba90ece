"""The register of organisations, and which of them a key may see."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import Area, AreaType, Organisation
from shared.repositories.base import PageWindow, paginate
from shared.schemas.keys import Principal


def readable_statement(principal: Principal) -> Select[Organisation]:
    """The organisations a key may see: its own (an organisation's key), its ICS's (an ICS
    key), every one (a global key). Every read of an organisation on a key's behalf starts
    here, so a list never shows what a read would answer 404 for."""
    query = select(Organisation)
    if principal.organisation_id is not None:
        return query.where(Organisation.id == principal.organisation_id)
    if principal.ics_code is not None:
        return query.where(Organisation.ics_code == principal.ics_code)
    return query


async def get(session: AsyncSession, *, organisation_id: uuid.UUID) -> Organisation | None:
    return await session.get(Organisation, organisation_id)


async def get_readable(
    session: AsyncSession, *, principal: Principal, organisation_id: uuid.UUID
) -> Organisation | None:
    query = readable_statement(principal).where(Organisation.id == organisation_id)
    return (await session.execute(query)).scalar_one_or_none()


async def readable_by_id(
    session: AsyncSession, *, principal: Principal, organisation_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Organisation]:
    """Those of the organisations the key may see, by id (the others are simply absent)."""
    query = readable_statement(principal).where(Organisation.id.in_(list(organisation_ids)))
    return {row.id: row for row in (await session.execute(query)).scalars().all()}


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


async def list_organisations(
    session: AsyncSession,
    *,
    principal: Principal,
    kind: str | None,
    sector: str | None,
    ics_code: str | None,
    lad_code: str | None,
    q: str | None,
    page: PageWindow,
) -> tuple[Sequence[Organisation], int]:
    conditions: list[ColumnElement[bool]] = []
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
    query = (
        readable_statement(principal)
        .where(*conditions)
        .order_by(Organisation.name, Organisation.id)
    )
    return await paginate(session, query, page)
