"""Areas (ONS geography): bulk upsert from the reference data, lookups and filtered lists."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import Area, AreaType
from shared.repositories.base import PageWindow, paginate

AREA_FIELDS = ("code", "name", "type", "parent_code", "nhs_code", "region_code", "region_name")
# Parents before children, so the parent foreign key always points at a row already there.
_TYPE_ORDER = {AreaType.country: 0, AreaType.icb: 1, AreaType.county: 1, AreaType.lad: 2}


async def upsert_changed(session: AsyncSession, *, rows: Sequence[dict[str, Any]]) -> int:
    """Insert missing areas and correct changed ones; rows already right are not written."""
    current = {
        row[0]: tuple(row)
        for row in (
            await session.execute(select(*(getattr(Area, name) for name in AREA_FIELDS)))
        ).all()
    }
    changed = [
        row for row in rows if current.get(row["code"]) != tuple(row[name] for name in AREA_FIELDS)
    ]
    if not changed:
        return 0
    changed.sort(key=lambda row: (_TYPE_ORDER[AreaType(row["type"])], row["code"]))
    connection = await session.connection()
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert(Area)
    statement = statement.on_conflict_do_update(
        index_elements=[Area.code],
        set_={name: statement.excluded[name] for name in AREA_FIELDS if name != "code"},
    )
    # One statement per level keeps each parent committed to the table before its children.
    for level in sorted({_TYPE_ORDER[AreaType(row["type"])] for row in changed}):
        batch = [row for row in changed if _TYPE_ORDER[AreaType(row["type"])] == level]
        await session.execute(statement, batch)
    return len(changed)


async def all_codes(session: AsyncSession) -> set[str]:
    return set((await session.execute(select(Area.code))).scalars().all())


async def count(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(Area))).scalar_one())


async def get(session: AsyncSession, *, code: str) -> Area | None:
    return await session.get(Area, code)


async def children(session: AsyncSession, *, code: str) -> Sequence[Area]:
    query = select(Area).where(Area.parent_code == code).order_by(Area.type, Area.code)
    return (await session.execute(query)).scalars().all()


async def list_areas(
    session: AsyncSession,
    *,
    area_type: AreaType | None = None,
    parent_code: str | None = None,
    name_contains: str | None = None,
    page: PageWindow,
) -> tuple[Sequence[Area], int]:
    """A page of areas matching the filters (name search is case-insensitive), and the total."""
    conditions = []
    if area_type is not None:
        conditions.append(Area.type == area_type)
    if parent_code is not None:
        conditions.append(Area.parent_code == parent_code)
    if name_contains:
        conditions.append(func.lower(Area.name).contains(name_contains.lower(), autoescape=True))
    return await paginate(session, select(Area).where(*conditions).order_by(Area.code), page)


async def lad_codes_in(session: AsyncSession, *, area: Area) -> list[str]:
    """The LADs that make up an area: itself, an ICB's LADs, or every LAD for England."""
    if area.type == AreaType.lad:
        return [area.code]
    query = select(Area.code).where(Area.type == AreaType.lad).order_by(Area.code)
    if area.type == AreaType.icb:
        query = query.where(Area.parent_code == area.code)
    elif area.type != AreaType.country:
        return []
    return list((await session.execute(query)).scalars().all())
