"""Projection runs, their per-ICB parts, results and explanations."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base, FloatListType, JSONType, UUIDPrimaryKey, utcnow

ENGLAND_CODE = "E92000001"
ALL_ROLES = "all"


class RunStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class ProjectionRun(UUIDPrimaryKey, Base):
    """One requested projection of a scope (an ICB, or England) under one scenario version."""

    __tablename__ = "projection_runs"
    __table_args__ = (
        Index("ix_projection_runs_scope_status_finished", "scope", "status", "finished_at"),
        Index("ix_projection_runs_status_heartbeat", "status", "heartbeat_at"),
    )

    scenario_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("scenarios.id", ondelete="RESTRICT"), index=True
    )
    scenario_name: Mapped[str] = mapped_column(String(64))
    scenario_version: Mapped[int]
    scope: Mapped[str] = mapped_column(String(9))
    # The ICS whose keys may see the run; None for an England run.
    ics_code: Mapped[str | None] = mapped_column(String(9), default=None, index=True)
    base_year: Mapped[int]
    horizon: Mapped[int]
    iterations: Mapped[int]
    seed: Mapped[int]
    status: Mapped[RunStatus] = mapped_column(String(10), default=RunStatus.queued)
    progress: Mapped[float] = mapped_column(default=0.0)
    attempts: Mapped[int] = mapped_column(default=0)
    # England runs: how many times the combine step has been queued (see pipeline.py).
    combine_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    timings: Mapped[dict[str, float]] = mapped_column(JSONType, default=dict)
    model_version: Mapped[str | None] = mapped_column(String(20), default=None)
    fingerprint: Mapped[str | None] = mapped_column(String(64), default=None)
    fingerprint_parts: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    stale: Mapped[bool] = mapped_column(default=False)
    requested_by_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL"), default=None
    )


class ProjectionRunPart(Base):
    """One ICB's share of an England run: its own job, results and per-run totals."""

    __tablename__ = "projection_run_parts"

    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projection_runs.id", ondelete="CASCADE"), primary_key=True
    )
    ics_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    status: Mapped[RunStatus] = mapped_column(String(10), default=RunStatus.queued)
    attempts: Mapped[int] = mapped_column(default=0)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    role_codes: Mapped[list[str]] = mapped_column(JSONType, default=list)
    fingerprint_parts: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # np.save of (measures, runs, roles, years) float64: the ICB's per-run totals by role, which
    # the combine step sums over ICBs before taking England's percentiles.
    run_totals: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)


class ProjectionSeries(Base):
    """One measure for one area and role ('all' for the total) of a run, in FTE, over the run's
    years: element t of each list is the year `first_year + t`.

    A run stores a series per (area, role, measure) rather than a row per year: an England run
    writes about 40,000 series instead of 770,000 rows, and maintaining the key of that many
    rows cost as much time as the model. Reads expand the series into one row per year (see
    `results_query`), so every representation of results is still a row per year.

    No foreign key to the run: PostgreSQL checks one row by row. Only the run's own jobs write
    these rows, after locking their run or part row, and runs are never deleted (see
    docs/projection-locking.md).
    """

    __tablename__ = "projection_series"

    run_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    area_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    role_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    measure: Mapped[str] = mapped_column(String(32), primary_key=True)
    first_year: Mapped[int]
    principal: Mapped[list[float]] = mapped_column(FloatListType)
    p10: Mapped[list[float]] = mapped_column(FloatListType)
    p50: Mapped[list[float]] = mapped_column(FloatListType)
    p90: Mapped[list[float]] = mapped_column(FloatListType)


class ProjectionExplain(Base):
    """What moved the gap after sharing from base year to horizon, for one area and role."""

    __tablename__ = "projection_explain"

    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projection_runs.id", ondelete="CASCADE"), primary_key=True
    )
    area_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    role_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    contributions: Mapped[dict[str, float]] = mapped_column(JSONType)
    total_change: Mapped[float]
    # The gap after sharing of every switch state in every year ({"states": [[..T]..S+1],
    # "gap_after_sharing": [..T]}), so any pair of years can be explained; None for runs
    # written before it was kept.
    by_year: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    # The base-year gap (before sharing) split: {"gap", "vacancies", "sickness_absence"} FTE.
    base_split: Mapped[dict[str, float] | None] = mapped_column(JSONType, default=None)


class ProjectionDraws(Base):
    """Every Monte Carlo draw's totals for one area of a run, for paired comparisons.

    values is np.save of float64 (len(DRAW_MEASURES), iterations + 1, roles, years): run 0 is
    the principal, runs 1..N the draws, which depend only on the seed and the draw's number,
    so two runs with one seed are paired draw by draw. role_codes names the roles axis
    (["all"] for a LAD, whose draws are kept for all roles together).
    """

    __tablename__ = "projection_draws"

    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projection_runs.id", ondelete="CASCADE"), primary_key=True
    )
    area_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    role_codes: Mapped[list[str]] = mapped_column(JSONType)
    values: Mapped[bytes] = mapped_column(LargeBinary)


DRAW_MEASURES: tuple[str, ...] = ("demand_fte", "supply_fte", "gap_after_sharing_fte")
