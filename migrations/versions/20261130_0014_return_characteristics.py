"""return lines may break headcount down by ethnicity, disability, sex and Agenda for Change
band, and give median hourly pay

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 15:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


CHARACTERISTIC_COLUMNS: tuple[str, ...] = (
    "ethnicity_asian",
    "ethnicity_black",
    "ethnicity_mixed",
    "ethnicity_white",
    "ethnicity_other",
    "ethnicity_not_stated",
    "disability_yes",
    "disability_no",
    "disability_not_stated",
    "sex_female",
    "sex_male",
    "sex_not_stated",
    "afc_band_1",
    "afc_band_2",
    "afc_band_3",
    "afc_band_4",
    "afc_band_5",
    "afc_band_6",
    "afc_band_7",
    "afc_band_8a",
    "afc_band_8b",
    "afc_band_8c",
    "afc_band_8d",
    "afc_band_9",
)
# The documented maximums with the new columns (shared/vocab/return_lines.py MAXIMUMS as it
# stood when this migration was written), and as they stood before.
WITHIN_RANGE = (
    "headcount <= 1000000 AND starters_12m <= 1000000 AND leavers_12m <= 1000000 AND "
    "COALESCE(leavers_to_health_care_12m, 0) <= 1000000 AND age_under_25 <= 1000000 AND "
    "age_25_34 <= 1000000 AND age_35_44 <= 1000000 AND age_45_54 <= 1000000 AND age_55_64 <= "
    "1000000 AND age_65_plus <= 1000000 AND COALESCE(ethnicity_asian, 0) <= 1000000 AND "
    "COALESCE(ethnicity_black, 0) <= 1000000 AND COALESCE(ethnicity_mixed, 0) <= 1000000 AND "
    "COALESCE(ethnicity_white, 0) <= 1000000 AND COALESCE(ethnicity_other, 0) <= 1000000 AND "
    "COALESCE(ethnicity_not_stated, 0) <= 1000000 AND COALESCE(disability_yes, 0) <= 1000000 "
    "AND COALESCE(disability_no, 0) <= 1000000 AND COALESCE(disability_not_stated, 0) <= "
    "1000000 AND COALESCE(sex_female, 0) <= 1000000 AND COALESCE(sex_male, 0) <= 1000000 AND "
    "COALESCE(sex_not_stated, 0) <= 1000000 AND COALESCE(afc_band_1, 0) <= 1000000 AND "
    "COALESCE(afc_band_2, 0) <= 1000000 AND COALESCE(afc_band_3, 0) <= 1000000 AND "
    "COALESCE(afc_band_4, 0) <= 1000000 AND COALESCE(afc_band_5, 0) <= 1000000 AND "
    "COALESCE(afc_band_6, 0) <= 1000000 AND COALESCE(afc_band_7, 0) <= 1000000 AND "
    "COALESCE(afc_band_8a, 0) <= 1000000 AND COALESCE(afc_band_8b, 0) <= 1000000 AND "
    "COALESCE(afc_band_8c, 0) <= 1000000 AND COALESCE(afc_band_8d, 0) <= 1000000 AND "
    "COALESCE(afc_band_9, 0) <= 1000000 AND fte_in_post <= 1000000 AND vacant_fte <= 1000000 "
    "AND agency_fte <= 1000000 AND bank_fte <= 1000000 AND sickness_days_12m <= 366000000 AND "
    "COALESCE(mean_hourly_pay, 0) <= 1000 AND COALESCE(median_hourly_pay, 0) <= 1000"
)
PREVIOUS_WITHIN_RANGE = (
    "headcount <= 1000000 AND starters_12m <= 1000000 AND leavers_12m <= 1000000 "
    "AND COALESCE(leavers_to_health_care_12m, 0) <= 1000000 AND age_under_25 <= 1000000 "
    "AND age_25_34 <= 1000000 AND age_35_44 <= 1000000 AND age_45_54 <= 1000000 "
    "AND age_55_64 <= 1000000 AND age_65_plus <= 1000000 AND fte_in_post <= 1000000 "
    "AND vacant_fte <= 1000000 AND agency_fte <= 1000000 AND bank_fte <= 1000000 "
    "AND sickness_days_12m <= 366000000 AND COALESCE(mean_hourly_pay, 0) <= 1000"
)
# The stored rules, as in shared/models/workforce_return.py.
CHECKS: dict[str, str] = {
    "optional_figures_non_negative": (
        "COALESCE(median_hourly_pay, 0) >= 0 AND COALESCE(ethnicity_asian, 0) >= 0 AND COALESCE(ethnicity_black, 0) >= 0 AND COALESCE(ethnicity_mixed, 0) >= 0 AND COALESCE(ethnicity_white, 0) >= 0 AND COALESCE(ethnicity_other, 0) >= 0 AND COALESCE(ethnicity_not_stated, 0) >= 0 AND COALESCE(disability_yes, 0) >= 0 AND COALESCE(disability_no, 0) >= 0 AND COALESCE(disability_not_stated, 0) >= 0 AND COALESCE(sex_female, 0) >= 0 AND COALESCE(sex_male, 0) >= 0 AND COALESCE(sex_not_stated, 0) >= 0 AND COALESCE(afc_band_1, 0) >= 0 AND COALESCE(afc_band_2, 0) >= 0 AND COALESCE(afc_band_3, 0) >= 0 AND COALESCE(afc_band_4, 0) >= 0 AND COALESCE(afc_band_5, 0) >= 0 AND COALESCE(afc_band_6, 0) >= 0 AND COALESCE(afc_band_7, 0) >= 0 AND COALESCE(afc_band_8a, 0) >= 0 AND COALESCE(afc_band_8b, 0) >= 0 AND COALESCE(afc_band_8c, 0) >= 0 AND COALESCE(afc_band_8d, 0) >= 0 AND COALESCE(afc_band_9, 0) >= 0"
    ),
    "ethnicity_sums_to_headcount": (
        "(ethnicity_asian IS NULL AND ethnicity_black IS NULL AND ethnicity_mixed IS NULL AND ethnicity_white IS NULL AND ethnicity_other IS NULL AND ethnicity_not_stated IS NULL) OR (ethnicity_asian IS NOT NULL AND ethnicity_black IS NOT NULL AND ethnicity_mixed IS NOT NULL AND ethnicity_white IS NOT NULL AND ethnicity_other IS NOT NULL AND ethnicity_not_stated IS NOT NULL AND ethnicity_asian + ethnicity_black + ethnicity_mixed + ethnicity_white + ethnicity_other + ethnicity_not_stated = headcount)"
    ),
    "disability_sums_to_headcount": (
        "(disability_yes IS NULL AND disability_no IS NULL AND disability_not_stated IS NULL) OR (disability_yes IS NOT NULL AND disability_no IS NOT NULL AND disability_not_stated IS NOT NULL AND disability_yes + disability_no + disability_not_stated = headcount)"
    ),
    "sex_sums_to_headcount": (
        "(sex_female IS NULL AND sex_male IS NULL AND sex_not_stated IS NULL) OR (sex_female IS NOT NULL AND sex_male IS NOT NULL AND sex_not_stated IS NOT NULL AND sex_female + sex_male + sex_not_stated = headcount)"
    ),
    "afc_band_sums_to_headcount": (
        "(afc_band_1 IS NULL AND afc_band_2 IS NULL AND afc_band_3 IS NULL AND afc_band_4 IS NULL AND afc_band_5 IS NULL AND afc_band_6 IS NULL AND afc_band_7 IS NULL AND afc_band_8a IS NULL AND afc_band_8b IS NULL AND afc_band_8c IS NULL AND afc_band_8d IS NULL AND afc_band_9 IS NULL) OR (afc_band_1 IS NOT NULL AND afc_band_2 IS NOT NULL AND afc_band_3 IS NOT NULL AND afc_band_4 IS NOT NULL AND afc_band_5 IS NOT NULL AND afc_band_6 IS NOT NULL AND afc_band_7 IS NOT NULL AND afc_band_8a IS NOT NULL AND afc_band_8b IS NOT NULL AND afc_band_8c IS NOT NULL AND afc_band_8d IS NOT NULL AND afc_band_9 IS NOT NULL AND afc_band_1 + afc_band_2 + afc_band_3 + afc_band_4 + afc_band_5 + afc_band_6 + afc_band_7 + afc_band_8a + afc_band_8b + afc_band_8c + afc_band_8d + afc_band_9 = headcount)"
    ),
}


def upgrade() -> None:
    with op.batch_alter_table("return_lines") as batch:
        batch.add_column(sa.Column("median_hourly_pay", sa.Double(), nullable=True))
        for name in CHARACTERISTIC_COLUMNS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=True))
        for name, sql in CHECKS.items():
            batch.create_check_constraint(op.f(f"ck_return_lines_{name}"), sql)
        batch.drop_constraint("within_range", type_="check")
        batch.create_check_constraint("within_range", WITHIN_RANGE)
    with op.batch_alter_table("return_staging") as batch:
        for name in ("median_hourly_pay", *CHARACTERISTIC_COLUMNS):
            batch.add_column(sa.Column(name, sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("return_staging") as batch:
        for name in ("median_hourly_pay", *CHARACTERISTIC_COLUMNS):
            batch.drop_column(name)
    with op.batch_alter_table("return_lines") as batch:
        batch.drop_constraint("within_range", type_="check")
        batch.create_check_constraint("within_range", PREVIOUS_WITHIN_RANGE)
        for name in CHECKS:
            batch.drop_constraint(op.f(f"ck_return_lines_{name}"), type_="check")
        for name in CHARACTERISTIC_COLUMNS:
            batch.drop_column(name)
        batch.drop_column("median_hourly_pay")
