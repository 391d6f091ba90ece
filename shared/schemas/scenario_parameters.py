"""The scenario parameter contract: every lever of the projection, its range, its default.

`ScenarioParametersDocument` validates a scenario's parameters (the API before storing them,
the projector before running them) and documents them: its JSON Schema is what
GET /v1/scenarios/schema serves. The projector turns a validated document into its frozen
dataclasses (services/projector/model/params.py).

Rates are fractions (0.05 = 5%), growth rates are per year, intakes are headcount (persons) per
year. Every lever defaults to "off" (the baseline); the defaults and their sources are listed
in docs/projection-method.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared.vocab.drivers import CUSTOM_DRIVER, POPULATION_DRIVERS, DemandDriver

N_WORKFORCE_AGE_BANDS = 6  # under 25, 25-34, 35-44, 45-54, 55-64, 65+
N_POPULATION_AGE_BANDS = 19  # 0-4, 5-9, ..., 85-89, 90+
SIX_BANDS = "six values: under 25, 25-34, 35-44, 45-54, 55-64, 65+"
MIX_TOLERANCE = 1e-6

# Annual retirement hazard by workforce age band (assumption, see docs/projection-method.md):
# almost all retirement happens from 55, and most of those still in post at 65+ retire within
# a few years.
DEFAULT_RETIREMENT_HAZARD: tuple[float, ...] = (0.0, 0.0, 0.0, 0.005, 0.07, 0.25)
# Age mix of ordinary joiners, newly qualified staff and international recruits (assumptions).
DEFAULT_JOINER_AGE_MIX: tuple[float, ...] = (0.25, 0.35, 0.20, 0.13, 0.06, 0.01)
DEFAULT_NEWLY_QUALIFIED_AGE_MIX: tuple[float, ...] = (0.55, 0.35, 0.08, 0.02, 0.0, 0.0)
DEFAULT_INTERNATIONAL_AGE_MIX: tuple[float, ...] = (0.05, 0.60, 0.28, 0.06, 0.01, 0.0)
# Used only where a return reports headcount but no age breakdown (assumption).
DEFAULT_WORKFORCE_AGE_MIX: tuple[float, ...] = (0.07, 0.25, 0.25, 0.24, 0.17, 0.02)


@dataclass(frozen=True)
class ParameterProblem:
    """One out-of-range or malformed parameter, located by a dotted field path."""

    path: str
    message: str


class ParameterError(ValueError):
    """Raised when parameters cannot be parsed or are out of range."""

    def __init__(self, problems: list[ParameterProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.path}: {p.message}" for p in problems))


def _known_role(code: str, info: ValidationInfo) -> str:
    """A role code is required; with the catalogue in the context it must be in it."""
    if not code:
        raise ValueError("role code is required")
    known = (info.context or {}).get("known_role_codes")
    if known is not None and code not in known:
        raise ValueError(f"unknown role code {code!r}")
    return code


def _sums_to_one(values: list[float]) -> list[float]:
    if abs(sum(values) - 1.0) > MIX_TOLERANCE:
        raise ValueError(f"shares must sum to 1, got {sum(values):g}")
    return values


Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
RoleCode = Annotated[str, Field(strict=True), AfterValidator(_known_role)]
Rate = Annotated[Number, Field(ge=0.0, le=1.0)]
Growth = Annotated[Number, Field(ge=-0.5, le=0.5)]
RecruitmentChange = Annotated[Number, Field(ge=-1.0, le=10.0)]
Years = Annotated[int, Field(strict=True, ge=0, le=100)]
SixRates = Annotated[list[Rate], Field(min_length=6, max_length=6, description=SIX_BANDS)]
AgeMix = Annotated[SixRates, AfterValidator(_sums_to_one)]
PopulationWeights = Annotated[
    list[Annotated[Number, Field(ge=0.0)]],
    Field(min_length=N_POPULATION_AGE_BANDS, max_length=N_POPULATION_AGE_BANDS),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class _Lever(_Strict):
    """A lever with a value for every role and overrides by role code; a bare number is the
    value for every role."""

    @model_validator(mode="before")
    @classmethod
    def _number_is_default(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return {"default": value}
        return value


class GrowthLever(_Lever):
    default: Growth = Field(0.0, description="Value for every role, per year")
    by_role: dict[RoleCode, Growth] = Field(default_factory=dict, description="By role code")


class ShareLever(_Lever):
    default: Rate = Field(0.0, description="Value for every role")
    by_role: dict[RoleCode, Rate] = Field(default_factory=dict, description="By role code")


class RecruitmentLever(_Lever):
    default: RecruitmentChange = Field(0.0, description="Change in joiners for every role")
    by_role: dict[RoleCode, RecruitmentChange] = Field(
        default_factory=dict, description="By role code"
    )


class _Move(_Strict):
    from_role: RoleCode
    to_role: RoleCode

    @model_validator(mode="after")
    def _roles_differ(self) -> _Move:
        if self.from_role == self.to_role:
            raise ValueError("from_role and to_role must differ")
        return self


class CustomDriverWeightsDocument(_Strict):
    """Demand weights per person, by sex and five-year age band (0-4 .. 90+)."""

    female: PopulationWeights = Field(description="0-4 .. 90+")
    male: PopulationWeights = Field(description="0-4 .. 90+")

    @model_validator(mode="after")
    def _some_weight(self) -> CustomDriverWeightsDocument:
        if sum(self.female) + sum(self.male) <= 0.0:
            raise ValueError("at least one weight must be positive")
        return self


class SubstitutionDocument(_Move):
    """Move `share` of from_role demand to to_role, `ratio` to_role FTE per from_role FTE,
    inside each organisation, phased in linearly (0 years = full effect from the first year)."""

    share: Rate = Field(description="Share of from_role demand moved")
    ratio: Number = Field(1.0, ge=0.0, le=100.0, description="to_role FTE per from_role FTE")
    phase_in_years: Years = 0


class IntakeDocument(_Strict):
    """Extra joiners for a role in each planning footprint, in projection years
    first_year..last_year (inclusive; none = to the horizon)."""

    role: RoleCode
    headcount_per_year: Number = Field(
        ge=0.0, le=1e7, description="Persons per year, per ICS footprint"
    )
    first_year: Annotated[int, Field(strict=True, ge=1, le=1000)] = 1
    last_year: Annotated[int, Field(strict=True)] | None = None

    @field_validator("last_year")
    @classmethod
    def _not_before_first(cls, last_year: int | None, info: ValidationInfo) -> int | None:
        first_year = info.data.get("first_year")
        if last_year is not None and first_year is not None and last_year < first_year:
            raise ValueError("must not be before first_year")
        return last_year


class CrossSectorFlowDocument(_Move):
    """A share of from_role's non-retirement leavers joins to_role in the same footprint."""

    share_of_leavers: Rate


class PayGapChangeDocument(_Strict):
    """A change in the hourly pay gap between an NHS role and its social care equivalent (GBP
    an hour, NHS pay minus care pay): -0.62 when care pay rises by 62p. It scales the
    cross_sector_flows set from care_role to nhs_role through pay_gap_flow_elasticity, and the
    care role keeps the leavers who no longer go."""

    nhs_role: RoleCode
    care_role: RoleCode
    gap_change_per_hour: Number = Field(
        ge=-100.0, le=100.0, description="GBP an hour; negative narrows the gap"
    )


# Hours a week in one FTE, for turning unpaid care hours into paid FTE.
HOURS_PER_FTE_WEEK = 37.5
DEFAULT_UNPAID_CARE_ROLES: tuple[str, ...] = (
    "care-worker",
    "senior-care-worker",
    "personal-assistant",
    "reablement-worker",
)


class UnpaidCareShiftDocument(_Strict):
    """A share of the unpaid care hours given in each area (Census 2021) taken over by paid
    care (negative: unpaid carers take on more). Hours become FTE at 37.5 hours a week and add
    to the demand for `roles` in that area, in proportion to their base demand, phased in
    linearly. Unpaid care is never counted as paid supply."""

    share_of_hours: Number = Field(
        0.0, ge=-1.0, le=1.0, description="Fraction of unpaid care hours moving to paid care"
    )
    roles: list[RoleCode] = Field(
        default_factory=list,
        description="Paid roles that take the hours over; empty means care worker, senior care "
        "worker, personal assistant and reablement worker",
    )
    phase_in_years: Years = 0


class UncertaintyDocument(_Strict):
    """Spread of the uncertain parameters drawn in runs 1..N (run 0 uses central values)."""

    leaving_multiplier_sd_log: Number = Field(0.15, ge=0.0, le=2.0)
    joining_multiplier_sd_log: Number = Field(0.15, ge=0.0, le=2.0)
    productivity_growth_sd: Number = Field(0.005, ge=0.0, le=0.2)
    population_growth_sd_log: Number = Field(0.2, ge=0.0, le=2.0)
    population_variant_quantile: Number = Field(0.9, gt=0.5, lt=1.0)


class ScenarioParametersDocument(_Strict):
    """Every lever of the projection; omitted levers take the baseline value (off)."""

    default_demand_driver: DemandDriver = DemandDriver.population_all
    demand_driver_by_role: dict[RoleCode, DemandDriver] = Field(default_factory=dict)
    custom_driver_weights: dict[RoleCode, CustomDriverWeightsDocument] = Field(default_factory=dict)
    productivity_growth_per_year: GrowthLever = Field(default_factory=GrowthLever)
    non_demographic_growth_per_year: GrowthLever = Field(default_factory=GrowthLever)
    prevention_reduction: ShareLever = Field(default_factory=ShareLever)
    prevention_phase_in_years: Years = 5
    substitutions: list[SubstitutionDocument] = Field(default_factory=list)
    retirement_hazard: SixRates = Field(default=list(DEFAULT_RETIREMENT_HAZARD))
    retirement_hazard_by_role: dict[RoleCode, SixRates] = Field(default_factory=dict)
    joiner_age_mix: AgeMix = Field(default=list(DEFAULT_JOINER_AGE_MIX))
    newly_qualified_age_mix: AgeMix = Field(default=list(DEFAULT_NEWLY_QUALIFIED_AGE_MIX))
    international_age_mix: AgeMix = Field(default=list(DEFAULT_INTERNATIONAL_AGE_MIX))
    workforce_age_mix_when_unknown: AgeMix = Field(default=list(DEFAULT_WORKFORCE_AGE_MIX))
    recruitment_change: RecruitmentLever = Field(default_factory=RecruitmentLever)
    international_recruitment: list[IntakeDocument] = Field(default_factory=list)
    training_pipeline: list[IntakeDocument] = Field(default_factory=list)
    cross_sector_flows: list[CrossSectorFlowDocument] = Field(default_factory=list)
    pay_gap_changes: list[PayGapChangeDocument] = Field(default_factory=list)
    pay_gap_flow_elasticity: Number = Field(
        0.0,
        ge=0.0,
        le=10.0,
        description="Relative change in a cross-sector flow's share of leavers per GBP 1 an hour "
        "change in the pay gap (0 = pay has no effect, the default; give its source in the "
        "scenario's rationale)",
    )
    unpaid_care_shift: UnpaidCareShiftDocument = Field(default_factory=UnpaidCareShiftDocument)
    agency_conversion: ShareLever = Field(default_factory=ShareLever)
    working_days_per_year: Number = Field(225.0, gt=0.0, le=366.0)
    fte_per_head_when_unknown: Number = Field(0.88, gt=0.0, le=1.5)
    leaving_rate_when_unknown: Rate = 0.15
    sickness_days_per_head_when_unknown: Number = Field(9.5, ge=0.0)
    uncertainty: UncertaintyDocument = Field(default_factory=UncertaintyDocument)

    @field_validator("default_demand_driver")
    @classmethod
    def _population_driver(cls, driver: DemandDriver) -> DemandDriver:
        if driver.value not in POPULATION_DRIVERS:
            raise ValueError(f"must be one of {', '.join(POPULATION_DRIVERS)}")
        return driver

    def cross_field_problems(self) -> list[ParameterProblem]:
        """Rules that relate levers to each other, each located by its field path."""
        problems = [
            ParameterProblem(
                f"demand_driver_by_role.{role}", "custom driver needs custom_driver_weights"
            )
            for role, driver in self.demand_driver_by_role.items()
            if driver == CUSTOM_DRIVER and role not in self.custom_driver_weights
        ]
        problems += _shares_over_one(
            "substitutions",
            ((move.from_role, move.share) for move in self.substitutions),
            "shares moved out of {role!r}",
        )
        problems += _shares_over_one(
            "cross_sector_flows",
            ((flow.from_role, flow.share_of_leavers) for flow in self.cross_sector_flows),
            "shares of {role!r} leavers",
        )
        if self.sickness_days_per_head_when_unknown > self.working_days_per_year:
            problems.append(
                ParameterProblem(
                    "sickness_days_per_head_when_unknown",
                    f"must not exceed working_days_per_year ({self.working_days_per_year:g})",
                )
            )
        return problems


def _shares_over_one(
    path: str, shares: Iterable[tuple[str, float]], what: str
) -> list[ParameterProblem]:
    """Shares taken from one role by several entries must not add up to more than all of it."""
    totals: dict[str, float] = {}
    for role, share in shares:
        totals[role] = totals.get(role, 0.0) + share
    return [
        ParameterProblem(path, f"{what.format(role=role)} sum to {total:g} (over 1)")
        for role, total in totals.items()
        if total > 1.0 + MIX_TOLERANCE
    ]


def field_path(location: Iterable[int | str]) -> str:
    """A pydantic error location as a dotted path: substitutions[0].share, by_role.nurse."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part != "[key]":
            path += f".{part}" if path else part
    return path


def parse_parameters(
    data: Mapping[str, Any], *, known_role_codes: Iterable[str] | None = None
) -> ScenarioParametersDocument:
    """Validate parameters (missing levers take their defaults); with known_role_codes (the
    role catalogue) every role code must exist. Raises ParameterError listing every problem."""
    context = {"known_role_codes": None if known_role_codes is None else set(known_role_codes)}
    try:
        document = ScenarioParametersDocument.model_validate(data, context=context)
    except ValidationError as exc:
        raise ParameterError(
            [
                ParameterProblem(field_path(error["loc"]), error["msg"])
                for error in exc.errors(include_url=False)
            ]
        ) from None
    problems = document.cross_field_problems()
    if problems:
        raise ParameterError(problems)
    return document


BASELINE_PARAMETERS: dict[str, Any] = ScenarioParametersDocument().model_dump(mode="json")
