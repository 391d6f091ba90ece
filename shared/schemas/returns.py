from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from shared.models.workforce_return import ImportStatus, ReturnSource, ReturnStatus
from shared.vocab.return_lines import MAX_FTE, MAX_HOURLY_PAY, MAX_PERSONS, MAX_SICKNESS_DAYS

Number = StrictInt | StrictFloat
# Finite (the models refuse NaN and Infinity) and within the documented maximum.
Persons = Annotated[Number, Field(le=MAX_PERSONS)]
Fte = Annotated[Number, Field(le=MAX_FTE)]
Days = Annotated[Number, Field(le=MAX_SICKNESS_DAYS)]
Pay = Annotated[Number, Field(le=MAX_HOURLY_PAY)]


class ReturnLineIn(BaseModel):
    """One role's figures. Headcounts are people; FTE are full-time equivalents; 12m = the last
    12 months. Rules (FTE vs headcount, age bands, leavers...) are checked after parsing.

    Optional breakdowns of headcount, each given whole or left out and adding up to the
    headcount: ethnicity_* (Census 2021's five high-level groups and not stated),
    disability_* (yes, no, not stated), sex_* (female, male, not stated) and, for NHS roles,
    afc_band_* (Agenda for Change bands 1 to 9). Pay: median and mean hourly pay in GBP."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    role_code: str = Field(min_length=1, max_length=64)
    headcount: Persons
    fte_in_post: Fte
    vacant_fte: Fte
    starters_12m: Persons
    leavers_12m: Persons
    leavers_to_health_care_12m: Persons | None = None
    sickness_days_12m: Days
    agency_fte: Fte
    bank_fte: Fte
    age_under_25: Persons
    age_25_34: Persons
    age_35_44: Persons
    age_45_54: Persons
    age_55_64: Persons
    age_65_plus: Persons
    mean_hourly_pay: Pay | None = None
    median_hourly_pay: Pay | None = Field(None, description="GBP an hour")
    ethnicity_asian: Persons | None = None
    ethnicity_black: Persons | None = None
    ethnicity_mixed: Persons | None = None
    ethnicity_white: Persons | None = None
    ethnicity_other: Persons | None = None
    ethnicity_not_stated: Persons | None = None
    disability_yes: Persons | None = None
    disability_no: Persons | None = None
    disability_not_stated: Persons | None = None
    sex_female: Persons | None = None
    sex_male: Persons | None = None
    sex_not_stated: Persons | None = None
    afc_band_1: Persons | None = None
    afc_band_2: Persons | None = None
    afc_band_3: Persons | None = None
    afc_band_4: Persons | None = None
    afc_band_5: Persons | None = None
    afc_band_6: Persons | None = None
    afc_band_7: Persons | None = None
    afc_band_8a: Persons | None = None
    afc_band_8b: Persons | None = None
    afc_band_8c: Persons | None = None
    afc_band_8d: Persons | None = None
    afc_band_9: Persons | None = None


class ReturnCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    as_at: date
    lines: list[ReturnLineIn] = Field(min_length=1, max_length=5000)


class ReturnLineRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    role_code: str
    headcount: int
    fte_in_post: float
    vacant_fte: float
    starters_12m: int
    leavers_12m: int
    leavers_to_health_care_12m: int | None
    sickness_days_12m: float
    agency_fte: float
    bank_fte: float
    age_under_25: int
    age_25_34: int
    age_35_44: int
    age_45_54: int
    age_55_64: int
    age_65_plus: int
    mean_hourly_pay: float | None
    median_hourly_pay: float | None = None
    ethnicity_asian: int | None = None
    ethnicity_black: int | None = None
    ethnicity_mixed: int | None = None
    ethnicity_white: int | None = None
    ethnicity_other: int | None = None
    ethnicity_not_stated: int | None = None
    disability_yes: int | None = None
    disability_no: int | None = None
    disability_not_stated: int | None = None
    sex_female: int | None = None
    sex_male: int | None = None
    sex_not_stated: int | None = None
    afc_band_1: int | None = None
    afc_band_2: int | None = None
    afc_band_3: int | None = None
    afc_band_4: int | None = None
    afc_band_5: int | None = None
    afc_band_6: int | None = None
    afc_band_7: int | None = None
    afc_band_8a: int | None = None
    afc_band_8b: int | None = None
    afc_band_8c: int | None = None
    afc_band_8d: int | None = None
    afc_band_9: int | None = None


class ReturnWarningRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    row: int | None
    role_code: str | None
    column: str | None
    code: str
    message: str


class ReturnSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    organisation_id: uuid.UUID
    as_at: date
    version: int
    status: ReturnStatus
    source: ReturnSource
    submitted_at: datetime
    line_count: int
    warning_count: int


class ReturnRead(ReturnSummary):
    lines: list[ReturnLineRead]
    warnings: list[ReturnWarningRead]


class DryRunResult(BaseModel):
    dry_run: bool = True
    valid: bool = True
    organisation_id: uuid.UUID
    as_at: date
    line_count: int
    would_be_version: int
    warnings: list[ReturnWarningRead]


class FieldChange(BaseModel):
    field: str
    previous: Any
    current: Any


class LineDiff(BaseModel):
    role_code: str
    change: str = Field(description="added, removed or changed")
    fields: list[FieldChange] = Field(default_factory=list)


class ReturnDiff(BaseModel):
    return_id: uuid.UUID
    version: int
    previous_return_id: uuid.UUID | None
    previous_version: int | None
    lines: list[LineDiff]


class WorkforceByRole(BaseModel):
    """One role's workforce in an area; FTE rounded to 2 decimals, rates to 4."""

    role_code: str = Field(description="A catalogue role code, or 'all' for the total")
    role_name: str
    sector: str | None = Field(description="The role's sector; none for 'all'")
    organisations: int
    headcount: int = Field(description="People")
    fte_in_post: float = Field(description="Full-time equivalents in post")
    vacant_fte: float = Field(description="Vacant posts, FTE")
    vacancy_rate: float | None = Field(description="vacant FTE / (FTE in post + vacant FTE)")
    turnover_rate: float | None = Field(description="leavers (12m) / headcount")
    sickness_rate: float | None = Field(
        description="sickness days (12m) / (headcount x 225 working days)"
    )
    agency_share: float | None = Field(
        description="agency FTE / (FTE in post + bank FTE + agency FTE)"
    )


class Completeness(BaseModel):
    organisations_registered: int
    organisations_reporting: int = Field(description="with a return dated in the last 12 months")
    rate: float | None


class AreaWorkforce(BaseModel):
    area_code: str
    as_at: date
    completeness: Completeness
    total: WorkforceByRole
    roles: list[WorkforceByRole]


class ImportRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: ImportStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    line_count: int
    return_count: int
    error_count: int
    errors: list[dict[str, Any]]
    timings: dict[str, float]
