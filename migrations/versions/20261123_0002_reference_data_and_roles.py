"""reference data (areas, population, prevalence) and the role catalogue

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 12:59:01.322105
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "areas",
        sa.Column("code", sa.String(length=9), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.Column("parent_code", sa.String(length=9), nullable=True),
        sa.Column("nhs_code", sa.String(length=3), nullable=True),
        sa.Column("region_code", sa.String(length=9), nullable=True),
        sa.Column("region_name", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["parent_code"], ["areas.code"], name=op.f("fk_areas_parent_code_areas")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_areas")),
    )
    with op.batch_alter_table("areas", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_areas_name"), ["name"], unique=False)
        batch_op.create_index(batch_op.f("ix_areas_parent_code"), ["parent_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_areas_type"), ["type"], unique=False)

    op.create_table(
        "population_datasets",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("base_year", sa.Integer(), nullable=False),
        sa.Column("first_year", sa.Integer(), nullable=False),
        sa.Column("last_year", sa.Integer(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_population_datasets")),
        sa.UniqueConstraint("name", name=op.f("uq_population_datasets_name")),
    )
    op.create_table(
        "prevalence_rates",
        sa.Column("measure", sa.String(length=50), nullable=False),
        sa.Column("age_band", sa.String(length=5), nullable=False),
        sa.Column("sex", sa.String(length=1), nullable=False),
        sa.Column("rate", sa.Double(), nullable=False),
        sa.Column("lower", sa.Double(), nullable=False),
        sa.Column("upper", sa.Double(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("measure", "age_band", "sex", name=op.f("pk_prevalence_rates")),
    )
    op.create_table(
        "roles",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sector", sa.String(length=20), nullable=False),
        sa.Column("staff_group", sa.String(length=100), nullable=False),
        sa.Column("pay_band", sa.String(length=50), nullable=True),
        sa.Column("career_framework_level", sa.Integer(), nullable=True),
        sa.Column("registration_body", sa.String(length=10), nullable=False),
        sa.Column("is_new_role", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "capabilities", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column(
            "training_requirements",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("default_demand_driver", sa.String(length=30), nullable=False),
        sa.Column("asc_wds_job_role", sa.String(length=100), nullable=True),
        sa.Column("nhs_staff_group", sa.String(length=100), nullable=True),
        sa.Column("snomed_ct_occupation", sa.String(length=20), nullable=True),
        sa.Column("is_seeded", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_roles")),
    )
    with op.batch_alter_table("roles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_roles_is_new_role"), ["is_new_role"], unique=False)
        batch_op.create_index(batch_op.f("ix_roles_sector"), ["sector"], unique=False)
        batch_op.create_index(batch_op.f("ix_roles_staff_group"), ["staff_group"], unique=False)

    op.create_table(
        "population",
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("area_code", sa.String(length=9), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("sex", sa.String(length=1), nullable=False),
        sa.Column("age_band", sa.String(length=5), nullable=False),
        sa.Column("persons", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["area_code"], ["areas.code"], name=op.f("fk_population_area_code_areas")
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["population_datasets.id"],
            name=op.f("fk_population_dataset_id_population_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "dataset_id", "area_code", "year", "sex", "age_band", name=op.f("pk_population")
        ),
    )
    with op.batch_alter_table("population", schema=None) as batch_op:
        batch_op.create_index("ix_population_area_year", ["area_code", "year"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("population", schema=None) as batch_op:
        batch_op.drop_index("ix_population_area_year")

    op.drop_table("population")
    with op.batch_alter_table("roles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_roles_staff_group"))
        batch_op.drop_index(batch_op.f("ix_roles_sector"))
        batch_op.drop_index(batch_op.f("ix_roles_is_new_role"))

    op.drop_table("roles")
    op.drop_table("prevalence_rates")
    op.drop_table("population_datasets")
    with op.batch_alter_table("areas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_areas_type"))
        batch_op.drop_index(batch_op.f("ix_areas_parent_code"))
        batch_op.drop_index(batch_op.f("ix_areas_name"))

    op.drop_table("areas")
