"""The projection model's scenario parameters as frozen dataclasses, for the maths.

What the parameters mean, their ranges and defaults are the contract in
shared/schemas/scenario_parameters.py; this module turns a validated document into these
dataclasses and back. Rates are fractions (0.05 = 5%), growth rates are per year, intakes are
headcount (persons) per year, caps and agency figures are FTE.
"""

from __future__ import annotations

import copyreg
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shared.schemas.scenario_parameters import (
    DEFAULT_INTERNATIONAL_AGE_MIX,
    DEFAULT_JOINER_AGE_MIX,
    DEFAULT_NEWLY_QUALIFIED_AGE_MIX,
    DEFAULT_RETIREMENT_HAZARD,
    DEFAULT_UNPAID_CARE_ROLES,
    DEFAULT_WORKFORCE_AGE_MIX,
    ParameterError,
    ParameterProblem,
    ScenarioParametersDocument,
    parse_parameters,
)
from shared.vocab.drivers import CUSTOM_DRIVER

WORKFORCE_AGE_BANDS: tuple[str, ...] = ("under_25", "25_34", "35_44", "45_54", "55_64", "65_plus")


def _freeze(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


def _reduce_frozen(mapping: MappingProxyType[str, Any]) -> tuple[Any, tuple[dict[str, Any]]]:
    return _freeze, (dict(mapping),)


# Parameters travel by pickle to a worker's model processes; a read-only view pickles as one.
copyreg.pickle(MappingProxyType, _reduce_frozen)


@dataclass(frozen=True)
class ByRole:
    """A numeric lever with a default for every role and optional per-role overrides."""

    default: float = 0.0
    by_role: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_role", _freeze(self.by_role))

    def value(self, role_code: str) -> float:
        return float(self.by_role.get(role_code, self.default))

    def for_roles(self, role_codes: Iterable[str]) -> NDArray[np.float64]:
        return np.array([self.value(code) for code in role_codes], dtype=np.float64)

    def is_off(self) -> bool:
        return self.default == 0.0 and all(v == 0.0 for v in self.by_role.values())


@dataclass(frozen=True)
class CustomDriverWeights:
    """Weights per sex and five-year population age band (0-4, ..., 85-89, 90+)."""

    female: tuple[float, ...]
    male: tuple[float, ...]


@dataclass(frozen=True)
class Substitution:
    """Move `share` of from_role demand to to_role, `ratio` to_role FTE per from_role FTE.

    The move happens inside each organisation and is phased in linearly over
    `phase_in_years` (0 = full effect from the first projection year).
    """

    from_role: str
    to_role: str
    share: float
    ratio: float = 1.0
    phase_in_years: int = 0


@dataclass(frozen=True)
class Intake:
    """Extra joiners (headcount per year) for a role in each planning footprint.

    They join in projection years first_year..last_year (inclusive; None = to the horizon)
    and are shared among the footprint's cells of the role in proportion to base headcount.
    """

    role: str
    headcount_per_year: float
    first_year: int = 1
    last_year: int | None = None


@dataclass(frozen=True)
class CrossSectorFlow:
    """A share of from_role's non-retirement leavers joins to_role in the same footprint."""

    from_role: str
    to_role: str
    share_of_leavers: float


@dataclass(frozen=True)
class PayGapChange:
    """A change in the hourly pay gap (GBP, NHS minus care) between equivalent roles."""

    nhs_role: str
    care_role: str
    gap_change_per_hour: float


@dataclass(frozen=True)
class UnpaidCareShift:
    """A share of unpaid care hours taken over by paid care in `roles` (negative: given back)."""

    share_of_hours: float = 0.0
    roles: tuple[str, ...] = ()  # empty: DEFAULT_UNPAID_CARE_ROLES
    phase_in_years: int = 0

    def target_roles(self) -> tuple[str, ...]:
        return self.roles or DEFAULT_UNPAID_CARE_ROLES


@dataclass(frozen=True)
class UncertaintyParameters:
    """Spread of the uncertain parameters drawn in runs 1..N (run 0 uses central values)."""

    leaving_multiplier_sd_log: float = 0.15
    joining_multiplier_sd_log: float = 0.15
    productivity_growth_sd: float = 0.005
    population_growth_sd_log: float = 0.2
    population_variant_quantile: float = 0.9


@dataclass(frozen=True)
class ScenarioParameters:
    """Every lever of the projection; the defaults are the baseline scenario."""

    default_demand_driver: str = "population_all"
    demand_driver_by_role: Mapping[str, str] = field(default_factory=dict)
    custom_driver_weights: Mapping[str, CustomDriverWeights] = field(default_factory=dict)
    productivity_growth_per_year: ByRole = field(default_factory=ByRole)
    non_demographic_growth_per_year: ByRole = field(default_factory=ByRole)
    prevention_reduction: ByRole = field(default_factory=ByRole)
    prevention_phase_in_years: int = 5
    substitutions: tuple[Substitution, ...] = ()
    retirement_hazard: tuple[float, ...] = DEFAULT_RETIREMENT_HAZARD
    retirement_hazard_by_role: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    joiner_age_mix: tuple[float, ...] = DEFAULT_JOINER_AGE_MIX
    newly_qualified_age_mix: tuple[float, ...] = DEFAULT_NEWLY_QUALIFIED_AGE_MIX
    international_age_mix: tuple[float, ...] = DEFAULT_INTERNATIONAL_AGE_MIX
    workforce_age_mix_when_unknown: tuple[float, ...] = DEFAULT_WORKFORCE_AGE_MIX
    recruitment_change: ByRole = field(default_factory=ByRole)
    international_recruitment: tuple[Intake, ...] = ()
    training_pipeline: tuple[Intake, ...] = ()
    cross_sector_flows: tuple[CrossSectorFlow, ...] = ()
    pay_gap_changes: tuple[PayGapChange, ...] = ()
    pay_gap_flow_elasticity: float = 0.0
    unpaid_care_shift: UnpaidCareShift = field(default_factory=UnpaidCareShift)
    agency_conversion: ByRole = field(default_factory=ByRole)
    working_days_per_year: float = 225.0
    fte_per_head_when_unknown: float = 0.88
    leaving_rate_when_unknown: float = 0.15
    sickness_days_per_head_when_unknown: float = 9.5
    uncertainty: UncertaintyParameters = field(default_factory=UncertaintyParameters)

    def __post_init__(self) -> None:
        object.__setattr__(self, "demand_driver_by_role", _freeze(self.demand_driver_by_role))
        object.__setattr__(self, "custom_driver_weights", _freeze(self.custom_driver_weights))
        object.__setattr__(
            self, "retirement_hazard_by_role", _freeze(self.retirement_hazard_by_role)
        )

    def driver_for(self, role_code: str) -> str:
        if role_code in self.custom_driver_weights and role_code not in self.demand_driver_by_role:
            return CUSTOM_DRIVER
        return self.demand_driver_by_role.get(role_code, self.default_demand_driver)

    def flow_multiplier(self, from_role: str, to_role: str) -> float:
        """How much the pay-gap changes scale the cross-sector flow from_role -> to_role:
        1 + elasticity x (sum of the gap changes between the pair), never below 0."""
        change = sum(
            c.gap_change_per_hour
            for c in self.pay_gap_changes
            if (c.care_role, c.nhs_role) == (from_role, to_role)
        )
        return max(0.0, 1.0 + self.pay_gap_flow_elasticity * change)

    def retirement_hazard_for(self, role_code: str) -> tuple[float, ...]:
        return self.retirement_hazard_by_role.get(role_code, self.retirement_hazard)

    def to_dict(self) -> dict[str, Any]:
        """The parameters as the JSON document the contract describes."""
        plain: dict[str, Any] = _plain(self)
        return plain

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScenarioParameters:
        """Validate a JSON-like mapping against the contract (missing keys take their
        defaults); raises ParameterError listing every problem."""
        return cls.from_document(parse_parameters(data))

    @classmethod
    def from_document(cls, doc: ScenarioParametersDocument) -> ScenarioParameters:
        def by_role(lever: Any) -> ByRole:
            return ByRole(default=lever.default, by_role=lever.by_role)

        def intakes(items: Iterable[Any]) -> tuple[Intake, ...]:
            return tuple(Intake(**item.model_dump()) for item in items)

        return cls(
            default_demand_driver=doc.default_demand_driver.value,
            demand_driver_by_role={r: d.value for r, d in doc.demand_driver_by_role.items()},
            custom_driver_weights={
                role: CustomDriverWeights(female=tuple(w.female), male=tuple(w.male))
                for role, w in doc.custom_driver_weights.items()
            },
            productivity_growth_per_year=by_role(doc.productivity_growth_per_year),
            non_demographic_growth_per_year=by_role(doc.non_demographic_growth_per_year),
            prevention_reduction=by_role(doc.prevention_reduction),
            prevention_phase_in_years=doc.prevention_phase_in_years,
            substitutions=tuple(Substitution(**s.model_dump()) for s in doc.substitutions),
            retirement_hazard=tuple(doc.retirement_hazard),
            retirement_hazard_by_role={
                role: tuple(hazards) for role, hazards in doc.retirement_hazard_by_role.items()
            },
            joiner_age_mix=tuple(doc.joiner_age_mix),
            newly_qualified_age_mix=tuple(doc.newly_qualified_age_mix),
            international_age_mix=tuple(doc.international_age_mix),
            workforce_age_mix_when_unknown=tuple(doc.workforce_age_mix_when_unknown),
            recruitment_change=by_role(doc.recruitment_change),
            international_recruitment=intakes(doc.international_recruitment),
            training_pipeline=intakes(doc.training_pipeline),
            cross_sector_flows=tuple(
                CrossSectorFlow(**f.model_dump()) for f in doc.cross_sector_flows
            ),
            pay_gap_changes=tuple(PayGapChange(**c.model_dump()) for c in doc.pay_gap_changes),
            pay_gap_flow_elasticity=doc.pay_gap_flow_elasticity,
            unpaid_care_shift=UnpaidCareShift(
                share_of_hours=doc.unpaid_care_shift.share_of_hours,
                roles=tuple(doc.unpaid_care_shift.roles),
                phase_in_years=doc.unpaid_care_shift.phase_in_years,
            ),
            agency_conversion=by_role(doc.agency_conversion),
            working_days_per_year=doc.working_days_per_year,
            fte_per_head_when_unknown=doc.fte_per_head_when_unknown,
            leaving_rate_when_unknown=doc.leaving_rate_when_unknown,
            sickness_days_per_head_when_unknown=doc.sickness_days_per_head_when_unknown,
            uncertainty=UncertaintyParameters(**doc.uncertainty.model_dump()),
        )


def _plain(value: Any) -> Any:
    """Dataclasses, mappings and tuples as JSON-like dicts and lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


def validate_parameters(
    params: ScenarioParameters, known_role_codes: Iterable[str] | None = None
) -> list[ParameterProblem]:
    """Every problem the contract finds in these parameters, as (field path, message); empty
    when the scenario is usable. With known_role_codes (the role catalogue) role codes that do
    not exist are reported too."""
    try:
        parse_parameters(params.to_dict(), known_role_codes=known_role_codes)
    except ParameterError as error:
        return error.problems
    return []
