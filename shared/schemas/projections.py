"""Projection run requests and read models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ProjectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenario: str = Field(default="baseline", min_length=1, max_length=64)
    scope: str = Field(min_length=9, max_length=9, description="An ICB code or E92000001")
    base_year: int | None = Field(default=None, ge=2000, le=2100)
    horizon: int | None = Field(
        default=None,
        ge=1,
        le=25,
        description="Years after the base year; default 20, or as far as the population "
        "projections go",
    )
    iterations: int = Field(default=200, ge=0, le=1000)
    seed: int = Field(default=1, ge=0, le=2**31 - 1)


class ProjectionRunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    scenario: str = Field(validation_alias="scenario_name")
    scenario_version: int
    scope: str
    base_year: int
    horizon: int
    iterations: int
    seed: int
    status: str
    progress: float
    attempts: int
    error: str | None
    stale: bool
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    timings: dict[str, float]
    model_version: str | None
    fingerprint: str | None
    fingerprint_parts: dict[str, Any]


class ProjectionResultRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    area_code: str
    role_code: str
    measure: str
    year: int
    principal: float
    p10: float
    p50: float
    p90: float


class ProjectionExplainRead(BaseModel):
    run_id: uuid.UUID
    area_code: str
    role_code: str
    total_change_fte: float
    contributions_fte: dict[str, float]


class LatestProjection(BaseModel):
    run: ProjectionRunRead
    area_code: str
    results: list[ProjectionResultRead]
