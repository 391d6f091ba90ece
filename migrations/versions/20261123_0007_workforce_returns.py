"""workforce returns

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 13:04:23.619273
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Frozen copy of the rules at this revision (migrations never import application code).
RETURN_LINE_CHECKS: dict[str, str] = {
    "age_bands_sum_to_headcount": "age_under_25 + age_25_34 + age_35_44 + age_45_54 + age_55_64 "
    "+ age_65_plus = headcount",
    "fte_within_headcount": "fte_in_post <= headcount * 1.2",
    "leavers_split_within_leavers": "leavers_to_health_care_12m IS NULL OR "
    "leavers_to_health_care_12m <= leavers_12m",
    "leavers_within_stock": "leavers_12m <= headcount + starters_12m",
    "non_negative": "headcount >= 0 AND fte_in_post >= 0 AND vacant_fte >= 0 AND starters_12m >= "
    "0 AND leavers_12m >= 0 AND COALESCE(leavers_to_health_care_12m, 0) >= 0 AND "
    "sickness_days_12m >= 0 AND agency_fte >= 0 AND bank_fte >= 0 AND "
    "age_under_25 >= 0 AND age_25_34 >= 0 AND age_35_44 >= 0 AND age_45_54 >= 0 "
    "AND age_55_64 >= 0 AND age_65_plus >= 0 AND COALESCE(mean_hourly_pay, 0) >= "
    "0",
    "sickness_plausible": "sickness_days_12m <= 365 * headcount",
    "vacancies_plausible": "vacant_fte <= fte_in_post OR fte_in_post <= 0",
}

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "return_staging",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("import_id", sa.Uuid(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=True),
        sa.Column("organisation_code", sa.Text(), nullable=True),
        sa.Column("as_at", sa.Text(), nullable=True),
        sa.Column("role_code", sa.Text(), nullable=True),
        sa.Column("headcount", sa.Text(), nullable=True),
        sa.Column("fte_in_post", sa.Text(), nullable=True),
        sa.Column("vacant_fte", sa.Text(), nullable=True),
        sa.Column("starters_12m", sa.Text(), nullable=True),
        sa.Column("leavers_12m", sa.Text(), nullable=True),
        sa.Column("leavers_to_health_care_12m", sa.Text(), nullable=True),
        sa.Column("sickness_days_12m", sa.Text(), nullable=True),
        sa.Column("agency_fte", sa.Text(), nullable=True),
        sa.Column("bank_fte", sa.Text(), nullable=True),
        sa.Column("age_under_25", sa.Text(), nullable=True),
        sa.Column("age_25_34", sa.Text(), nullable=True),
        sa.Column("age_35_44", sa.Text(), nullable=True),
        sa.Column("age_45_54", sa.Text(), nullable=True),
        sa.Column("age_55_64", sa.Text(), nullable=True),
        sa.Column("age_65_plus", sa.Text(), nullable=True),
        sa.Column("mean_hourly_pay", sa.Text(), nullable=True),
        sa.Column("organisation_id", sa.Uuid(), nullable=True),
        sa.Column("as_at_date", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_return_staging")),
    )
    with op.batch_alter_table("return_staging", schema=None) as batch_op:
        batch_op.create_index("ix_return_staging_import_id", ["import_id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        # Work in progress only: skipping the write-ahead log makes bulk COPY much cheaper.
        op.execute("ALTER TABLE return_staging SET UNLOGGED")

    op.create_table(
        "idempotency_records",
        sa.Column("api_key_id", sa.Uuid(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column(
            "response", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_idempotency_records_api_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "api_key_id", "idempotency_key", name=op.f("pk_idempotency_records")
        ),
    )
    op.create_table(
        "return_imports",
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("submitted_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("ics_code", sa.String(length=9), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("return_count", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column(
            "errors", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column(
            "timings", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["submitted_by_key_id"],
            ["api_keys.id"],
            name=op.f("fk_return_imports_submitted_by_key_id_api_keys"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_return_imports")),
    )
    op.create_table(
        "workforce_returns",
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("as_at", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("warning_count", sa.Integer(), nullable=False),
        sa.Column("import_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_workforce_returns_organisation_id_organisations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["submitted_by_key_id"],
            ["api_keys.id"],
            name=op.f("fk_workforce_returns_submitted_by_key_id_api_keys"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workforce_returns")),
        sa.UniqueConstraint(
            "organisation_id",
            "as_at",
            "version",
            name=op.f("uq_workforce_returns_organisation_id_as_at_version"),
        ),
    )
    with op.batch_alter_table("workforce_returns", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_workforce_returns_import_id"), ["import_id"], unique=False
        )
        batch_op.create_index(
            "ix_workforce_returns_org_status_as_at",
            ["organisation_id", "status", "as_at"],
            unique=False,
        )

    op.create_table(
        "return_lines",
        sa.Column("return_id", sa.Uuid(), nullable=False),
        sa.Column("role_code", sa.String(length=64), nullable=False),
        sa.Column("headcount", sa.Integer(), nullable=False),
        sa.Column("fte_in_post", sa.Double(), nullable=False),
        sa.Column("vacant_fte", sa.Double(), nullable=False),
        sa.Column("starters_12m", sa.Integer(), nullable=False),
        sa.Column("leavers_12m", sa.Integer(), nullable=False),
        sa.Column("leavers_to_health_care_12m", sa.Integer(), nullable=True),
        sa.Column("sickness_days_12m", sa.Double(), nullable=False),
        sa.Column("agency_fte", sa.Double(), nullable=False),
        sa.Column("bank_fte", sa.Double(), nullable=False),
        sa.Column("age_under_25", sa.Integer(), nullable=False),
        sa.Column("age_25_34", sa.Integer(), nullable=False),
        sa.Column("age_35_44", sa.Integer(), nullable=False),
        sa.Column("age_45_54", sa.Integer(), nullable=False),
        sa.Column("age_55_64", sa.Integer(), nullable=False),
        sa.Column("age_65_plus", sa.Integer(), nullable=False),
        sa.Column("mean_hourly_pay", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["return_id"],
            ["workforce_returns.id"],
            name=op.f("fk_return_lines_return_id_workforce_returns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["role_code"], ["roles.code"], name=op.f("fk_return_lines_role_code_roles")
        ),
        *(
            sa.CheckConstraint(sql, name=op.f(f"ck_return_lines_{name}"))
            for name, sql in RETURN_LINE_CHECKS.items()
        ),
        sa.PrimaryKeyConstraint("return_id", "role_code", name=op.f("pk_return_lines")),
    )
    with op.batch_alter_table("return_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_return_lines_role_code"), ["role_code"], unique=False)

    op.create_table(
        "return_warnings",
        sa.Column("return_id", sa.Uuid(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=True),
        sa.Column("role_code", sa.String(length=64), nullable=True),
        sa.Column("column", sa.String(length=40), nullable=True),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("message", sa.String(length=300), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["return_id"],
            ["workforce_returns.id"],
            name=op.f("fk_return_warnings_return_id_workforce_returns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_return_warnings")),
    )
    with op.batch_alter_table("return_warnings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_return_warnings_return_id"), ["return_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("return_warnings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_return_warnings_return_id"))

    op.drop_table("return_warnings")
    with op.batch_alter_table("return_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_return_lines_role_code"))

    op.drop_table("return_lines")
    with op.batch_alter_table("workforce_returns", schema=None) as batch_op:
        batch_op.drop_index("ix_workforce_returns_org_status_as_at")
        batch_op.drop_index(batch_op.f("ix_workforce_returns_import_id"))

    op.drop_table("workforce_returns")
    op.drop_table("return_imports")
    op.drop_table("idempotency_records")
    with op.batch_alter_table("return_staging", schema=None) as batch_op:
        batch_op.drop_index("ix_return_staging_import_id")

    op.drop_table("return_staging")
