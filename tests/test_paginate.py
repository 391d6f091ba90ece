"""One paging rule for every list: `paginate` returns a page of an ordered query and the total
of the whole query."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.models import Role
from shared.repositories.base import paginate, paginate_rows
from tests.factories import make_role


@dataclass(frozen=True)
class Window:
    offset: int
    limit: int


async def test_a_page_and_the_total_of_the_whole_query(
    sessionmaker: async_sessionmaker[AsyncSession], db: AsyncEngine
) -> None:
    codes = [f"page-role-{n}" for n in range(5)]
    for code in reversed(codes):
        await make_role(sessionmaker, code)
    query = select(Role).where(Role.code.like("page-role-%")).order_by(Role.code)
    async with sessionmaker() as session:
        first, total = await paginate(session, query, Window(offset=0, limit=2))
        last, last_total = await paginate(session, query, Window(offset=4, limit=2))
        beyond, beyond_total = await paginate(session, query, Window(offset=10, limit=2))
        filtered, filtered_total = await paginate(
            session, query.where(Role.code != codes[0]), Window(offset=0, limit=10)
        )
    assert [role.code for role in first] == codes[:2]
    assert [role.code for role in last] == codes[4:]
    assert beyond == []
    assert total == last_total == beyond_total == 5
    assert [role.code for role in filtered] == codes[1:]
    assert filtered_total == 4


async def test_rows_of_several_columns_page_as_tuples_with_the_whole_total(
    sessionmaker: async_sessionmaker[AsyncSession], db: AsyncEngine
) -> None:
    codes = [f"rows-role-{n}" for n in range(3)]
    for n, code in enumerate(codes):
        await make_role(sessionmaker, code, name=f"Role {n}")
    query = select(Role.code, Role.name).where(Role.code.like("rows-role-%")).order_by(Role.code)
    async with sessionmaker() as session:
        middle, total = await paginate_rows(session, query, Window(offset=1, limit=1))
        beyond, beyond_total = await paginate_rows(session, query, Window(offset=5, limit=2))
    assert middle == [(codes[1], "Role 1")]
    assert beyond == []
    assert total == beyond_total == 3
