from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.models.organisation import OrganisationKind, OrganisationSector

ODS_PATTERN = r"^[A-Z0-9]{3,10}$"
CQC_PATTERN = r"^1-[0-9]{6,12}$"


class OrganisationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=300)
    kind: OrganisationKind
    sector: OrganisationSector
    ods_code: str | None = Field(default=None, pattern=ODS_PATTERN)
    cqc_location_id: str | None = Field(default=None, pattern=CQC_PATTERN)
    home_lad_code: str = Field(pattern=r"^E0[6-9][0-9]{6}$", description="ONS LAD code")
    opened_on: date | None = None


class OrganisationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str | None = Field(default=None, min_length=1, max_length=300)
    kind: OrganisationKind | None = None
    sector: OrganisationSector | None = None
    ods_code: str | None = Field(default=None, pattern=ODS_PATTERN)
    cqc_location_id: str | None = Field(default=None, pattern=CQC_PATTERN)
    home_lad_code: str | None = Field(default=None, pattern=r"^E0[6-9][0-9]{6}$")
    opened_on: date | None = None


class OrganisationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    kind: OrganisationKind
    sector: OrganisationSector
    ods_code: str | None
    cqc_location_id: str | None
    home_lad_code: str
    ics_code: str
    opened_on: date | None
    version: int
    created_at: datetime
    updated_at: datetime
