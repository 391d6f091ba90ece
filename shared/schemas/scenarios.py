"""Scenario resources and the published JSON Schema of projection parameters.

`ScenarioParametersDocument` is the contract portals build editors against; the projector's
own parser (services/projector/model/params.py) checks ranges and role codes. A test keeps
the two in step.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Driver = Literal[
    "population_all",
    "population_0_17",
    "population_18_64",
    "population_65_plus",
    "population_75_plus",
    "population_85_plus",
    "dementia_65_plus",
    "custom",
]
SIX_BANDS = "six values: under 25, 25-34, 35-44, 45-54, 55-64, 65+"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ByRoleLever(_Strict):
    default: float = Field(0.0, description="Value for every role")
    by_role: dict[str, float] = Field(default_factory=dict, description="Overrides by role code")


class CustomDriverWeightsDocument(_Strict):
    female: list[float] = Field(min_length=19, max_length=19, description="0-4 .. 90+")
    male: list[float] = Field(min_length=19, max_length=19, description="0-4 .. 90+")


class SubstitutionDocument(_Strict):
    from_role: str
    to_role: str
    share: float = Field(ge=0, le=1, description="Share of from_role demand moved")
    ratio: float = Field(1.0, gt=0, description="to_role FTE per from_role FTE")
    phase_in_years: int = Field(0, ge=0)


class IntakeDocument(_Strict):
    role: str
    headcount_per_year: float = Field(ge=0, description="Persons per year, per ICS footprint")
    first_year: int = Field(1, ge=1)
    last_year: int | None = None


class CrossSectorFlowDocument(_Strict):
    from_role: str
    to_role: str
    share_of_leavers: float = Field(ge=0, le=1)


class UncertaintyDocument(_Strict):
    leaving_multiplier_sd_log: float = 0.15
    joining_multiplier_sd_log: float = 0.15
    productivity_growth_sd: float = 0.005
    population_growth_sd_log: float = 0.2
    population_variant_quantile: float = 0.9


class ScenarioParametersDocument(_Strict):
    """Every lever of the projection; omitted levers take the baseline value (off)."""

    default_demand_driver: Driver = "population_all"
    demand_driver_by_role: dict[str, Driver] = Field(default_factory=dict)
    custom_driver_weights: dict[str, CustomDriverWeightsDocument] = Field(default_factory=dict)
    productivity_growth_per_year: ByRoleLever = Field(default_factory=ByRoleLever)
    non_demographic_growth_per_year: ByRoleLever = Field(default_factory=ByRoleLever)
    prevention_reduction: ByRoleLever = Field(default_factory=ByRoleLever)
    prevention_phase_in_years: int = 5
    substitutions: list[SubstitutionDocument] = Field(default_factory=list)
    retirement_hazard: list[float] = Field(
        default=[0.0, 0.0, 0.0, 0.005, 0.07, 0.25], description=SIX_BANDS
    )
    retirement_hazard_by_role: dict[str, list[float]] = Field(default_factory=dict)
    joiner_age_mix: list[float] = Field(
        default=[0.25, 0.35, 0.20, 0.13, 0.06, 0.01], description=SIX_BANDS
    )
    newly_qualified_age_mix: list[float] = Field(
        default=[0.55, 0.35, 0.08, 0.02, 0.0, 0.0], description=SIX_BANDS
    )
    international_age_mix: list[float] = Field(
        default=[0.05, 0.60, 0.28, 0.06, 0.01, 0.0], description=SIX_BANDS
    )
    workforce_age_mix_when_unknown: list[float] = Field(
        default=[0.07, 0.25, 0.25, 0.24, 0.17, 0.02], description=SIX_BANDS
    )
    recruitment_change: ByRoleLever = Field(default_factory=ByRoleLever)
    international_recruitment: list[IntakeDocument] = Field(default_factory=list)
    training_pipeline: list[IntakeDocument] = Field(default_factory=list)
    cross_sector_flows: list[CrossSectorFlowDocument] = Field(default_factory=list)
    agency_conversion: ByRoleLever = Field(default_factory=ByRoleLever)
    working_days_per_year: float = 225.0
    fte_per_head_when_unknown: float = 0.88
    leaving_rate_when_unknown: float = 0.15
    sickness_days_per_head_when_unknown: float = 9.5
    uncertainty: UncertaintyDocument = Field(default_factory=UncertaintyDocument)


class Rationale(_Strict):
    rationale: str = Field(min_length=1, max_length=2000, description="Why the lever changes")
    source: str = Field(min_length=1, max_length=1000, description="Evidence: citation or URL")


class ScenarioCreate(_Strict):
    name: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", min_length=2, max_length=64)
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    ics_code: str | None = Field(None, pattern=r"^E54\d{6}$", description="Owning ICS")
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Changed levers only (see GET /v1/scenarios/schema); the rest are baseline",
    )
    rationale: dict[str, Rationale] = Field(
        default_factory=dict, description="For each changed lever: why, and the source"
    )


class ScenarioUpdate(_Strict):
    title: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=4000)
    parameters: dict[str, Any] = Field(default_factory=dict)
    rationale: dict[str, Rationale] = Field(default_factory=dict)


class ScenarioRead(BaseModel):
    id: uuid.UUID
    name: str
    title: str
    description: str
    ics_code: str | None
    version: int
    parameters: dict[str, Any]
    changed: list[str] = Field(description="Levers that differ from the baseline")
    rationale: dict[str, Any]
    updated_at: datetime


class ScenarioVersionRead(BaseModel):
    version: int
    parameters: dict[str, Any]
    rationale: dict[str, Any]
    created_at: datetime
