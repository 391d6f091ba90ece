from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base, JSONType, UUIDPrimaryKey, utcnow
from shared.vocab.characteristics import BREAKDOWNS, CHARACTERISTIC_COLUMNS
from shared.vocab.return_lines import MAXIMUMS, OPTIONAL_COLUMNS


class ReturnStatus(StrEnum):
    current = "current"
    superseded = "superseded"


class ReturnSource(StrEnum):
    json = "json"
    csv = "csv"
    bulk = "bulk"
    demo = "demo"


class WorkforceReturn(UUIDPrimaryKey, Base):
    """One organisation's workforce at one date; posting again makes a new version."""

    __tablename__ = "workforce_returns"
    __table_args__ = (
        UniqueConstraint("organisation_id", "as_at", "version"),
        Index("ix_workforce_returns_org_status_as_at", "organisation_id", "status", "as_at"),
    )

    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT")
    )
    as_at: Mapped[date]
    version: Mapped[int] = mapped_column(default=1)
    status: Mapped[ReturnStatus] = mapped_column(String(12), default=ReturnStatus.current)
    source: Mapped[ReturnSource] = mapped_column(String(8))
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_by_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL"), default=None
    )
    line_count: Mapped[int] = mapped_column(default=0)
    warning_count: Mapped[int] = mapped_column(default=0)
    import_id: Mapped[uuid.UUID | None] = mapped_column(default=None, index=True)


def breakdown_check(columns: tuple[str, ...]) -> str:
    """A breakdown is either left out (all null) or complete and adds up to the headcount."""
    all_null = " AND ".join(f"{c} IS NULL" for c in columns)
    complete = " AND ".join(f"{c} IS NOT NULL" for c in columns)
    return f"({all_null}) OR ({complete} AND {' + '.join(columns)} = headcount)"


RETURN_LINE_RANGE_CHECK = " AND ".join(
    f"COALESCE({column}, 0) <= {int(maximum)}"
    if column in OPTIONAL_COLUMNS
    else f"{column} <= {int(maximum)}"
    for column, maximum in MAXIMUMS.items()
)

# The business rules a stored line always meets, enforced by the database itself (the same
# rules as shared/repositories/return_rules.py, which explains failures line by line).
RETURN_LINE_CHECKS: dict[str, str] = {
    "non_negative": (
        "headcount >= 0 AND fte_in_post >= 0 AND vacant_fte >= 0 AND starters_12m >= 0 "
        "AND leavers_12m >= 0 AND COALESCE(leavers_to_health_care_12m, 0) >= 0 "
        "AND sickness_days_12m >= 0 AND agency_fte >= 0 AND bank_fte >= 0 "
        "AND age_under_25 >= 0 AND age_25_34 >= 0 AND age_35_44 >= 0 AND age_45_54 >= 0 "
        "AND age_55_64 >= 0 AND age_65_plus >= 0 AND COALESCE(mean_hourly_pay, 0) >= 0"
    ),
    "fte_within_headcount": "fte_in_post <= headcount * 1.2",
    "age_bands_sum_to_headcount": (
        "age_under_25 + age_25_34 + age_35_44 + age_45_54 + age_55_64 + age_65_plus = headcount"
    ),
    "leavers_within_stock": "leavers_12m <= headcount + starters_12m",
    "vacancies_plausible": "vacant_fte <= fte_in_post OR fte_in_post <= 0",
    "sickness_plausible": "sickness_days_12m <= 365 * headcount",
    "leavers_split_within_leavers": (
        "leavers_to_health_care_12m IS NULL OR leavers_to_health_care_12m <= leavers_12m"
    ),
    "optional_figures_non_negative": (
        "COALESCE(median_hourly_pay, 0) >= 0 AND "
        + " AND ".join(f"COALESCE({c}, 0) >= 0" for c in CHARACTERISTIC_COLUMNS)
    ),
    **{
        f"{name}_sums_to_headcount": breakdown_check(columns)
        for name, columns in BREAKDOWNS.items()
    },
    # The documented maximums (shared/vocab/return_lines.py). NaN and Infinity fail them too:
    # PostgreSQL orders NaN above every number.
    "within_range": RETURN_LINE_RANGE_CHECK,
}


class ReturnLine(Base):
    """One role's figures in a return. Headcounts are people; FTE are full-time equivalents."""

    __tablename__ = "return_lines"
    __table_args__ = tuple(
        CheckConstraint(sql, name=name) for name, sql in RETURN_LINE_CHECKS.items()
    )

    return_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workforce_returns.id", ondelete="CASCADE"), primary_key=True
    )
    role_code: Mapped[str] = mapped_column(ForeignKey("roles.code"), primary_key=True, index=True)
    headcount: Mapped[int]
    fte_in_post: Mapped[float]
    vacant_fte: Mapped[float]
    starters_12m: Mapped[int]
    leavers_12m: Mapped[int]
    leavers_to_health_care_12m: Mapped[int | None] = mapped_column(default=None)
    sickness_days_12m: Mapped[float]
    agency_fte: Mapped[float]
    bank_fte: Mapped[float]
    age_under_25: Mapped[int]
    age_25_34: Mapped[int]
    age_35_44: Mapped[int]
    age_45_54: Mapped[int]
    age_55_64: Mapped[int]
    age_65_plus: Mapped[int]
    mean_hourly_pay: Mapped[float | None] = mapped_column(default=None)
    median_hourly_pay: Mapped[float | None] = mapped_column(default=None)
    # Optional breakdowns of headcount (shared/vocab/characteristics.py): each is either left
    # out (every column null) or adds up to the headcount.
    ethnicity_asian: Mapped[int | None] = mapped_column(default=None)
    ethnicity_black: Mapped[int | None] = mapped_column(default=None)
    ethnicity_mixed: Mapped[int | None] = mapped_column(default=None)
    ethnicity_white: Mapped[int | None] = mapped_column(default=None)
    ethnicity_other: Mapped[int | None] = mapped_column(default=None)
    ethnicity_not_stated: Mapped[int | None] = mapped_column(default=None)
    disability_yes: Mapped[int | None] = mapped_column(default=None)
    disability_no: Mapped[int | None] = mapped_column(default=None)
    disability_not_stated: Mapped[int | None] = mapped_column(default=None)
    sex_female: Mapped[int | None] = mapped_column(default=None)
    sex_male: Mapped[int | None] = mapped_column(default=None)
    sex_not_stated: Mapped[int | None] = mapped_column(default=None)
    afc_band_1: Mapped[int | None] = mapped_column(default=None)
    afc_band_2: Mapped[int | None] = mapped_column(default=None)
    afc_band_3: Mapped[int | None] = mapped_column(default=None)
    afc_band_4: Mapped[int | None] = mapped_column(default=None)
    afc_band_5: Mapped[int | None] = mapped_column(default=None)
    afc_band_6: Mapped[int | None] = mapped_column(default=None)
    afc_band_7: Mapped[int | None] = mapped_column(default=None)
    afc_band_8a: Mapped[int | None] = mapped_column(default=None)
    afc_band_8b: Mapped[int | None] = mapped_column(default=None)
    afc_band_8c: Mapped[int | None] = mapped_column(default=None)
    afc_band_8d: Mapped[int | None] = mapped_column(default=None)
    afc_band_9: Mapped[int | None] = mapped_column(default=None)


class ReturnWarning(UUIDPrimaryKey, Base):
    """A figure worth a second look; stored with the return, never blocking it."""

    __tablename__ = "return_warnings"

    return_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workforce_returns.id", ondelete="CASCADE"), index=True
    )
    row: Mapped[int | None] = mapped_column(default=None)
    role_code: Mapped[str | None] = mapped_column(String(64), default=None)
    column: Mapped[str | None] = mapped_column(String(40), default=None)
    code: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(String(300))


class IdempotencyRecord(Base):
    """The answer given to a create request, replayed when the same key is sent again."""

    __tablename__ = "idempotency_records"

    api_key_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    response: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImportStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class ReturnImport(UUIDPrimaryKey, Base):
    """A bulk load of many organisations' returns from one CSV file."""

    __tablename__ = "return_imports"
    __table_args__ = (Index("ix_return_imports_status_heartbeat", "status", "heartbeat_at"),)

    status: Mapped[ImportStatus] = mapped_column(String(10), default=ImportStatus.queued)
    submitted_by_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL"), default=None
    )
    ics_code: Mapped[str | None] = mapped_column(String(9), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # The worker loading it beats while it works; the reaper recovers an import that stops.
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    line_count: Mapped[int] = mapped_column(default=0)
    return_count: Mapped[int] = mapped_column(default=0)
    error_count: Mapped[int] = mapped_column(default=0)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    timings: Mapped[dict[str, float]] = mapped_column(JSONType, default=dict)
