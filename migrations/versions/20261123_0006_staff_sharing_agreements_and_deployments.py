"""staff-sharing agreements and deployments

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-23 13:07:55.590837
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agreements",
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("ics_code", sa.String(length=9), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("risk_share", sa.Text(), nullable=True),
        sa.Column("indemnity", sa.Text(), nullable=True),
        sa.Column("host_employer", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("terminated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("termination_reason", sa.Text(), nullable=True),
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
        sa.CheckConstraint("start_date <= end_date", name=op.f("ck_agreements_date_range")),
        sa.ForeignKeyConstraint(
            ["ics_code"], ["areas.code"], name=op.f("fk_agreements_ics_code_areas")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agreements")),
    )
    with op.batch_alter_table("agreements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agreements_ics_code"), ["ics_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_agreements_mode"), ["mode"], unique=False)
        batch_op.create_index(batch_op.f("ix_agreements_status"), ["status"], unique=False)

    op.create_table(
        "agreement_parties",
        sa.Column("agreement_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("signatory_name", sa.String(length=200), nullable=True),
        sa.Column("signatory_role", sa.String(length=200), nullable=True),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("signed_on_behalf", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["agreement_id"],
            ["agreements.id"],
            name=op.f("fk_agreement_parties_agreement_id_agreements"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_agreement_parties_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["signed_by_key_id"],
            ["api_keys.id"],
            name=op.f("fk_agreement_parties_signed_by_key_id_api_keys"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agreement_parties")),
        sa.UniqueConstraint(
            "agreement_id",
            "organisation_id",
            name=op.f("uq_agreement_parties_agreement_id_organisation_id"),
        ),
    )
    with op.batch_alter_table("agreement_parties", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_agreement_parties_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "agreement_scope",
        sa.Column("agreement_id", sa.Uuid(), nullable=False),
        sa.Column("role_code", sa.String(length=64), nullable=False),
        sa.Column("lending_organisation_id", sa.Uuid(), nullable=False),
        sa.Column("fte_cap", sa.Double(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint("fte_cap > 0", name=op.f("ck_agreement_scope_fte_cap_positive")),
        sa.ForeignKeyConstraint(
            ["agreement_id"],
            ["agreements.id"],
            name=op.f("fk_agreement_scope_agreement_id_agreements"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lending_organisation_id"],
            ["organisations.id"],
            name=op.f("fk_agreement_scope_lending_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["role_code"], ["roles.code"], name=op.f("fk_agreement_scope_role_code_roles")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agreement_scope")),
        sa.UniqueConstraint(
            "agreement_id",
            "role_code",
            "lending_organisation_id",
            name=op.f("uq_agreement_scope_agreement_id_role_code_lending_organisation_id"),
        ),
    )
    with op.batch_alter_table("agreement_scope", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_agreement_scope_lending_organisation_id"),
            ["lending_organisation_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_agreement_scope_role_code"), ["role_code"], unique=False
        )

    op.create_table(
        "deployments",
        sa.Column("agreement_id", sa.Uuid(), nullable=False),
        sa.Column("from_organisation_id", sa.Uuid(), nullable=False),
        sa.Column("to_organisation_id", sa.Uuid(), nullable=False),
        sa.Column("role_code", sa.String(length=64), nullable=False),
        sa.Column("fte", sa.Double(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_early_on", sa.Date(), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
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
        sa.CheckConstraint(
            "from_organisation_id <> to_organisation_id",
            name=op.f("ck_deployments_distinct_parties"),
        ),
        sa.CheckConstraint("fte > 0", name=op.f("ck_deployments_fte_positive")),
        sa.CheckConstraint("start_date <= end_date", name=op.f("ck_deployments_date_range")),
        sa.ForeignKeyConstraint(
            ["agreement_id"], ["agreements.id"], name=op.f("fk_deployments_agreement_id_agreements")
        ),
        sa.ForeignKeyConstraint(
            ["from_organisation_id"],
            ["organisations.id"],
            name=op.f("fk_deployments_from_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["role_code"], ["roles.code"], name=op.f("fk_deployments_role_code_roles")
        ),
        sa.ForeignKeyConstraint(
            ["to_organisation_id"],
            ["organisations.id"],
            name=op.f("fk_deployments_to_organisation_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
    )
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deployments_lender_role",
            ["agreement_id", "from_organisation_id", "role_code"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_deployments_role_code"), ["role_code"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_deployments_to_organisation_id"), ["to_organisation_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deployments_to_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_deployments_role_code"))
        batch_op.drop_index("ix_deployments_lender_role")

    op.drop_table("deployments")
    with op.batch_alter_table("agreement_scope", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agreement_scope_role_code"))
        batch_op.drop_index(batch_op.f("ix_agreement_scope_lending_organisation_id"))

    op.drop_table("agreement_scope")
    with op.batch_alter_table("agreement_parties", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agreement_parties_organisation_id"))

    op.drop_table("agreement_parties")
    with op.batch_alter_table("agreements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agreements_status"))
        batch_op.drop_index(batch_op.f("ix_agreements_mode"))
        batch_op.drop_index(batch_op.f("ix_agreements_ics_code"))

    op.drop_table("agreements")
