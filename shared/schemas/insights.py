"""Who the workforce is, what it is paid and what the data miss: response bodies."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field


class UnpaidCareBand(BaseModel):
    band: str = Field(description="Hours band code, e.g. 50_or_more")
    label: str = Field(description="The Census 2021 category")
    persons: int = Field(description="Residents aged 5+ giving this much unpaid care (persons)")
    share_of_residents: float | None = Field(description="Of residents aged 5+ (fraction)")
    assumed_hours_per_week: float = Field(
        description="Hours a week each carer in the band counts for"
    )
    hours_per_week: float = Field(description="persons x assumed hours (hours a week)")


class AreaUnpaidCare(BaseModel):
    """Unpaid carers in an area (Census 2021): context and a scenario lever, never paid supply."""

    area_code: str
    area_name: str
    census_year: int = 2021
    residents_5_plus: int = Field(description="Usual residents aged 5 and over (persons)")
    carers: int = Field(description="Residents aged 5+ giving any unpaid care (persons)")
    carer_share: float | None = Field(description="carers / residents aged 5+ (fraction)")
    bands: list[UnpaidCareBand]
    hours_per_week: float = Field(description="Estimated unpaid care hours a week")
    hours_per_fte_week: float = Field(description="Hours a week in one FTE")
    fte_equivalent: float = Field(
        description="hours_per_week / hours_per_fte_week: the paid FTE these hours would equal "
        "(context only, never counted as supply)"
    )
    method: str
    source: str


class PayRole(BaseModel):
    role_code: str
    role_name: str
    sector: str
    returns: int = Field(description="Latest returns in the area that gave pay for this role")
    headcount: int = Field(description="Headcount on those returns' lines (persons)")
    hourly_pay: float | None = Field(
        description="Headcount-weighted hourly pay (GBP an hour): each line's median hourly "
        "pay, or its mean where no median was given"
    )


class PayParityPair(BaseModel):
    nhs: PayRole = Field(description="The NHS (or primary care) role")
    care: PayRole = Field(description="The equivalent social care role")
    difference_per_hour: float | None = Field(
        description="NHS role's hourly pay minus the care role's (GBP an hour): positive when "
        "the care role is paid less"
    )
    basis: str = Field(description="Why the roles are treated as equivalent")
    nhs_pay_band: str | None = Field(description="Agenda for Change band of the NHS role")
    source: str


class AreaPayParity(BaseModel):
    area_code: str
    as_at: date
    pairs: list[PayParityPair]
    method: str


class CoverageRow(BaseModel):
    group: str = Field(description="A sector or an organisation kind")
    registered: int = Field(description="Organisations registered in the area")
    reporting: int = Field(description="With a current return dated in the 12 months to as_at")
    never_reported: int = Field(description="Registered, with no current return at all")
    coverage: float | None = Field(description="reporting / registered (fraction)")
    thin: bool = Field(description="Coverage under the threshold: projections rest on few returns")


class FieldGap(BaseModel):
    field: str = Field(description="An optional part of a return line")
    lines: int = Field(description="Lines of the latest returns")
    missing: int = Field(description="Lines that leave it out")
    missing_share: float | None = Field(description="missing / lines (fraction)")


class ReturnAge(BaseModel):
    returns: int = Field(description="Latest current returns in the area")
    median_age_days: float | None = Field(description="Median age of those returns (days)")
    oldest_as_at: date | None
    older_than_12_months: int = Field(description="Latest returns dated over 12 months ago")


class ProjectionFlag(BaseModel):
    sector: str
    coverage: float | None
    message: str


class AreaDataGaps(BaseModel):
    """What the data miss: the potential biases of the data behind the figures."""

    area_code: str
    as_at: date
    thin_coverage_below: float = Field(description="Coverage under this is flagged as thin")
    by_sector: list[CoverageRow]
    by_kind: list[CoverageRow]
    fields: list[FieldGap]
    age: ReturnAge
    projection_flags: list[ProjectionFlag] = Field(
        description="Sectors whose projections rest on thin inputs (coverage under the threshold)"
    )


class RoleEquivalence(BaseModel):
    nhs_role: str = Field(description="Catalogue code of the NHS (or primary care) role")
    care_role: str = Field(description="Catalogue code of the equivalent social care role")
    basis: str
    source: str


class CategoryFigure(BaseModel):
    category: str = Field(description="A code of the characteristic, e.g. black or not_stated")
    label: str
    count: int | None = Field(description="Staff (persons); null when suppressed")
    share_of_stated: float | None = Field(
        description="Of staff who stated this characteristic (fraction); null when suppressed"
    )
    lower: float | None = Field(description="95% Wilson interval, lower (fraction)")
    upper: float | None = Field(description="95% Wilson interval, upper (fraction)")
    population_share: float | None = Field(
        description="Share of the area's residents, Census 2021, all ages (ethnicity only)"
    )
    representation_ratio: float | None = Field(
        description="share_of_stated / population_share: 1 = as in the population"
    )
    suppressed: bool


class EqualityGroup(BaseModel):
    group: str = Field(description="The sector, organisation, role or level code")
    label: str
    staff: int | None = Field(
        description="Staff on lines that give this breakdown (persons); null when suppressed"
    )
    categories: list[CategoryFigure]


class EqualityCoverage(BaseModel):
    lines: int = Field(description="Lines of the latest returns in the area")
    lines_with_breakdown: int
    headcount: int = Field(description="Staff on all those lines (persons)")
    headcount_with_breakdown: int


class AreaEquality(BaseModel):
    """Who the workforce is against the local population, with small numbers suppressed."""

    area_code: str
    as_at: date
    characteristic: str = Field(description="ethnicity, disability or sex")
    by: str = Field(description="sector, organisation, role or level")
    suppression_threshold: int = Field(
        description="Counts under this are never shown, and further counts are hidden so that "
        "none can be recovered from totals"
    )
    groups: list[EqualityGroup]
    total: EqualityGroup
    coverage: EqualityCoverage
    population_source: str | None
    method: str
