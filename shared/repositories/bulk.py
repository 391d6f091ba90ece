"""Bulk inserts: COPY on PostgreSQL, executemany in large batches on SQLite."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

SQLITE_BATCH_ROWS = 50_000
SQLITE_LOAD_CACHE_KIB = 64 * 1024
SQLITE_DEFAULT_CACHE_KIB = 2000  # SQLite's own default
_UNSET = object()


class _Converter:
    __slots__ = ("convert", "index", "last_in", "last_out")

    def __init__(self, index: int, convert: Callable[[Any], Any]) -> None:
        self.index = index
        self.convert = convert
        self.last_in: Any = _UNSET
        self.last_out: Any = None

    def __call__(self, value: Any) -> Any:
        if value is not self.last_in:
            self.last_in, self.last_out = value, self.convert(value)
        return self.last_out


async def insert_rows(
    session: AsyncSession,
    *,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
) -> int:
    """Insert rows (tuples in `columns` order) inside the session's transaction; the count."""
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        raw = await connection.get_raw_connection()
        status: str = await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
            table.name, records=rows, columns=list(columns)
        )
        return int(status.rsplit(" ", 1)[-1])

    # Bypassing SQLAlchemy's per-row statement handling is what makes this fast; the column
    # types' own converters still apply (UUIDs are stored as hex text on SQLite), remembering
    # the last value because bulk rows repeat it (one dataset id for every row).
    converters = [
        _Converter(index, converter)
        for index, name in enumerate(columns)
        if (converter := table.c[name].type.bind_processor(connection.dialect)) is not None
    ]
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)})"
    )
    count = 0
    batch: list[Sequence[Any]] = []
    # A larger page cache for the load keeps the indexes being built in memory.
    await connection.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_LOAD_CACHE_KIB}")
    try:
        for row in rows:
            if converters:
                values = list(row)
                for converter in converters:
                    values[converter.index] = converter(values[converter.index])
                row = tuple(values)
            batch.append(row)
            if len(batch) >= SQLITE_BATCH_ROWS:
                await connection.exec_driver_sql(sql, batch)
                count += len(batch)
                batch = []
        if batch:
            await connection.exec_driver_sql(sql, batch)
            count += len(batch)
    finally:
        await connection.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_DEFAULT_CACHE_KIB}")
    return count
