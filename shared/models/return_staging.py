from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, Index, Integer, Table, Text, Uuid

from shared.db.base import Base
from shared.vocab.return_lines import LINE_COLUMNS

# Returns are validated set-based in SQL: lines are first copied here as text, exactly as sent,
# so that a wrong value can be reported by row and column instead of failing the load.
# On PostgreSQL the table is UNLOGGED (see the migration): it only ever holds work in progress.

return_staging = Table(
    "return_staging",
    Base.metadata,
    Column(
        "id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("import_id", Uuid(), nullable=False),
    Column("line_no", Integer(), nullable=True),
    Column("organisation_code", Text(), nullable=True),
    Column("as_at", Text(), nullable=True),
    *(Column(name, Text(), nullable=True) for name in LINE_COLUMNS),
    # Filled set-based after loading: the resolved organisation and parsed date.
    Column("organisation_id", Uuid(), nullable=True),
    Column("as_at_date", Date(), nullable=True),
    Index("ix_return_staging_import_id", "import_id"),
)
