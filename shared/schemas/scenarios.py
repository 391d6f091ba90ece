"""Scenario resources: a scenario's name, owner, versions and each changed lever's rationale.

The parameters themselves follow the contract in shared/schemas/scenario_parameters.py.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


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
