"""organisations

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:59:56.352167
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("sector", sa.String(length=20), nullable=False),
        sa.Column("ods_code", sa.String(length=10), nullable=True),
        sa.Column("cqc_location_id", sa.String(length=20), nullable=True),
        sa.Column("home_lad_code", sa.String(length=9), nullable=False),
        sa.Column("ics_code", sa.String(length=9), nullable=False),
        sa.Column("opened_on", sa.Date(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
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
        sa.ForeignKeyConstraint(
            ["home_lad_code"], ["areas.code"], name=op.f("fk_organisations_home_lad_code_areas")
        ),
        sa.ForeignKeyConstraint(
            ["ics_code"], ["areas.code"], name=op.f("fk_organisations_ics_code_areas")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        sa.UniqueConstraint("cqc_location_id", name=op.f("uq_organisations_cqc_location_id")),
        sa.UniqueConstraint("ods_code", name=op.f("uq_organisations_ods_code")),
    )
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_organisations_home_lad_code"), ["home_lad_code"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_organisations_ics_code"), ["ics_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_organisations_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_organisations_name"), ["name"], unique=False)
        batch_op.create_index(batch_op.f("ix_organisations_sector"), ["sector"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_organisations_sector"))
        batch_op.drop_index(batch_op.f("ix_organisations_name"))
        batch_op.drop_index(batch_op.f("ix_organisations_kind"))
        batch_op.drop_index(batch_op.f("ix_organisations_ics_code"))
        batch_op.drop_index(batch_op.f("ix_organisations_home_lad_code"))

    op.drop_table("organisations")
