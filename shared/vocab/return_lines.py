"""The columns of a workforce return line, as JSON fields, CSV headers and stored columns."""

from __future__ import annotations

# Whole numbers (persons): headcount, flows over the last twelve months, headcount by age band.
INT_COLUMNS: tuple[str, ...] = (
    "headcount",
    "starters_12m",
    "leavers_12m",
    "leavers_to_health_care_12m",
    "age_under_25",
    "age_25_34",
    "age_35_44",
    "age_45_54",
    "age_55_64",
    "age_65_plus",
)
# Decimals: FTE, days and pounds.
DECIMAL_COLUMNS: tuple[str, ...] = (
    "fte_in_post",
    "vacant_fte",
    "sickness_days_12m",
    "agency_fte",
    "bank_fte",
    "mean_hourly_pay",
)
# The largest value each figure may take (persons, FTE, days, pounds an hour). A return
# beyond these is an input error (number_out_of_range), in JSON and CSV alike; numbers must
# also be finite (no NaN or Infinity).
MAX_PERSONS = 1_000_000
MAX_FTE = 1_000_000.0
MAX_SICKNESS_DAYS = 366_000_000.0
MAX_HOURLY_PAY = 1_000.0
MAXIMUMS: dict[str, float] = {
    **dict.fromkeys(INT_COLUMNS, MAX_PERSONS),
    "fte_in_post": MAX_FTE,
    "vacant_fte": MAX_FTE,
    "agency_fte": MAX_FTE,
    "bank_fte": MAX_FTE,
    "sickness_days_12m": MAX_SICKNESS_DAYS,
    "mean_hourly_pay": MAX_HOURLY_PAY,
}
OPTIONAL_COLUMNS = frozenset({"leavers_to_health_care_12m", "mean_hourly_pay"})
AGE_COLUMNS: tuple[str, ...] = INT_COLUMNS[4:]

# One line of a return, in template order.
LINE_COLUMNS: tuple[str, ...] = (
    "role_code",
    "headcount",
    "fte_in_post",
    "vacant_fte",
    "starters_12m",
    "leavers_12m",
    "leavers_to_health_care_12m",
    "sickness_days_12m",
    "agency_fte",
    "bank_fte",
    *AGE_COLUMNS,
    "mean_hourly_pay",
)
# A bulk file's line: the organisation (ODS code or CQC location id) and date, then the line.
BULK_COLUMNS: tuple[str, ...] = ("organisation_code", "as_at", *LINE_COLUMNS)
