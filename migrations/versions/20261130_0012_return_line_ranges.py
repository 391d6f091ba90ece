"""return lines hold only finite figures within the documented maximums

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 15:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As shared/vocab/return_lines.py MAXIMUMS stood when this migration was written.
WITHIN_RANGE = (
    "headcount <= 1000000 AND starters_12m <= 1000000 AND leavers_12m <= 1000000 "
    "AND COALESCE(leavers_to_health_care_12m, 0) <= 1000000 AND age_under_25 <= 1000000 "
    "AND age_25_34 <= 1000000 AND age_35_44 <= 1000000 AND age_45_54 <= 1000000 "
    "AND age_55_64 <= 1000000 AND age_65_plus <= 1000000 AND fte_in_post <= 1000000 "
    "AND vacant_fte <= 1000000 AND agency_fte <= 1000000 AND bank_fte <= 1000000 "
    "AND sickness_days_12m <= 366000000 AND COALESCE(mean_hourly_pay, 0) <= 1000"
)


def upgrade() -> None:
    with op.batch_alter_table("return_lines") as batch:
        batch.create_check_constraint("within_range", WITHIN_RANGE)


def downgrade() -> None:
    with op.batch_alter_table("return_lines") as batch:
        batch.drop_constraint("within_range", type_="check")
