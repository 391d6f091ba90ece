"""Role catalogue queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Column, CursorResult, Table, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.base import Base, utcnow
from shared.models import Role
from shared.repositories.base import PageWindow, paginate


@dataclass(frozen=True)
class CatalogueState:
    """A cheap fingerprint of the whole catalogue: any insert, update or delete changes it."""

    count: int
    version_sum: int
    last_changed_at: datetime | None


async def get(session: AsyncSession, *, code: str, for_update: bool = False) -> Role | None:
    """One role; `for_update` locks the row (PostgreSQL) until the transaction ends."""
    if not for_update:
        return await session.get(Role, code)
    # populate_existing: a copy already in the session must not hide what the locked read saw.
    return await session.get(Role, code, with_for_update=True, populate_existing=True)


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_roles(
    session: AsyncSession,
    *,
    sector: str | None = None,
    staff_group: str | None = None,
    is_new_role: bool | None = None,
    registration_body: str | None = None,
    default_demand_driver: str | None = None,
    q: str | None = None,
    page: PageWindow,
) -> tuple[Sequence[Role], int]:
    """A page of roles matching the filters, ordered by name, and the total that match."""
    conditions: list[Any] = []
    if sector is not None:
        conditions.append(Role.sector == sector)
    if staff_group is not None:
        conditions.append(Role.staff_group == staff_group)
    if is_new_role is not None:
        conditions.append(Role.is_new_role.is_(is_new_role))
    if registration_body is not None:
        conditions.append(Role.registration_body == registration_body)
    if default_demand_driver is not None:
        conditions.append(Role.default_demand_driver == default_demand_driver)
    if q:
        pattern = _like_pattern(q)
        conditions.append(
            or_(
                Role.name.ilike(pattern, escape="\\"),
                Role.description.ilike(pattern, escape="\\"),
                Role.code.ilike(pattern, escape="\\"),
            )
        )
    query = select(Role).where(*conditions).order_by(Role.name, Role.code)
    return await paginate(session, query, page)


async def all_roles(session: AsyncSession) -> Sequence[Role]:
    return (await session.execute(select(Role).order_by(Role.code))).scalars().all()


async def catalogue_state(session: AsyncSession) -> CatalogueState:
    row = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(Role.version), 0),
                func.max(Role.updated_at),
            ).select_from(Role)
        )
    ).one()
    return CatalogueState(count=int(row[0]), version_sum=int(row[1]), last_changed_at=row[2])


async def existing_codes(session: AsyncSession, *, codes: Sequence[str]) -> set[str]:
    if not codes:
        return set()
    result = await session.execute(select(Role.code).where(Role.code.in_(codes)))
    return set(result.scalars().all())


async def add(session: AsyncSession, role: Role) -> Role:
    session.add(role)
    await session.flush()
    return role


async def insert_missing(session: AsyncSession, *, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Insert rows whose code is not there yet; returns the codes actually inserted.

    ON CONFLICT DO NOTHING keeps two seeders racing each other from failing or duplicating.
    """
    if not rows:
        return []
    now = utcnow()
    values = [{"created_at": now, "updated_at": now, "version": 1, **row} for row in rows]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(Role)
        .values(values)
        .on_conflict_do_nothing(index_elements=[Role.code])
        .returning(Role.code)
    )
    return sorted((await session.execute(statement)).scalars().all())


async def update_fields(
    session: AsyncSession,
    *,
    code: str,
    changes: dict[str, Any],
    expected_version: int | None,
) -> bool:
    """Apply changes and bump the version; with an expected version, only if it still holds.

    The version condition sits in the UPDATE itself so two concurrent writers cannot both win.
    """
    statement = (
        update(Role)
        .where(Role.code == code)
        .values(**changes, version=Role.version + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if expected_version is not None:
        statement = statement.where(Role.version == expected_version)
    result = cast(CursorResult[Any], await session.execute(statement))
    return result.rowcount == 1


async def delete_role(session: AsyncSession, *, code: str) -> bool:
    statement = delete(Role).where(Role.code == code).execution_options(synchronize_session=False)
    result = cast(CursorResult[Any], await session.execute(statement))
    return result.rowcount == 1


def referencing_columns() -> list[Column[Any]]:
    """Every column with a foreign key to roles.code, found in the model metadata.

    Tables added later (returns, agreements, deployments) are picked up without code changes.
    """
    roles_table = Role.__table__
    assert isinstance(roles_table, Table)
    columns: list[Column[Any]] = []
    for table in Base.metadata.sorted_tables:
        for foreign_key in table.foreign_keys:
            if foreign_key.references(roles_table) and foreign_key.column is roles_table.c.code:
                columns.append(foreign_key.parent)
    return columns


async def role_usage(session: AsyncSession, code: str) -> dict[str, int]:
    """How many rows of each referencing table use this role; tables with none are left out."""
    usage: dict[str, int] = {}
    for column in referencing_columns():
        count = (
            await session.execute(
                select(func.count()).select_from(column.table).where(column == code)
            )
        ).scalar_one()
        if count:
            name = str(getattr(column.table, "name", column.table))
            usage[name] = usage.get(name, 0) + int(count)
    return dict(sorted(usage.items()))


async def all_codes(session: AsyncSession) -> set[str]:
    """Every role code in the catalogue."""
    return set((await session.execute(select(Role.code))).scalars().all())
