"""Revision 0020 turns stored result rows (one per year) into one series per area, role and
measure, with every figure kept in year order, and its downgrade turns them back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.config import Settings
from shared.db import migrate
from shared.db.session import make_engine
from shared.models import ProjectionSeries
from tests.helpers import unavailable

ENV = Settings(_env_file=None)
RUN = uuid.UUID("00000000-0000-0000-0000-0000000000aa")
YEARS = (2025, 2026, 2027)
KEYS = [("E54000008", "care-worker", "gap_fte"), ("E54000008", "all", "demand_fte")]
COLUMNS = "run_id, area_code, role_code, measure, year, principal, p10, p50, p90"


def _figures(k: int, year: int) -> tuple[float, float, float, float]:
    base = k * 100 + year - 2000
    return base + 0.25, base - 1.5, float(base), base + 1.5


def _rows() -> list[tuple[object, ...]]:
    # Newest year first, so a series' order has to come from the year, not the insert order.
    return [
        (*key, year, *_figures(k, year)) for k, key in enumerate(KEYS) for year in reversed(YEARS)
    ]


async def _admin(server: str, sql: str) -> None:
    connection = await asyncpg.connect(server)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
        return
    if not ENV.is_postgres:
        unavailable("DATABASE_URL (PostgreSQL)", why="DATABASE_URL does not name PostgreSQL")
    url = make_url(ENV.database_url)
    name = f"owf_series_{uuid.uuid4().hex[:8]}"
    server = url.set(drivername="postgresql", database="postgres")
    server_url = server.render_as_string(hide_password=False)
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _insert_rows(engine: AsyncEngine) -> None:
    run_id: object = RUN if engine.dialect.name == "postgresql" else RUN.hex
    async with engine.begin() as connection:
        await connection.execute(
            text(
                f"INSERT INTO projection_results ({COLUMNS}) VALUES "
                "(:run, :area, :role, :measure, :year, :principal, :p10, :p50, :p90)"
            ),
            [
                dict(
                    zip(
                        ("area", "role", "measure", "year", "principal", "p10", "p50", "p90"),
                        row,
                        strict=True,
                    ),
                    run=run_id,
                )
                for row in _rows()
            ],
        )


async def test_rows_become_series_in_year_order_and_back(database: str) -> None:
    await asyncio.to_thread(migrate.upgrade, database, "0019")
    engine = make_engine(database)
    try:
        await _insert_rows(engine)
        await engine.dispose()
        await asyncio.to_thread(migrate.upgrade, database, "0020")

        async with engine.connect() as connection:
            stored = (
                await connection.execute(
                    select(ProjectionSeries).order_by(ProjectionSeries.role_code)
                )
            ).all()
        assert len(stored) == len(KEYS)
        for row in stored:
            k = KEYS.index((row.area_code, row.role_code, row.measure))
            assert row.run_id == RUN
            assert row.first_year == YEARS[0]
            expected = [_figures(k, year) for year in YEARS]
            assert [list(row.principal), list(row.p10), list(row.p50), list(row.p90)] == [
                list(column) for column in zip(*expected, strict=True)
            ]
        await engine.dispose()

        await asyncio.to_thread(migrate.downgrade, database, "0019")
        async with engine.connect() as connection:
            back = (
                await connection.execute(
                    text(
                        "SELECT area_code, role_code, measure, year, principal, p10, p50, p90 "
                        "FROM projection_results"
                    )
                )
            ).all()
        assert sorted(tuple(row) for row in back) == sorted(_rows())
    finally:
        await engine.dispose()
