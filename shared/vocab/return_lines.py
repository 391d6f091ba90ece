"""The columns of a workforce return line, as JSON fields, CSV headers and stored columns."""

from __future__ import annotations

from shared.vocab.characteristics import CHARACTERISTIC_COLUMNS

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
    *CHARACTERISTIC_COLUMNS,
)
# Decimals: FTE, days and pounds.
DECIMAL_COLUMNS: tuple[str, ...] = (
    "fte_in_post",
    "vacant_fte",
    "sickness_days_12m",
    "agency_fte",
    "bank_fte",
    "mean_hourly_pay",
    "median_hourly_pay",
)
OPTIONAL_COLUMNS = frozenset(
    {"leavers_to_health_care_12m", "mean_hourly_pay", "median_hourly_pay", *CHARACTERISTIC_COLUMNS}
)
AGE_COLUMNS: tuple[str, ...] = (
    "age_under_25",
    "age_25_34",
    "age_35_44",
    "age_45_54",
    "age_55_64",
    "age_65_plus",
)
# What each figure is, with its unit (the API document and the template say the same).
COLUMN_DESCRIPTIONS: dict[str, str] = {
    "headcount": "Staff in post (persons).",
    "fte_in_post": "Staff in post in full-time equivalents (FTE).",
    "vacant_fte": "Vacant posts being recruited to (FTE).",
    "starters_12m": "Staff who joined in the last 12 months (persons).",
    "leavers_12m": "Staff who left in the last 12 months (persons).",
    "leavers_to_health_care_12m": "Of the leavers, those who went to another health or care "
    "employer (persons).",
    "sickness_days_12m": "Days lost to sickness absence in the last 12 months (days).",
    "agency_fte": "Agency staff working in the role on the date (FTE).",
    "bank_fte": "Bank staff working in the role on the date (FTE).",
    "age_under_25": "Staff in post aged under 25 (persons).",
    "age_25_34": "Staff in post aged 25 to 34 (persons).",
    "age_35_44": "Staff in post aged 35 to 44 (persons).",
    "age_45_54": "Staff in post aged 45 to 54 (persons).",
    "age_55_64": "Staff in post aged 55 to 64 (persons).",
    "age_65_plus": "Staff in post aged 65 or over (persons).",
    "mean_hourly_pay": "Mean hourly pay of the staff in post (GBP an hour).",
}
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
    "median_hourly_pay": MAX_HOURLY_PAY,
}

# One line of a return as first published, in template order: files with this header stay
# valid, their lines simply have no characteristics or median pay.
CORE_LINE_COLUMNS: tuple[str, ...] = (
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
# One line of a return, in template order: the core columns, then median pay and the optional
# breakdowns of headcount (ethnicity, disability, sex, Agenda for Change band).
OPTIONAL_TAIL: tuple[str, ...] = ("median_hourly_pay", *CHARACTERISTIC_COLUMNS)
LINE_COLUMNS: tuple[str, ...] = (*CORE_LINE_COLUMNS, *OPTIONAL_TAIL)
# A bulk file's line: the organisation (ODS code or CQC location id) and date, then the line.
BULK_COLUMNS: tuple[str, ...] = ("organisation_code", "as_at", *LINE_COLUMNS)
BULK_CORE_COLUMNS: tuple[str, ...] = ("organisation_code", "as_at", *CORE_LINE_COLUMNS)


def omitted_trailing_columns(header: list[str], expected: tuple[str, ...]) -> int | None:
    """How many optional columns at the end of `expected` a file's header leaves out (0 when
    it has them all), or None when the header is not `expected` or such a prefix of it.
    Files written to the core template stay valid as the template grows."""
    names = [name.strip() for name in header]
    count = len(names)
    if names != list(expected[:count]) or count < len(expected) - len(OPTIONAL_TAIL):
        return None
    if not set(expected[count:]) <= OPTIONAL_COLUMNS:
        return None
    return len(expected) - count
