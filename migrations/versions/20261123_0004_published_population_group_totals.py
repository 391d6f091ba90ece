"""population: published group totals (ONS 0-17), and no per-row foreign keys on bulk tables

Per-row foreign key checks made the COPY of a 355,680-row dataset three times slower on
PostgreSQL; the reference loader validates area codes and owns the dataset rows instead.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 13:07:33.520917
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "population_group_totals",
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("area_code", sa.String(length=9), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("age_group", sa.String(length=10), nullable=False),
        sa.Column("persons", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "dataset_id", "area_code", "year", "age_group", name=op.f("pk_population_group_totals")
        ),
    )
    with op.batch_alter_table("population", schema=None) as batch_op:
        batch_op.drop_constraint("fk_population_area_code_areas", type_="foreignkey")
        batch_op.drop_constraint("fk_population_dataset_id_population_datasets", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("population", schema=None) as batch_op:
        batch_op.create_foreign_key(
            "fk_population_dataset_id_population_datasets",
            "population_datasets",
            ["dataset_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_foreign_key(
            "fk_population_area_code_areas", "areas", ["area_code"], ["code"]
        )
    op.drop_table("population_group_totals")
