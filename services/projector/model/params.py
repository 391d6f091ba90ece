"""Scenario parameters of the projection model, their defaults and their validation.

Every lever defaults to "off" (the baseline); the documented defaults and their sources are
listed in docs/projection-method.md. Rates are fractions (0.05 = 5%), growth rates are per
year, intakes are headcount (persons) per year, caps and agency figures are FTE.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

DRIVERS: tuple[str, ...] = (
    "population_all",
    "population_0_17",
    "population_18_64",
    "population_65_plus",
    "population_75_plus",
    "population_85_plus",
    "dementia_65_plus",
)
CUSTOM_DRIVER = "custom"

WORKFORCE_AGE_BANDS: tuple[str, ...] = ("under_25", "25_34", "35_44", "45_54", "55_64", "65_plus")
N_WORKFORCE_AGE_BANDS = len(WORKFORCE_AGE_BANDS)
N_POPULATION_AGE_BANDS = 19  # 0-4, 5-9, ..., 85-89, 90+

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

_MIX_TOLERANCE = 1e-6


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


def _freeze(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


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

    def retirement_hazard_for(self, role_code: str) -> tuple[float, ...]:
        return self.retirement_hazard_by_role.get(role_code, self.retirement_hazard)

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScenarioParameters:
        """Parse a JSON-like mapping; missing keys take their defaults.

        Raises ParameterError listing every malformed field (unknown keys, wrong types). Ranges
        are checked separately by validate_parameters().
        """
        problems: list[ParameterProblem] = []
        params = _from_dict(data, problems)
        if problems or params is None:
            raise ParameterError(problems)
        return params


# ---------------------------------------------------------------------------------------------
# Serialisation


def _by_role_to_dict(value: ByRole) -> dict[str, Any]:
    return {"default": value.default, "by_role": dict(value.by_role)}


def _to_dict(p: ScenarioParameters) -> dict[str, Any]:
    return {
        "default_demand_driver": p.default_demand_driver,
        "demand_driver_by_role": dict(p.demand_driver_by_role),
        "custom_driver_weights": {
            role: {"female": list(w.female), "male": list(w.male)}
            for role, w in p.custom_driver_weights.items()
        },
        "productivity_growth_per_year": _by_role_to_dict(p.productivity_growth_per_year),
        "non_demographic_growth_per_year": _by_role_to_dict(p.non_demographic_growth_per_year),
        "prevention_reduction": _by_role_to_dict(p.prevention_reduction),
        "prevention_phase_in_years": p.prevention_phase_in_years,
        "substitutions": [
            {
                "from_role": s.from_role,
                "to_role": s.to_role,
                "share": s.share,
                "ratio": s.ratio,
                "phase_in_years": s.phase_in_years,
            }
            for s in p.substitutions
        ],
        "retirement_hazard": list(p.retirement_hazard),
        "retirement_hazard_by_role": {r: list(v) for r, v in p.retirement_hazard_by_role.items()},
        "joiner_age_mix": list(p.joiner_age_mix),
        "newly_qualified_age_mix": list(p.newly_qualified_age_mix),
        "international_age_mix": list(p.international_age_mix),
        "workforce_age_mix_when_unknown": list(p.workforce_age_mix_when_unknown),
        "recruitment_change": _by_role_to_dict(p.recruitment_change),
        "international_recruitment": [_intake_to_dict(i) for i in p.international_recruitment],
        "training_pipeline": [_intake_to_dict(i) for i in p.training_pipeline],
        "cross_sector_flows": [
            {"from_role": f.from_role, "to_role": f.to_role, "share_of_leavers": f.share_of_leavers}
            for f in p.cross_sector_flows
        ],
        "agency_conversion": _by_role_to_dict(p.agency_conversion),
        "working_days_per_year": p.working_days_per_year,
        "fte_per_head_when_unknown": p.fte_per_head_when_unknown,
        "leaving_rate_when_unknown": p.leaving_rate_when_unknown,
        "sickness_days_per_head_when_unknown": p.sickness_days_per_head_when_unknown,
        "uncertainty": {
            "leaving_multiplier_sd_log": p.uncertainty.leaving_multiplier_sd_log,
            "joining_multiplier_sd_log": p.uncertainty.joining_multiplier_sd_log,
            "productivity_growth_sd": p.uncertainty.productivity_growth_sd,
            "population_growth_sd_log": p.uncertainty.population_growth_sd_log,
            "population_variant_quantile": p.uncertainty.population_variant_quantile,
        },
    }


def _intake_to_dict(intake: Intake) -> dict[str, Any]:
    return {
        "role": intake.role,
        "headcount_per_year": intake.headcount_per_year,
        "first_year": intake.first_year,
        "last_year": intake.last_year,
    }


class _Reader:
    """Typed access to a JSON-like mapping that records problems instead of raising."""

    def __init__(self, data: Any, path: str, problems: list[ParameterProblem]) -> None:
        self.path = path
        self.problems = problems
        if isinstance(data, Mapping):
            self.data: Mapping[str, Any] = data
        else:
            self.data = {}
            self.problem(path, "must be an object")

    def problem(self, path: str, message: str) -> None:
        self.problems.append(ParameterProblem(path, message))

    def sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def check_keys(self, allowed: Iterable[str]) -> None:
        allowed_set = set(allowed)
        for key in self.data:
            if key not in allowed_set:
                self.problem(self.sub(str(key)), "unknown field")

    def number(self, key: str, default: float) -> float:
        return _as_number(self.data.get(key, default), self.sub(key), self, default)

    def integer(self, key: str, default: int) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(self.sub(key), "must be an integer")
            return default
        return value

    def optional_integer(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        return self.integer(key, 0)

    def string(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str):
            self.problem(self.sub(key), "must be a string")
            return default
        return value

    def numbers(self, key: str, default: tuple[float, ...]) -> tuple[float, ...]:
        return _as_numbers(self.data.get(key, default), self.sub(key), self, default)

    def mapping(self, key: str) -> Mapping[str, Any]:
        value = self.data.get(key, {})
        if not isinstance(value, Mapping):
            self.problem(self.sub(key), "must be an object")
            return {}
        return value

    def items(self, key: str) -> list[Any]:
        value = self.data.get(key, [])
        if not isinstance(value, list | tuple):
            self.problem(self.sub(key), "must be a list")
            return []
        return list(value)

    def by_role(self, key: str) -> ByRole:
        value = self.data.get(key)
        path = self.sub(key)
        if value is None:
            return ByRole()
        if isinstance(value, int | float) and not isinstance(value, bool):
            return ByRole(default=float(value))
        reader = _Reader(value, path, self.problems)
        reader.check_keys(("default", "by_role"))
        overrides = {
            str(role): _as_number(v, f"{path}.by_role.{role}", reader, 0.0)
            for role, v in reader.mapping("by_role").items()
        }
        return ByRole(default=reader.number("default", 0.0), by_role=overrides)


def _as_number(value: Any, path: str, reader: _Reader, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        reader.problem(path, "must be a number")
        return default
    if not math.isfinite(value):
        reader.problem(path, "must be finite")
        return default
    return float(value)


def _as_numbers(
    value: Any, path: str, reader: _Reader, default: tuple[float, ...]
) -> tuple[float, ...]:
    if not isinstance(value, list | tuple):
        reader.problem(path, "must be a list of numbers")
        return default
    return tuple(_as_number(v, f"{path}[{i}]", reader, 0.0) for i, v in enumerate(value))


_TOP_LEVEL_KEYS = tuple(_to_dict(ScenarioParameters()).keys())


def _from_dict(data: Mapping[str, Any], problems: list[ParameterProblem]) -> ScenarioParameters:
    r = _Reader(data, "", problems)
    r.check_keys(_TOP_LEVEL_KEYS)
    base = ScenarioParameters()

    drivers = {str(k): v for k, v in r.mapping("demand_driver_by_role").items()}
    for role, driver in drivers.items():
        if not isinstance(driver, str):
            r.problem(f"demand_driver_by_role.{role}", "must be a string")
    weights: dict[str, CustomDriverWeights] = {}
    for role, raw in r.mapping("custom_driver_weights").items():
        wr = _Reader(raw, f"custom_driver_weights.{role}", problems)
        wr.check_keys(("female", "male"))
        weights[str(role)] = CustomDriverWeights(
            female=wr.numbers("female", ()), male=wr.numbers("male", ())
        )

    substitutions = []
    for i, raw in enumerate(r.items("substitutions")):
        sr = _Reader(raw, f"substitutions[{i}]", problems)
        sr.check_keys(("from_role", "to_role", "share", "ratio", "phase_in_years"))
        substitutions.append(
            Substitution(
                from_role=sr.string("from_role", ""),
                to_role=sr.string("to_role", ""),
                share=sr.number("share", 0.0),
                ratio=sr.number("ratio", 1.0),
                phase_in_years=sr.integer("phase_in_years", 0),
            )
        )

    def intakes(key: str) -> tuple[Intake, ...]:
        out = []
        for i, raw in enumerate(r.items(key)):
            ir = _Reader(raw, f"{key}[{i}]", problems)
            ir.check_keys(("role", "headcount_per_year", "first_year", "last_year"))
            out.append(
                Intake(
                    role=ir.string("role", ""),
                    headcount_per_year=ir.number("headcount_per_year", 0.0),
                    first_year=ir.integer("first_year", 1),
                    last_year=ir.optional_integer("last_year"),
                )
            )
        return tuple(out)

    flows = []
    for i, raw in enumerate(r.items("cross_sector_flows")):
        fr = _Reader(raw, f"cross_sector_flows[{i}]", problems)
        fr.check_keys(("from_role", "to_role", "share_of_leavers"))
        flows.append(
            CrossSectorFlow(
                from_role=fr.string("from_role", ""),
                to_role=fr.string("to_role", ""),
                share_of_leavers=fr.number("share_of_leavers", 0.0),
            )
        )

    hazards_by_role = {
        str(role): _as_numbers(v, f"retirement_hazard_by_role.{role}", r, ())
        for role, v in r.mapping("retirement_hazard_by_role").items()
    }

    u_base = base.uncertainty
    ur = _Reader(data.get("uncertainty", {}), "uncertainty", problems)
    ur.check_keys(
        (
            "leaving_multiplier_sd_log",
            "joining_multiplier_sd_log",
            "productivity_growth_sd",
            "population_growth_sd_log",
            "population_variant_quantile",
        )
    )
    uncertainty = UncertaintyParameters(
        leaving_multiplier_sd_log=ur.number(
            "leaving_multiplier_sd_log", u_base.leaving_multiplier_sd_log
        ),
        joining_multiplier_sd_log=ur.number(
            "joining_multiplier_sd_log", u_base.joining_multiplier_sd_log
        ),
        productivity_growth_sd=ur.number("productivity_growth_sd", u_base.productivity_growth_sd),
        population_growth_sd_log=ur.number(
            "population_growth_sd_log", u_base.population_growth_sd_log
        ),
        population_variant_quantile=ur.number(
            "population_variant_quantile", u_base.population_variant_quantile
        ),
    )

    return ScenarioParameters(
        default_demand_driver=r.string("default_demand_driver", base.default_demand_driver),
        demand_driver_by_role={k: v for k, v in drivers.items() if isinstance(v, str)},
        custom_driver_weights=weights,
        productivity_growth_per_year=r.by_role("productivity_growth_per_year"),
        non_demographic_growth_per_year=r.by_role("non_demographic_growth_per_year"),
        prevention_reduction=r.by_role("prevention_reduction"),
        prevention_phase_in_years=r.integer(
            "prevention_phase_in_years", base.prevention_phase_in_years
        ),
        substitutions=tuple(substitutions),
        retirement_hazard=r.numbers("retirement_hazard", base.retirement_hazard),
        retirement_hazard_by_role=hazards_by_role,
        joiner_age_mix=r.numbers("joiner_age_mix", base.joiner_age_mix),
        newly_qualified_age_mix=r.numbers("newly_qualified_age_mix", base.newly_qualified_age_mix),
        international_age_mix=r.numbers("international_age_mix", base.international_age_mix),
        workforce_age_mix_when_unknown=r.numbers(
            "workforce_age_mix_when_unknown", base.workforce_age_mix_when_unknown
        ),
        recruitment_change=r.by_role("recruitment_change"),
        international_recruitment=intakes("international_recruitment"),
        training_pipeline=intakes("training_pipeline"),
        cross_sector_flows=tuple(flows),
        agency_conversion=r.by_role("agency_conversion"),
        working_days_per_year=r.number("working_days_per_year", base.working_days_per_year),
        fte_per_head_when_unknown=r.number(
            "fte_per_head_when_unknown", base.fte_per_head_when_unknown
        ),
        leaving_rate_when_unknown=r.number(
            "leaving_rate_when_unknown", base.leaving_rate_when_unknown
        ),
        sickness_days_per_head_when_unknown=r.number(
            "sickness_days_per_head_when_unknown", base.sickness_days_per_head_when_unknown
        ),
        uncertainty=uncertainty,
    )


# ---------------------------------------------------------------------------------------------
# Validation


class _Checker:
    def __init__(self, known_roles: frozenset[str] | None = None) -> None:
        self.problems: list[ParameterProblem] = []
        self.known_roles = known_roles

    def add(self, path: str, message: str) -> None:
        self.problems.append(ParameterProblem(path, message))

    def within(
        self,
        path: str,
        value: float,
        low: float,
        high: float,
        *,
        low_open: bool = False,
        high_open: bool = False,
    ) -> None:
        if not math.isfinite(value):
            self.add(path, "must be finite")
            return
        too_low = value <= low if low_open else value < low
        too_high = value >= high if high_open else value > high
        if too_low or too_high:
            left = "(" if low_open else "["
            right = ")" if high_open else "]"
            self.add(path, f"must be in {left}{low:g}, {high:g}{right}, got {value:g}")

    def by_role(self, path: str, value: ByRole, low: float, high: float, **kw: bool) -> None:
        self.within(f"{path}.default", value.default, low, high, **kw)
        for role, v in value.by_role.items():
            if self.known_roles is not None and role not in self.known_roles:
                self.add(f"{path}.by_role.{role}", f"unknown role code {role!r}")
            self.within(f"{path}.by_role.{role}", v, low, high, **kw)

    def rates(self, path: str, values: tuple[float, ...]) -> None:
        if len(values) != N_WORKFORCE_AGE_BANDS:
            self.add(path, f"must have {N_WORKFORCE_AGE_BANDS} values (one per age band)")
            return
        for i, v in enumerate(values):
            self.within(f"{path}[{i}]", v, 0.0, 1.0)

    def mix(self, path: str, values: tuple[float, ...]) -> None:
        self.rates(path, values)
        if len(values) == N_WORKFORCE_AGE_BANDS and abs(sum(values) - 1.0) > _MIX_TOLERANCE:
            self.add(path, f"shares must sum to 1, got {sum(values):g}")

    def role(self, path: str, code: str, known: frozenset[str] | None) -> None:
        if not code:
            self.add(path, "role code is required")
        elif known is not None and code not in known:
            self.add(path, f"unknown role code {code!r}")


def validate_parameters(
    params: ScenarioParameters, known_role_codes: Iterable[str] | None = None
) -> list[ParameterProblem]:
    """Every out-of-range value, as (field path, message); empty when the scenario is usable.

    With known_role_codes (the role catalogue) role codes that do not exist are reported too.
    """
    known = frozenset(known_role_codes) if known_role_codes is not None else None
    c = _Checker(known)
    allowed_drivers = (*DRIVERS, CUSTOM_DRIVER)
    if params.default_demand_driver not in DRIVERS:
        c.add("default_demand_driver", f"must be one of {', '.join(DRIVERS)}")
    for role, driver in params.demand_driver_by_role.items():
        c.role(f"demand_driver_by_role.{role}", role, known)
        if driver not in allowed_drivers:
            c.add(f"demand_driver_by_role.{role}", f"must be one of {', '.join(allowed_drivers)}")
        elif driver == CUSTOM_DRIVER and role not in params.custom_driver_weights:
            c.add(f"demand_driver_by_role.{role}", "custom driver needs custom_driver_weights")
    for role, weights in params.custom_driver_weights.items():
        path = f"custom_driver_weights.{role}"
        c.role(path, role, known)
        for sex, values in (("female", weights.female), ("male", weights.male)):
            if len(values) != N_POPULATION_AGE_BANDS:
                c.add(f"{path}.{sex}", f"must have {N_POPULATION_AGE_BANDS} values (0-4 .. 90+)")
            for i, v in enumerate(values):
                c.within(f"{path}.{sex}[{i}]", v, 0.0, math.inf)
        if sum(weights.female) + sum(weights.male) <= 0.0:
            c.add(path, "at least one weight must be positive")

    c.by_role("productivity_growth_per_year", params.productivity_growth_per_year, -0.5, 0.5)
    c.by_role("non_demographic_growth_per_year", params.non_demographic_growth_per_year, -0.5, 0.5)
    c.by_role("prevention_reduction", params.prevention_reduction, 0.0, 1.0)
    c.within("prevention_phase_in_years", params.prevention_phase_in_years, 0, 100)

    share_from: dict[str, float] = {}
    for i, s in enumerate(params.substitutions):
        path = f"substitutions[{i}]"
        c.role(f"{path}.from_role", s.from_role, known)
        c.role(f"{path}.to_role", s.to_role, known)
        if s.from_role == s.to_role:
            c.add(path, "from_role and to_role must differ")
        c.within(f"{path}.share", s.share, 0.0, 1.0)
        c.within(f"{path}.ratio", s.ratio, 0.0, 100.0)
        c.within(f"{path}.phase_in_years", s.phase_in_years, 0, 100)
        share_from[s.from_role] = share_from.get(s.from_role, 0.0) + s.share
    for role, total in share_from.items():
        if total > 1.0 + _MIX_TOLERANCE:
            c.add("substitutions", f"shares moved out of {role!r} sum to {total:g} (over 1)")

    c.rates("retirement_hazard", params.retirement_hazard)
    for role, hazards in params.retirement_hazard_by_role.items():
        c.role(f"retirement_hazard_by_role.{role}", role, known)
        c.rates(f"retirement_hazard_by_role.{role}", hazards)
    c.mix("joiner_age_mix", params.joiner_age_mix)
    c.mix("newly_qualified_age_mix", params.newly_qualified_age_mix)
    c.mix("international_age_mix", params.international_age_mix)
    c.mix("workforce_age_mix_when_unknown", params.workforce_age_mix_when_unknown)

    c.by_role("recruitment_change", params.recruitment_change, -1.0, 10.0)
    for key, intakes in (
        ("international_recruitment", params.international_recruitment),
        ("training_pipeline", params.training_pipeline),
    ):
        for i, intake in enumerate(intakes):
            path = f"{key}[{i}]"
            c.role(f"{path}.role", intake.role, known)
            c.within(f"{path}.headcount_per_year", intake.headcount_per_year, 0.0, 1e7)
            c.within(f"{path}.first_year", intake.first_year, 1, 1000)
            if intake.last_year is not None and intake.last_year < intake.first_year:
                c.add(f"{path}.last_year", "must not be before first_year")

    flow_from: dict[str, float] = {}
    for i, f in enumerate(params.cross_sector_flows):
        path = f"cross_sector_flows[{i}]"
        c.role(f"{path}.from_role", f.from_role, known)
        c.role(f"{path}.to_role", f.to_role, known)
        if f.from_role == f.to_role:
            c.add(path, "from_role and to_role must differ")
        c.within(f"{path}.share_of_leavers", f.share_of_leavers, 0.0, 1.0)
        flow_from[f.from_role] = flow_from.get(f.from_role, 0.0) + f.share_of_leavers
    for role, total in flow_from.items():
        if total > 1.0 + _MIX_TOLERANCE:
            c.add("cross_sector_flows", f"shares of {role!r} leavers sum to {total:g} (over 1)")

    c.by_role("agency_conversion", params.agency_conversion, 0.0, 1.0)
    c.within("working_days_per_year", params.working_days_per_year, 0.0, 366.0, low_open=True)
    c.within("fte_per_head_when_unknown", params.fte_per_head_when_unknown, 0.0, 1.5, low_open=True)
    c.within("leaving_rate_when_unknown", params.leaving_rate_when_unknown, 0.0, 1.0)
    c.within(
        "sickness_days_per_head_when_unknown",
        params.sickness_days_per_head_when_unknown,
        0.0,
        params.working_days_per_year,
    )
    u = params.uncertainty
    c.within("uncertainty.leaving_multiplier_sd_log", u.leaving_multiplier_sd_log, 0.0, 2.0)
    c.within("uncertainty.joining_multiplier_sd_log", u.joining_multiplier_sd_log, 0.0, 2.0)
    c.within("uncertainty.productivity_growth_sd", u.productivity_growth_sd, 0.0, 0.2)
    c.within("uncertainty.population_growth_sd_log", u.population_growth_sd_log, 0.0, 2.0)
    c.within(
        "uncertainty.population_variant_quantile",
        u.population_variant_quantile,
        0.5,
        1.0,
        low_open=True,
        high_open=True,
    )
    return c.problems
