"""Role catalogue schemas: create, update (all optional, `code` never changes) and read."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from shared.models.role import RegistrationBody, RoleSector
from shared.vocab.drivers import DemandDriver

ROLE_CODE_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"


class NhsStaffGroup(StrEnum):
    """NHS Digital's HCHS staff groups, spelt exactly as in its workforce statistics."""

    hchs_doctors = "HCHS doctors"
    nurses_health_visitors = "Nurses & health visitors"
    midwives = "Midwives"
    ambulance_staff = "Ambulance staff"
    scientific_therapeutic_technical = "Scientific, therapeutic & technical staff"
    support_doctors_nurses_midwives = "Support to doctors, nurses & midwives"
    support_ambulance = "Support to ambulance staff"
    support_stt = "Support to ST&T staff"
    central_functions = "Central functions"
    hotel_property_estates = "Hotel, property & estates"
    senior_managers = "Senior managers"
    managers = "Managers"


class AscWdsJobRole(StrEnum):
    """Skills for Care's Adult Social Care Workforce Data Set main job roles, as spelt there."""

    activities_worker = "Activities worker, coordinator"
    administrative = "Administrative, office staff (non care-providing)"
    advice_guidance_advocacy = "Advice, guidance and advocacy"
    allied_health_professional = "Allied health professional (not occupational therapist)"
    ancillary = "Ancillary staff (non care-providing)"
    childrens_role = "Any children's, young people's job role"
    assessment_officer = "Assessment officer"
    care_coordinator = "Care coordinator"
    care_navigator = "Care navigator"
    care_worker = "Care worker"
    community_support_outreach = "Community, support and outreach work"
    employment_support = "Employment support"
    first_line_manager = "First-line manager"
    care_related_managers = "Managers and staff (care-related, but not care-providing)"
    middle_management = "Middle management"
    nursing_assistant = "Nursing assistant"
    nursing_associate = "Nursing associate"
    occupational_therapist = "Occupational therapist"
    occupational_therapist_assistant = "Occupational therapist assistant"
    other_care_providing = "Other (directly involved in providing care)"
    other_not_care_providing = "Other (not directly involved in providing care)"
    registered_manager = "Registered Manager"
    registered_nurse = "Registered Nurse"
    safeguarding_reviewing_officer = "Safeguarding and reviewing officer"
    senior_care_worker = "Senior care worker"
    senior_management = "Senior management"
    social_worker = "Social worker"
    supervisor = "Supervisor"
    technician = "Technician"


# Verhoeff dihedral-group tables: SNOMED CT identifiers end in a Verhoeff check digit.
_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def is_snomed_concept_id(value: str) -> bool:
    """A well-formed SNOMED CT concept id: 6-18 digits, concept partition, valid check digit."""
    if not (value.isascii() and value.isdigit() and 6 <= len(value) <= 18):
        return False
    if value[0] == "0" or value[-3:-1] not in ("00", "10"):
        return False
    check = 0
    for position, digit in enumerate(reversed(value)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[position % 8][int(digit)]]
    return check == 0


def _snomed_concept_id(value: str) -> str:
    if not is_snomed_concept_id(value):
        raise PydanticCustomError(
            "snomed_ct_concept_id",
            "Not a SNOMED CT concept id (6-18 digits with a valid check digit).",
        )
    return value


RoleCode = Annotated[
    str,
    Field(
        min_length=2,
        max_length=64,
        pattern=ROLE_CODE_PATTERN,
        description="Stable slug: lowercase letters, digits and single hyphens",
        examples=["care-worker"],
    ),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
StaffGroup = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
PayBand = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)]
ListItem = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
ItemList = Annotated[list[ListItem], Field(max_length=50)]
CareerFrameworkLevel = Annotated[
    int, Field(ge=1, le=9, description="Skills for Health career framework level (1-9)")
]
SnomedConceptId = Annotated[
    str,
    AfterValidator(_snomed_concept_id),
    Field(description="SNOMED CT occupation concept id", examples=["224535009"]),
]

_DEMAND_DRIVER_HELP = (
    "Population measure the role's demand grows with; `custom` means the scenario supplies "
    "age-sex weights"
)


class RoleCreate(BaseModel):
    """A new role for the catalogue."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    code: RoleCode
    name: Name
    sector: RoleSector
    staff_group: StaffGroup = Field(description="The catalogue's cross-sector staff group")
    pay_band: PayBand | None = None
    career_framework_level: CareerFrameworkLevel | None = None
    registration_body: RegistrationBody = RegistrationBody.none
    is_new_role: bool = Field(
        default=False, description="A role type created to redesign the workforce"
    )
    description: Description = ""
    capabilities: ItemList = Field(default_factory=list)
    training_requirements: ItemList = Field(default_factory=list)
    default_demand_driver: DemandDriver = Field(description=_DEMAND_DRIVER_HELP)
    asc_wds_job_role: AscWdsJobRole | None = Field(
        default=None, description="ASC-WDS main job role this role is reported as"
    )
    nhs_staff_group: NhsStaffGroup | None = Field(
        default=None, description="NHS HCHS staff group this role is reported under"
    )
    snomed_ct_occupation: SnomedConceptId | None = None


# Fields a PATCH may set to null; every other field may be left out but not cleared.
NULLABLE_FIELDS = frozenset(
    {
        "pay_band",
        "career_framework_level",
        "asc_wds_job_role",
        "nhs_staff_group",
        "snomed_ct_occupation",
    }
)


def _hide_null_where_refused(schema: dict[str, Any]) -> None:
    # The fields are Optional only so that they may be left out; null itself is refused.
    for name, field_schema in schema.get("properties", {}).items():
        if name in NULLABLE_FIELDS or "anyOf" not in field_schema:
            continue
        kept = [option for option in field_schema.pop("anyOf") if option.get("type") != "null"]
        field_schema.pop("default", None)
        if len(kept) == 1:
            field_schema.update(kept[0])
        else:
            field_schema["anyOf"] = kept


class RoleUpdate(BaseModel):
    """A partial update; send only the fields that change. `code` can never change."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_hide_null_where_refused)

    # Declared only so that sending it gets its own error code instead of "extra_forbidden".
    code: SkipJsonSchema[Any] = None
    name: Name | None = None
    sector: RoleSector | None = None
    staff_group: StaffGroup | None = None
    pay_band: PayBand | None = None
    career_framework_level: CareerFrameworkLevel | None = None
    registration_body: RegistrationBody | None = None
    is_new_role: bool | None = None
    description: Description | None = None
    capabilities: ItemList | None = None
    training_requirements: ItemList | None = None
    default_demand_driver: DemandDriver | None = Field(
        default=None, description=_DEMAND_DRIVER_HELP
    )
    asc_wds_job_role: AscWdsJobRole | None = None
    nhs_staff_group: NhsStaffGroup | None = None
    snomed_ct_occupation: SnomedConceptId | None = None

    @field_validator("code", mode="before")
    @classmethod
    def _code_is_immutable(cls, value: object) -> object:
        raise PydanticCustomError(
            "role_code_immutable",
            "A role's code never changes; create a new role and retire this one instead.",
        )

    @field_validator(
        "name",
        "sector",
        "staff_group",
        "registration_body",
        "is_new_role",
        "description",
        "capabilities",
        "training_requirements",
        "default_demand_driver",
        mode="before",
    )
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise PydanticCustomError("null_not_allowed", "This field cannot be cleared.")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, as plain values for the database."""
        values = self.model_dump(exclude_unset=True, exclude={"code"}, mode="json")
        return values


class Role(BaseModel):
    """A role in the shared catalogue."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    sector: RoleSector
    staff_group: str
    pay_band: str | None
    career_framework_level: int | None
    registration_body: RegistrationBody
    is_new_role: bool
    description: str
    capabilities: list[str]
    training_requirements: list[str]
    default_demand_driver: DemandDriver
    asc_wds_job_role: str | None
    nhs_staff_group: str | None
    snomed_ct_occupation: str | None
    is_seeded: bool = Field(description="Shipped with the seeded national catalogue")
    version: int = Field(description="Bumped on every change; the ETag derives from it")
    created_at: datetime
    updated_at: datetime


class SeedReport(BaseModel):
    """What a run of the catalogue seed did."""

    in_catalogue_file: int
    inserted: int
    already_present: int
    inserted_codes: list[str]
