"""projection draws for paired comparisons; explanations kept for every year

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 14:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "projection_draws",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("area_code", sa.String(length=9), nullable=False),
        sa.Column("role_codes", JSON, nullable=False),
        sa.Column("values", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["projection_runs.id"],
            name=op.f("fk_projection_draws_run_id_projection_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "area_code", name=op.f("pk_projection_draws")),
    )
    with op.batch_alter_table("projection_explain") as batch:
        batch.add_column(sa.Column("by_year", JSON, nullable=True))
        batch.add_column(sa.Column("base_split", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projection_explain") as batch:
        batch.drop_column("base_split")
        batch.drop_column("by_year")
    op.drop_table("projection_draws")
