"""What every repository shares: paging a list query."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


class PageWindow(Protocol):
    """Which slice of a list to read: the API's page parameters satisfy it."""

    @property
    def offset(self) -> int: ...

    @property
    def limit(self) -> int: ...


async def count(session: AsyncSession, statement: Select[*tuple[Any, ...]]) -> int:
    """How many rows a query returns over all pages.

    The count is of the statement's own rows (its filters, joins and DISTINCT), without its
    ordering or loader options, so a list and its count can never disagree.
    """
    counted: Select[Any] = select(func.count()).select_from(statement.order_by(None).subquery())
    return int((await session.execute(counted)).scalar_one())


async def paginate(
    session: AsyncSession, statement: Select[T], page: PageWindow
) -> tuple[Sequence[T], int]:
    """One page of an ordered one-entity query, and how many rows match over all pages."""
    total = await count(session, statement)
    rows = await session.execute(statement.offset(page.offset).limit(page.limit))
    return rows.scalars().all(), total


async def paginate_rows(
    session: AsyncSession, statement: Select[*tuple[Any, ...]], page: PageWindow
) -> tuple[list[tuple[Any, ...]], int]:
    """One page of an ordered query of several columns, as plain tuples, and the same total
    as `paginate`. The rows are read through the connection: a table of figures needs no
    ORM identity map."""
    total = await count(session, statement)
    connection = await session.connection()
    rows = await connection.execute(statement.offset(page.offset).limit(page.limit))
    return [tuple(row) for row in rows.all()], total
