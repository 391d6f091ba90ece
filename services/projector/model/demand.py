"""Need-based demand: base FTE grown with a population driver of the home area.

Demand(c, y) = base(c) x driver(area, y) / driver(area, base year)
               x productivity factor x non-demographic growth factor x prevention factor,
then substitution moves a share of one role's demand to another role in the same
organisation. Base demand = FTE in post + vacant FTE. Units: FTE; population in persons.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from services.projector.model.inputs import FloatArray, IntArray, ProjectionInputs, find_cells
from services.projector.model.params import (
    ScenarioParameters,
)
from shared.schemas.scenario_parameters import (
    HOURS_PER_FTE_WEEK,
    N_POPULATION_AGE_BANDS,
)
from shared.vocab.drivers import CUSTOM_DRIVER, POPULATION_DRIVERS

# Five-year band index of ages 15-19; 0-17 takes 3/5 of it (ages 15, 16, 17) and 18-64 the
# other 2/5, assuming persons are spread evenly over single years within the band.
_BAND_15_19 = 3
_SHARE_OF_15_19_UNDER_18 = 3.0 / 5.0
_BAND_65_69 = 13


def driver_weights(
    driver: str,
    dementia_prevalence: FloatArray,
    custom: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
) -> FloatArray:
    """Weights (2 sexes, 19 age bands) such that driver = sum(weights x persons)."""
    weights = np.zeros((2, N_POPULATION_AGE_BANDS), dtype=np.float64)
    if driver == "population_all":
        weights[:] = 1.0
    elif driver == "population_0_17":
        weights[:, :_BAND_15_19] = 1.0
        weights[:, _BAND_15_19] = _SHARE_OF_15_19_UNDER_18
    elif driver == "population_18_64":
        weights[:, _BAND_15_19] = 1.0 - _SHARE_OF_15_19_UNDER_18
        weights[:, _BAND_15_19 + 1 : _BAND_65_69] = 1.0
    elif driver == "population_65_plus":
        weights[:, _BAND_65_69:] = 1.0
    elif driver == "population_75_plus":
        weights[:, _BAND_65_69 + 2 :] = 1.0
    elif driver == "population_85_plus":
        weights[:, _BAND_65_69 + 4 :] = 1.0
    elif driver == "dementia_65_plus":
        weights[:, _BAND_65_69:] = dementia_prevalence
    elif driver == CUSTOM_DRIVER:
        if custom is None:
            raise ValueError("custom driver needs weights")
        weights[0] = custom[0]
        weights[1] = custom[1]
    else:
        raise ValueError(f"unknown demand driver {driver!r}")
    return weights


def driver_values(population: FloatArray, weights: FloatArray) -> FloatArray:
    """Driver per kind, area and year: (D, A, T) from population (A, T, 2, 19), weights (D, 2, 19).

    Computed as an elementwise product and a sum over the last axis rather than a matrix
    product, so an area's value does not depend on which other areas are in the run.
    """
    areas, years = population.shape[:2]
    persons = population.reshape(areas, years, 1, 2 * N_POPULATION_AGE_BANDS)
    flat_weights = weights.reshape(1, 1, -1, 2 * N_POPULATION_AGE_BANDS)
    values: FloatArray = (persons * flat_weights).sum(axis=-1)
    return np.ascontiguousarray(values.transpose(2, 0, 1))


def growth_ratio(values: FloatArray) -> FloatArray:
    """values[..., y] / values[..., 0]; 1 where the base-year driver is zero."""
    base = values[..., :1]
    ratio = np.ones_like(values)
    np.divide(values, base, out=ratio, where=np.broadcast_to(base > 0, values.shape))
    return ratio


def phase_in(years: int, phase_in_years: int) -> FloatArray:
    """Share of a lever's full effect in each year 0..years: 0 at the base, 1 once phased in."""
    steps = np.arange(years + 1, dtype=np.float64)
    if phase_in_years <= 0:
        return np.where(steps > 0, 1.0, 0.0)
    return np.minimum(steps / phase_in_years, 1.0)


@dataclass(frozen=True, eq=False)
class SubstitutionRule:
    """Pairs of cells of one organisation: source (from_role) and target (to_role)."""

    source_cells: IntArray
    target_cells: IntArray
    share: float
    ratio: float
    phase: FloatArray  # (T,)


@dataclass(frozen=True, eq=False)
class DemandPlan:
    """Everything demand needs, prepared once per run.

    Demand of cell c in year y and run i is
    base_level_fte[y, c] x key_factor[i, cell_key[c], y], then substitution, where the key
    factor holds what varies by run: the driver growth of (kind, area) and productivity.
    """

    base_level_fte: FloatArray  # (T, C): base x non-demographic growth x prevention
    cell_key: IntArray  # (C,) into keys
    key_kind: IntArray  # (K,) driver kind
    key_area: IntArray  # (K,)
    key_role: IntArray  # (K,)
    driver_principal: FloatArray  # (D, A, T) persons (weighted)
    driver_variant: FloatArray | None  # (D, A, T)
    role_productivity_growth: FloatArray  # (R,) per year, central
    substitutions: tuple[SubstitutionRule, ...]
    demography: bool
    productivity: bool
    # Prevalence uncertainty of the dementia driver: persons with dementia by sex-band at
    # central rates, (12, A, T) for the principal (and variant) population, and the sd of
    # each band's log rate (12,); None when the inputs give no interval.
    dementia_parts_principal: FloatArray | None = None
    dementia_parts_variant: FloatArray | None = None
    dementia_sd_log: FloatArray | None = None


def prepare_demand(
    inputs: ProjectionInputs,
    params: ScenarioParameters,
    *,
    demography: bool = True,
    productivity: bool = True,
    substitution: bool = True,
) -> DemandPlan:
    """Build the demand plan; the switches turn levers off for the explain decomposition."""
    horizon = inputs.horizon_years
    roles = inputs.role_codes
    # Driver kinds: the seven standard drivers, then one per role with custom weights.
    kind_names: list[str] = list(POPULATION_DRIVERS)
    role_kind = np.zeros(len(roles), dtype=np.int64)
    kind_weights = [driver_weights(d, inputs.dementia_prevalence) for d in POPULATION_DRIVERS]
    for r, code in enumerate(roles):
        driver = params.driver_for(code)
        if driver == CUSTOM_DRIVER:
            w = params.custom_driver_weights[code]
            kind_weights.append(
                driver_weights(CUSTOM_DRIVER, inputs.dementia_prevalence, (w.female, w.male))
            )
            kind_names.append(f"custom:{code}")
            role_kind[r] = len(kind_names) - 1
        else:
            role_kind[r] = POPULATION_DRIVERS.index(driver)
    weights = np.stack(kind_weights)
    driver_principal = driver_values(inputs.population, weights)
    driver_variant = (
        driver_values(inputs.population_variant, weights)
        if inputs.population_variant is not None
        else None
    )
    dementia_parts = _dementia_parts(inputs)

    # One key per (role, area) present: both the driver and productivity depend on nothing else.
    pair = inputs.cell_role * inputs.n_areas + inputs.cell_area
    unique_pairs, cell_key = np.unique(pair, return_inverse=True)
    key_role = (unique_pairs // inputs.n_areas).astype(np.int64)
    key_area = (unique_pairs % inputs.n_areas).astype(np.int64)

    years = np.arange(horizon + 1, dtype=np.float64)
    base = inputs.base_demand_fte()
    if productivity:
        growth = params.non_demographic_growth_per_year.for_roles(roles)
        reduction = params.prevention_reduction.for_roles(roles)
        prevention_phase = phase_in(horizon, params.prevention_phase_in_years)
        role_level = (1.0 + growth[None, :]) ** years[:, None] * (
            1.0 - reduction[None, :] * prevention_phase[:, None]
        )
        base_level = base[None, :] * role_level[:, inputs.cell_role]
        base_level += unpaid_care_uplift(inputs, params, base)
        productivity_growth = params.productivity_growth_per_year.for_roles(roles)
    else:
        base_level = np.broadcast_to(base, (horizon + 1, inputs.n_cells)).copy()
        productivity_growth = np.zeros(len(roles))

    rules: list[SubstitutionRule] = []
    if substitution:
        code_index = {code: i for i, code in enumerate(roles)}
        for rule in params.substitutions:
            if rule.from_role not in code_index or rule.to_role not in code_index:
                continue
            sources = np.flatnonzero(inputs.cell_role == code_index[rule.from_role])
            targets = find_cells(
                inputs, inputs.cell_org[sources], np.full(sources.shape, code_index[rule.to_role])
            )
            has_target = targets >= 0
            if not np.any(has_target) or rule.share == 0.0:
                continue
            rules.append(
                SubstitutionRule(
                    source_cells=sources[has_target].astype(np.int64),
                    target_cells=targets[has_target],
                    share=rule.share,
                    ratio=rule.ratio,
                    phase=phase_in(horizon, rule.phase_in_years),
                )
            )

    return DemandPlan(
        base_level_fte=np.ascontiguousarray(base_level),
        cell_key=cell_key.astype(np.int64),
        key_kind=role_kind[key_role],
        key_area=key_area,
        key_role=key_role,
        driver_principal=driver_principal,
        driver_variant=driver_variant,
        role_productivity_growth=productivity_growth,
        substitutions=tuple(rules),
        demography=demography,
        productivity=productivity,
        **dementia_parts,
    )


def unpaid_care_uplift(
    inputs: ProjectionInputs, params: ScenarioParameters, base: FloatArray
) -> FloatArray:
    """Paid demand (T, C) FTE from unpaid care hours taken over by paid care: in each area,
    share x unpaid hours a week / 37.5 FTE, spread over the lever's roles' cells in proportion
    to their base demand and phased in. Zero when the lever is off or the hours are unknown."""
    horizon = inputs.horizon_years
    uplift = np.zeros((horizon + 1, inputs.n_cells))
    shift = params.unpaid_care_shift
    hours = inputs.unpaid_care_hours_per_week
    if shift.share_of_hours == 0.0 or hours is None:
        return uplift
    targets = set(shift.target_roles())
    role_index = [i for i, code in enumerate(inputs.role_codes) if code in targets]
    targeted = np.isin(inputs.cell_role, role_index)
    weight = np.where(targeted, base, 0.0)
    area_base = np.bincount(inputs.cell_area, weights=weight, minlength=inputs.n_areas)
    extra_fte = shift.share_of_hours * hours / HOURS_PER_FTE_WEEK  # (A,)
    cell_share = np.divide(
        weight,
        area_base[inputs.cell_area],
        out=np.zeros(inputs.n_cells),
        where=area_base[inputs.cell_area] > 0,
    )
    cell_extra = extra_fte[inputs.cell_area] * cell_share  # (C,)
    uplift += phase_in(horizon, shift.phase_in_years)[:, None] * cell_extra[None, :]
    # Demand cannot fall below zero however much unpaid care is given back.
    np.maximum(uplift, -base[None, :], out=uplift)
    return uplift


def _dementia_parts(inputs: ProjectionInputs) -> dict[str, FloatArray | None]:
    """Persons with dementia by sex and band 65-69 .. 90+ at central rates, (12, A, T)."""
    sd_log = inputs.dementia_prevalence_sd_log
    if sd_log is None or not np.any(sd_log > 0):
        return {}

    def parts(population: FloatArray) -> FloatArray:
        persons = population[:, :, :, _BAND_65_69:] * inputs.dementia_prevalence[None, None]
        return np.ascontiguousarray(persons.reshape(*persons.shape[:2], -1).transpose(2, 0, 1))

    return {
        "dementia_parts_principal": parts(inputs.population),
        "dementia_parts_variant": (
            parts(inputs.population_variant) if inputs.population_variant is not None else None
        ),
        "dementia_sd_log": np.asarray(sd_log, dtype=np.float64).reshape(-1),
    }


def _drawn_drivers(
    plan: DemandPlan, prevalence_z: FloatArray | None
) -> tuple[FloatArray, FloatArray | None]:
    """Drivers per run (n, D, A, T) with each run's dementia prevalence, or the central
    drivers (1, D, A, T) when no run moves the prevalence."""
    principal = plan.driver_principal[None]
    variant = plan.driver_variant[None] if plan.driver_variant is not None else None
    if (
        prevalence_z is None
        or plan.dementia_sd_log is None
        or plan.dementia_parts_principal is None
        or not np.any(prevalence_z != 0.0)
    ):
        return principal, variant
    # Every band's rate moves by the same number of its own log-scale sds (fully correlated
    # bands): the level of prevalence cancels in a growth ratio, its age profile does not.
    factor = np.exp(prevalence_z[:, None] * plan.dementia_sd_log[None, :])  # (n, 12)
    kind = POPULATION_DRIVERS.index("dementia_65_plus")
    n_runs = prevalence_z.shape[0]
    central = (prevalence_z == 0.0)[:, None, None]  # run 0 keeps the central driver exactly
    principal = np.repeat(principal, n_runs, axis=0)
    principal[:, kind] = np.where(
        central,
        plan.driver_principal[kind][None],
        np.einsum("nb,bat->nat", factor, plan.dementia_parts_principal),
    )
    if variant is not None and plan.driver_variant is not None:
        variant = np.repeat(variant, n_runs, axis=0)
        if plan.dementia_parts_variant is not None:
            variant[:, kind] = np.where(
                central,
                plan.driver_variant[kind][None],
                np.einsum("nb,bat->nat", factor, plan.dementia_parts_variant),
            )
    return principal, variant


def driver_growth_by_run(
    plan: DemandPlan,
    *,
    variant_weight: FloatArray,
    growth_exponent: FloatArray,
    prevalence_z: FloatArray | None = None,
) -> FloatArray:
    """Driver growth ratio per run, kind, area and year: (n, D, A, T).

    With a variant population the driver is interpolated between principal and variant by
    variant_weight (0 = principal); otherwise the principal log growth is scaled by
    growth_exponent (1 = principal). prevalence_z moves the dementia prevalence of each run
    within its interval. Runs at central values get the principal ratio exactly.
    """
    n_runs = variant_weight.shape[0]
    if not plan.demography:
        return np.ones((n_runs, *plan.driver_principal.shape))
    principal, variant = _drawn_drivers(plan, prevalence_z)
    principal_ratio = growth_ratio(principal)
    if variant is not None:
        weight = variant_weight[:, None, None, None]
        mixed = principal + weight * (variant - principal)
        interpolated = growth_ratio(np.maximum(mixed, 0.0))
        return np.where(weight == 0.0, principal_ratio, interpolated)
    exponent = growth_exponent[:, None, None, None]
    scaled = principal_ratio**exponent
    return np.where(exponent == 1.0, principal_ratio, scaled)


def productivity_factor_by_run(plan: DemandPlan, shift: FloatArray, years: int) -> FloatArray:
    """Demand factor from productivity per run, role and year: (n, R, T).

    Productivity growth p means the same need is met by 1/(1+p) of last year's FTE. The run's
    shift is added to every role's central growth rate.
    """
    steps = np.arange(years + 1, dtype=np.float64)
    if not plan.productivity:
        return np.ones((shift.shape[0], plan.role_productivity_growth.shape[0], years + 1))
    rate = 1.0 + plan.role_productivity_growth[None, :] + shift[:, None]
    rate = np.maximum(rate, 0.01)
    factor: FloatArray = rate[:, :, None] ** -steps[None, None, :]
    return factor


def key_factors(
    plan: DemandPlan, driver_ratio: FloatArray, productivity: FloatArray, keys: IntArray
) -> FloatArray:
    """Run-dependent demand factor for the given keys: (n, k, T)."""
    kinds = plan.key_kind[keys]
    areas = plan.key_area[keys]
    roles = plan.key_role[keys]
    factors: FloatArray = driver_ratio[:, kinds, areas, :] * productivity[:, roles, :]
    return factors


def key_segments(cell_key: IntArray) -> tuple[IntArray, IntArray]:
    """Runs of consecutive cells with the same key: (key of each run, its length)."""
    if cell_key.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    starts = np.flatnonzero(np.r_[True, cell_key[1:] != cell_key[:-1]])
    lengths = np.diff(np.r_[starts, cell_key.size])
    return cell_key[starts].astype(np.int64), lengths.astype(np.int64)


def cell_demand_fte(
    base_level_fte_year: FloatArray,
    segment_factor_year: FloatArray,
    segment_length: IntArray,
) -> FloatArray:
    """Demand before substitution for one year, (runs, cells) FTE.

    segment_factor_year (runs, segments) holds the run-dependent factor of each run of
    consecutive cells sharing a key; repeating it is much cheaper than a gather per cell.
    """
    demand: FloatArray = np.repeat(segment_factor_year, segment_length, axis=1)
    demand *= base_level_fte_year
    return demand


def switch_demand(
    plan: DemandPlan, *, demography: bool, productivity: bool, substitution: bool
) -> DemandPlan:
    """The plan with levers turned off, for the explain decomposition."""
    base_level = plan.base_level_fte
    growth = plan.role_productivity_growth
    if not productivity:
        # Year 0 carries no growth or prevention, so it is the base demand.
        base_level = np.ascontiguousarray(np.broadcast_to(base_level[0], base_level.shape))
        growth = np.zeros_like(growth)
    return replace(
        plan,
        base_level_fte=base_level,
        role_productivity_growth=growth,
        substitutions=plan.substitutions if substitution else (),
        demography=plan.demography and demography,
        productivity=plan.productivity and productivity,
    )


def apply_substitutions(
    demand_fte: FloatArray,
    rules: tuple[SubstitutionRule, ...],
    year: int,
) -> None:
    """Move demand between roles in place, every rule measured on pre-substitution demand."""
    moves: list[tuple[SubstitutionRule, NDArray[np.float64]]] = []
    for rule in rules:
        effect = rule.share * rule.phase[year]
        if effect != 0.0:
            moves.append((rule, effect * demand_fte[:, rule.source_cells]))
    for rule, moved in moves:
        demand_fte[:, rule.source_cells] -= moved
        demand_fte[:, rule.target_cells] += rule.ratio * moved


def project_demand_fte(inputs: ProjectionInputs, params: ScenarioParameters) -> FloatArray:
    """Principal demand per year and cell, (T, C) FTE: a convenience for checks and tests."""
    plan = prepare_demand(inputs, params)
    horizon = inputs.horizon_years
    ratio = driver_growth_by_run(plan, variant_weight=np.zeros(1), growth_exponent=np.ones(1))
    productivity = productivity_factor_by_run(plan, np.zeros(1), horizon)
    segment_key, segment_length = key_segments(plan.cell_key)
    factors = key_factors(plan, ratio, productivity, segment_key)
    result = np.empty((horizon + 1, inputs.n_cells))
    for y in range(horizon + 1):
        row = cell_demand_fte(plan.base_level_fte[y], factors[:, :, y], segment_length)
        apply_substitutions(row, plan.substitutions, y)
        result[y] = row[0]
    return result
