"""Engine and session factories for PostgreSQL (asyncpg) and SQLite (aiosqlite)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the single writer; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    # The driver begins a transaction at the first write, so a transaction that has written
    # holds the write lock and others wait (busy_timeout) instead of failing on a stale read
    # snapshot. Code that must read-then-write atomically writes first (see the repositories).


def json_dumps(value: Any) -> str:
    """JSON columns' serializer: orjson, several times faster than the standard library on
    the float-heavy documents a run writes (an England run's explanations hold about two
    million numbers). Non-string keys become strings, as `json.dumps` makes them."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY).decode()


def ensure_sqlite_dir(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine with the per-backend settings the product relies on."""
    if url.startswith("sqlite"):
        ensure_sqlite_dir(url)
        engine = create_async_engine(
            url,
            echo=echo,
            connect_args={"timeout": 30},
            json_serializer=json_dumps,
            json_deserializer=orjson.loads,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
        pool_recycle=1800,
        json_serializer=json_dumps,
        json_deserializer=orjson.loads,
    )


def make_sessionmaker(
    engine: AsyncEngine, *, settings: Any = None
) -> async_sessionmaker[AsyncSession]:
    # Sessions carry the owner's settings, for code below the services that needs one (the
    # recompute after new returns).
    info = {"settings": settings} if settings is not None else None
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, info=info)


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session whose work commits on success and rolls back on error (jobs, CLI, relay)."""
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
