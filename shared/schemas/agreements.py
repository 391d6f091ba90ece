"""Staff-sharing agreements and deployments: request bodies, read models, and the frozen view
of an agreement in force that the projector uses."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.models.agreement import AgreementMode
from shared.models.deployment import DeploymentStatus
from shared.schemas.keys import ICS_CODE_PATTERN

NOTE_MAX_CHARS = 5000
FTE_MAX = 100_000.0


class AgreementState(StrEnum):
    """The status a reader sees: the stored status, or `expired` once the end date has passed."""

    draft = "draft"
    pending_resign = "pending_resign"
    active = "active"
    suspended = "suspended"
    expired = "expired"
    terminated = "terminated"


class Governance(BaseModel):
    """Governance notes: how risk is shared, indemnity, who stays the employer, anything else."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    risk_share: str | None = Field(default=None, max_length=NOTE_MAX_CHARS)
    indemnity: str | None = Field(default=None, max_length=NOTE_MAX_CHARS)
    host_employer: str | None = Field(default=None, max_length=NOTE_MAX_CHARS)
    notes: str | None = Field(default=None, max_length=NOTE_MAX_CHARS)


class PartyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    organisation_id: uuid.UUID
    signatory_name: str | None = Field(default=None, min_length=1, max_length=200)
    signatory_role: str | None = Field(default=None, min_length=1, max_length=200)


class ScopeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    role_code: str = Field(min_length=1, max_length=64)
    lending_organisation_id: uuid.UUID
    fte_cap: float = Field(
        gt=0, le=FTE_MAX, description="Most FTE of this role the lender may have out at once"
    )


class AgreementCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    title: str = Field(min_length=1, max_length=300)
    ics_code: str | None = Field(
        default=None,
        pattern=ICS_CODE_PATTERN,
        description="The ICS (ICB code). Defaults to the ICS of an ICS-bound admin key.",
    )
    mode: AgreementMode
    start_date: date
    end_date: date
    governance: Governance = Field(default_factory=Governance)
    parties: list[PartyIn] = Field(max_length=200)
    scope: list[ScopeIn] = Field(max_length=2000)


_NOT_NULLABLE = ("title", "mode", "start_date", "end_date", "governance", "parties", "scope")


class AgreementUpdate(BaseModel):
    """Fields to change; `parties` and `scope` replace the whole list."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    title: str | None = Field(default=None, min_length=1, max_length=300)
    mode: AgreementMode | None = None
    start_date: date | None = None
    end_date: date | None = None
    governance: Governance | None = Field(
        default=None, description="Only the notes sent change; send null to clear one"
    )
    parties: list[PartyIn] | None = Field(default=None, max_length=200)
    scope: list[ScopeIn] | None = Field(default=None, max_length=2000)

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in _NOT_NULLABLE:
                if name in data and data[name] is None:
                    raise ValueError(f"{name} cannot be null; leave it out to keep it")
        return data


class Party(BaseModel):
    organisation_id: uuid.UUID
    organisation_name: str
    ods_code: str | None
    signatory_name: str | None
    signatory_role: str | None
    signed_at: datetime | None
    signed_by_key_id: uuid.UUID | None
    signed_on_behalf: bool


class ScopeEntry(BaseModel):
    role_code: str
    lending_organisation_id: uuid.UUID
    fte_cap: float


class Agreement(BaseModel):
    id: uuid.UUID
    title: str
    ics_code: str
    mode: AgreementMode
    status: AgreementState
    start_date: date
    end_date: date
    governance: Governance
    parties: list[Party]
    scope: list[ScopeEntry]
    fully_signed: bool = Field(description="Every party has signed the current terms")
    version: int
    created_at: datetime
    updated_at: datetime
    activated_at: datetime | None
    suspended_at: datetime | None
    terminated_at: datetime | None
    termination_reason: str | None


class SignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    organisation_id: uuid.UUID | None = Field(
        default=None,
        description="The party signing. Defaults to the key's organisation; an ICS admin "
        "recording a signature on a party's behalf must name it.",
    )
    signatory_name: str = Field(min_length=1, max_length=200)
    signatory_role: str = Field(min_length=1, max_length=200)


class SuspendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    reason: str | None = Field(default=None, max_length=NOTE_MAX_CHARS)


class TerminateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    reason: str = Field(min_length=1, max_length=NOTE_MAX_CHARS)


class DeploymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    from_organisation_id: uuid.UUID = Field(description="The lending party")
    to_organisation_id: uuid.UUID = Field(description="The receiving party")
    role_code: str = Field(min_length=1, max_length=64)
    fte: float = Field(gt=0, le=FTE_MAX)
    start_date: date
    end_date: date = Field(description="Last day of the deployment (inclusive)")
    reason: str = Field(min_length=1, max_length=NOTE_MAX_CHARS)


class DeploymentEnd(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    ended_on: date = Field(
        description="Last day of the deployment; before its planned end date. The day before "
        "its start withdraws a deployment that has not begun."
    )
    reason: str | None = Field(default=None, max_length=NOTE_MAX_CHARS)


class Deployment(BaseModel):
    id: uuid.UUID
    agreement_id: uuid.UUID
    from_organisation_id: uuid.UUID
    to_organisation_id: uuid.UUID
    role_code: str
    fte: float
    start_date: date
    end_date: date
    reason: str
    status: DeploymentStatus = Field(description="`ended` once ended early or past its last day")
    ended_early_on: date | None
    ended_at: datetime | None
    end_reason: str | None
    effective_end_date: date = Field(description="The early end date if any, else end_date")
    created_at: datetime
    updated_at: datetime


# The projector's view: plain frozen values, no ORM objects and no session.


@dataclass(frozen=True)
class LenderCap:
    """Most FTE of one role that one lending party may have deployed at once."""

    role_code: str
    lending_organisation_id: uuid.UUID
    fte_cap: float


@dataclass(frozen=True)
class ActiveAgreement:
    """An agreement in force on a date, with its parties and per-lender per-role caps."""

    id: uuid.UUID
    title: str
    ics_code: str
    mode: AgreementMode
    start_date: date
    end_date: date
    party_organisation_ids: tuple[uuid.UUID, ...]
    caps: tuple[LenderCap, ...]

    def cap_for(self, *, role_code: str, lending_organisation_id: uuid.UUID) -> float:
        """The lender's FTE cap for the role; 0 when the role is not in scope for it."""
        for cap in self.caps:
            if cap.role_code == role_code and cap.lending_organisation_id == (
                lending_organisation_id
            ):
                return cap.fte_cap
        return 0.0

    @property
    def role_codes(self) -> frozenset[str]:
        return frozenset(cap.role_code for cap in self.caps)
