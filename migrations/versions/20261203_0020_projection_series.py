"""projection results stored as a series per area, role and measure; parts' per-run totals
stored uncompressed

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 09:00:00.000000
"""

import json
from collections.abc import Sequence
from itertools import groupby
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = ("run_id", "area_code", "role_code", "measure")
FIGURES = ("principal", "p10", "p50", "p90")


def _float_list() -> Any:
    return sa.JSON().with_variant(postgresql.ARRAY(postgresql.DOUBLE_PRECISION()), "postgresql")


def _key_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("area_code", sa.String(length=9), nullable=False),
        sa.Column("role_code", sa.String(length=64), nullable=False),
        sa.Column("measure", sa.String(length=32), nullable=False),
    ]


def upgrade() -> None:
    # One row per (run, area, role, measure) holding every year, instead of one row per year:
    # an England run's results are about 40,000 rows instead of 770,000, and keeping the
    # primary key of the per-year rows cost as much time as the model.
    op.create_table(
        "projection_series",
        *_key_columns(),
        sa.Column("first_year", sa.Integer(), nullable=False),
        *(sa.Column(name, _float_list(), nullable=False) for name in FIGURES),
        sa.PrimaryKeyConstraint(*KEY, name=op.f("pk_projection_series")),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            "INSERT INTO projection_series "
            "SELECT run_id, area_code, role_code, measure, min(year), "
            + ", ".join(f"array_agg({name} ORDER BY year)" for name in FIGURES)
            + " FROM projection_results GROUP BY run_id, area_code, role_code, measure"
        )
    else:
        # SQLite (an embedded database, small): grouped here, values written as stored (the
        # run id as its hex text, the lists as JSON text).
        insert = sa.text(
            "INSERT INTO projection_series VALUES "
            "(:run_id, :area_code, :role_code, :measure, :first_year, :principal, :p10, :p50, :p90)"
        )
        rows = bind.execute(
            sa.text(
                "SELECT run_id, area_code, role_code, measure, year, principal, p10, p50, p90 "
                "FROM projection_results ORDER BY run_id, area_code, role_code, measure, year"
            )
        )
        batch: list[dict[str, Any]] = []
        for key, years in groupby(rows, key=lambda row: tuple(row[:4])):
            values = list(years)
            batch.append(
                {
                    **dict(zip(KEY, key, strict=True)),
                    "first_year": values[0][4],
                    **{
                        name: json.dumps([row[5 + i] for row in values])
                        for i, name in enumerate(FIGURES)
                    },
                }
            )
            if len(batch) >= 5000:
                bind.execute(insert, batch)
                batch = []
        if batch:
            bind.execute(insert, batch)
    op.drop_table("projection_results")
    if bind.dialect.name == "postgresql":
        # An England part's per-run totals (about 4 MB of float64 noise each) do not compress:
        # trying to, as for the per-draw rows before (revision 0018), costs seconds a run.
        op.execute("ALTER TABLE projection_run_parts ALTER COLUMN run_totals SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE projection_run_parts ALTER COLUMN run_totals SET STORAGE EXTENDED")
    op.create_table(
        "projection_results",
        *_key_columns(),
        sa.Column("year", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Float(), nullable=False) for name in FIGURES),
        sa.PrimaryKeyConstraint(*KEY, "year", name=op.f("pk_projection_results")),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            "INSERT INTO projection_results "
            "SELECT s.run_id, s.area_code, s.role_code, s.measure, s.first_year + u.n - 1, "
            "u.principal, u.p10, u.p50, u.p90 FROM projection_series s, "
            "unnest(s.principal, s.p10, s.p50, s.p90) "
            "WITH ORDINALITY AS u(principal, p10, p50, p90, n)"
        )
    else:
        insert = sa.text(
            "INSERT INTO projection_results VALUES "
            "(:run_id, :area_code, :role_code, :measure, :year, :principal, :p10, :p50, :p90)"
        )
        rows = bind.execute(
            sa.text(
                "SELECT run_id, area_code, role_code, measure, first_year, principal, p10, p50, "
                "p90 FROM projection_series"
            )
        )
        batch = []
        for row in rows:
            figures = [json.loads(value) for value in row[5:]]
            for t, values in enumerate(zip(*figures, strict=True)):
                batch.append(
                    {
                        **dict(zip(KEY, row[:4], strict=True)),
                        "year": row[4] + t,
                        **dict(zip(FIGURES, values, strict=True)),
                    }
                )
            if len(batch) >= 50_000:
                bind.execute(insert, batch)
                batch = []
        if batch:
            bind.execute(insert, batch)
    op.drop_table("projection_series")
