"""What the OpenAPI document says about the members its models leave bare: a description with
units for every number, and the closed vocabularies of strings, taken from the modules that
define them. A member's own description always wins; the contract test fails on a number that
neither the model nor this glossary describes.
"""

from __future__ import annotations

from enum import StrEnum

from services.domain.track_record import MEASURES as TRACK_RECORD_MEASURES
from shared.models.projection import RunStatus
from shared.models.role import RoleSector
from shared.models.webhook import DeliveryStatus
from shared.vocab.characteristics import AFC_BANDS, DISABILITY, ETHNICITY, SEX
from shared.vocab.measures import MEASURES
from shared.vocab.return_lines import COLUMN_DESCRIPTIONS

_PERSONS = "persons"

# A return line's breakdowns of its headcount (each optional; when given, they sum to it).
CHARACTERISTICS: dict[str, str] = {
    **{
        f"ethnicity_{code}": f"Staff in post of the ethnic group '{label}' (persons)."
        for code, label in ETHNICITY.items()
    },
    **{
        f"disability_{code}": f"Staff in post, disability: '{label}' (persons)."
        for code, label in DISABILITY.items()
    },
    **{f"sex_{code}": f"Staff in post, sex: '{label}' (persons)." for code, label in SEX.items()},
    **{
        f"afc_band_{band}": f"Staff in post on Agenda for Change band {band} (persons)."
        for band in AFC_BANDS
    },
}

# By member name, wherever it appears.
DESCRIPTIONS: dict[str, str] = {
    **COLUMN_DESCRIPTIONS,
    **CHARACTERISTICS,
    "median_hourly_pay": "Median hourly pay of the staff in post (GBP an hour).",
    "lines_with_breakdown": "Of those lines, the ones that give this breakdown (count).",
    "headcount_with_breakdown": "Staff on the lines that give this breakdown (persons).",
    "page": "Page number, from 1.",
    "limit": "Items per page.",
    "year": "Calendar year (YYYY).",
    "year_from": "First year (YYYY).",
    "year_to": "Last year (YYYY).",
    "base_year": "The run's base year (YYYY): the year of the workforce returns it starts from.",
    "first_year": "First year the dataset covers (YYYY).",
    "last_year": "Last year the dataset covers (YYYY).",
    "census_year": "Census year (YYYY).",
    "horizon": "Years projected after the base year.",
    "iterations": "Monte Carlo iterations (0: the principal projection only).",
    "seed": "Random seed of the Monte Carlo runs; the same seed gives the same results.",
    "progress": "Share of the run done, from 0 to 1.",
    "attempts": "Attempts made so far (count).",
    "attempt": "Attempt number, from 1.",
    "redeliveries": "Deliveries asked for again by hand (count).",
    "version": "Version number, from 1; each change adds one.",
    "previous_version": "The version compared against (from 1).",
    "would_be_version": "The version a real submission would get (from 1).",
    "scenario_version": "Version of the scenario the run used (from 1).",
    "line_count": "Lines (roles) in the return or file (count).",
    "return_count": "Returns stored (count).",
    "error_count": "Problems found (count).",
    "warning_count": "Warnings raised (count).",
    "row_count": "Rows loaded (count).",
    "comparisons": "Comparisons of a projected with an observed value (count).",
    "row": "Line of the return (the CSV's line, header = 1; or the JSON line, from 1).",
    "organisations": "Organisations with a return in the figures (count).",
    "organisations_registered": "Organisations registered in the area (count).",
    "rate": "Organisations with a return in the last 12 months over those registered (0 to 1).",
    "coverage": "Share of the sector's registered organisations with a recent return (0 to 1).",
    "expected_coverage": "Share of observed values the p10-p90 band should hold (0 to 1).",
    "fte": "Full-time equivalents deployed (FTE).",
    "fte_cap": "Most full-time equivalents that may be deployed in this role (FTE).",
    "sharing": "Net effect of staff-sharing deployments on the gap (FTE).",
    "p10": "10th percentile of the Monte Carlo runs (FTE).",
    "p90": "90th percentile of the Monte Carlo runs (FTE).",
    "difference_p50": "Median of the paired differences, second run minus first (FTE).",
    "difference_p90": "90th percentile of the paired differences, second run minus first (FTE).",
    "persons": f"People with the need, central estimate ({_PERSONS}).",
    "persons_upper": f"People with the need, upper end of the 95% interval ({_PERSONS}).",
    "career_framework_level": "Skills for Health career framework level (1-9).",
    "status_code": "HTTP status the receiver answered.",
    "last_status_code": "HTTP status of the last attempt.",
    "latency_ms": "Time the receiver took to answer (milliseconds).",
}


def _values(vocabulary: type[StrEnum]) -> tuple[str, ...]:
    return tuple(member.value for member in vocabulary)


# By member name in the listed schemas: strings that can only take these values.
ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    **{(schema, "measure"): MEASURES for schema in ("ProjectionResultRead", "ComparisonRow")},
    **{
        (schema, "measure"): TRACK_RECORD_MEASURES
        for schema in ("TrackRecordComparison", "TrackRecordSummary")
    },
    **{
        (schema, "sector"): _values(RoleSector)
        for schema in (
            "ProjectionResultRead",
            "WorkforceByRole",
            "ProjectionExplainRead",
            "PayRole",
        )
    },
    ("ProjectionRunRead", "status"): _values(RunStatus),
    ("WebhookDeliveryRead", "status"): _values(DeliveryStatus),
}
