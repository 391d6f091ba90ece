"""Projection run requests and read models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field


class ProjectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

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
    fingerprint: str | None = Field(
        description="SHA-256 of every input the run read; its parts are at links.fingerprint"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def links(self) -> dict[str, str]:
        """Where the run's status, results, explanation and fingerprint inputs are read."""
        base = f"/v1/projections/{self.id}"
        return {
            "self": base,
            "results": f"{base}/results",
            "export": f"{base}/export",
            "explain": f"{base}/explain",
            "fingerprint": f"{base}/fingerprint",
        }


class ProjectionFingerprintRead(BaseModel):
    """The inputs a run read (dataset, scenario version, each return id and version...)."""

    run_id: uuid.UUID
    fingerprint: str | None
    parts: dict[str, Any]


class ProjectionResultRead(BaseModel):
    """One measure for one area, role and year, in FTE rounded to 2 decimals."""

    area_code: str
    role_code: str = Field(description="A catalogue role code, or 'all' for the total")
    role_name: str
    sector: str | None = Field(description="The role's sector; none for 'all'")
    measure: str
    year: int
    principal: float = Field(description="The central projection (FTE)")
    p10: float = Field(description="10th percentile of the Monte Carlo runs (FTE)")
    p50: float = Field(description="Median of the Monte Carlo runs (FTE)")
    p90: float = Field(description="90th percentile of the Monte Carlo runs (FTE)")


class ProjectionExplainRead(BaseModel):
    """Sign convention: FTE of gap after sharing (demand - supply, positive = shortfall). A
    positive contribution widens the gap between `from` and `to`; a negative one narrows it
    (joiners are negative, demand growth positive). Contributions add up exactly to
    total_change_fte, and the net effects are sums of the gross contributions."""

    run_id: uuid.UUID
    area_code: str
    role_code: str = Field(description="The role, or 'all' (also when by=sector)")
    sector: str | None = Field(default=None, description="Set when explaining a sector")
    year_from: int | None = None
    year_to: int | None = None
    total_change_fte: float = Field(
        description="Gap after sharing in year_to - gap after sharing in year_from (FTE)"
    )
    contributions_fte: dict[str, float] = Field(
        description="Gross contributions by component (FTE, positive widens the gap)"
    )
    net_fte: ExplainNet | None = Field(
        default=None, description="Net demand, supply and sharing effects (FTE)"
    )
    base_gap: BaseGapSplit | None = Field(
        default=None, description="The base-year gap split into vacancies and sickness absence"
    )


class ProjectionRefresh(BaseModel):
    """The run that will replace a stale latest projection: queued or running."""

    run_id: uuid.UUID
    scope: str
    status: str
    queued_at: datetime


class LatestProjection(BaseModel):
    run: ProjectionRunRead
    area_code: str
    stale: bool = Field(
        description="An input the run used has changed since (a return, its scenario, the "
        "population, a role's driver or a sharing agreement): the figures are not current."
    )
    refresh: ProjectionRefresh | None = Field(
        default=None,
        description="When stale: the fresh run queued or running for this area, if there is one.",
    )
    results: list[ProjectionResultRead]


class RunSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    scenario: str = Field(validation_alias="scenario_name")
    scenario_version: int
    stale: bool


class ComparisonRow(BaseModel):
    area_code: str
    group: str = Field(description="A role code or a sector (by=sector); 'all' for every role")
    measure: str
    year: int
    base_principal: float = Field(description="FTE")
    other_principal: float = Field(description="FTE")
    difference_principal: float = Field(
        description="other - base at central values (FTE); equals other_principal - base_principal"
    )
    difference_p10: float = Field(description="10th percentile of the paired draw differences")
    difference_p50: float
    difference_p90: float
    share_of_draws_better: float | None = Field(
        description="Share of the paired draws in which the other run is better: more "
        "supply_fte, or less demand_fte, gap_fte or gap_after_sharing_fte; null without draws"
    )


class ProjectionComparison(BaseModel):
    base: RunSummary
    other: RunSummary
    scope: str
    base_year: int
    horizon: int
    seed: int
    draws: int = Field(description="Paired draws behind the percentiles and shares")
    area_code: str
    by: str
    rows: list[ComparisonRow]


class ExplainNet(BaseModel):
    demand: float = Field(description="demography + productivity + substitution")
    supply: float = Field(description="leavers + retirement + joiners + cross_sector_flows")
    sharing: float


class BaseGapSplit(BaseModel):
    year: int
    gap_fte: float = Field(
        description="Gap before sharing in the base year = vacancies_fte + sickness_absence_fte"
    )
    vacancies_fte: float = Field(description="Vacant FTE posted in the returns")
    sickness_absence_fte: float = Field(
        description="FTE in post lost to sickness absence (FTE in post x sickness rate)"
    )
    sharing_fte: float = Field(description="Gap after sharing - gap in the base year")


ProjectionExplainRead.model_rebuild()
