"""Inputs of the projection model: one cell per organisation x role, plus population.

Shapes (C cells, R roles, A areas, T = horizon + 1 years, P parties, S roles in scope):
- per-cell vectors: (C,) float64 (FTE or headcount as named) or int64 (indices);
- headcount_by_age: (C, 6) headcount by workforce age band (under 25, 25-34, ..., 65+);
- population: (A, T, 2, 19) persons by area, year (base year first), sex (F, M) and five-year
  age band (0-4, 5-9, ..., 85-89, 90+); population_variant, when given, has the same shape;
- dementia_prevalence: (2, 6) share of persons with dementia by sex (F, M) and age band
  65-69, 70-74, 75-79, 80-84, 85-89, 90+.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from services.projector.model.params import (
    ScenarioParameters,
)
from shared.schemas.scenario_parameters import (
    N_POPULATION_AGE_BANDS,
    N_WORKFORCE_AGE_BANDS,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

SEXES: tuple[str, ...] = ("F", "M")

# CFAS II reference rates (Matthews et al., Lancet 2013;382:1405-12): all dementia, population
# including care homes, by sex (F, M) and age band 65-69 .. 90+.
CFAS2_DEMENTIA_PREVALENCE: tuple[tuple[float, ...], tuple[float, ...]] = (
    (0.018, 0.025, 0.062, 0.095, 0.181, 0.350),
    (0.012, 0.030, 0.052, 0.106, 0.128, 0.171),
)

# A cell's figures from its return line (FTE, persons, days), each a (C,) array.
CELL_FIGURES: tuple[str, ...] = (
    "fte_in_post",
    "vacant_fte",
    "headcount",
    "starters_12m",
    "leavers_12m",
    "leavers_to_health_care_12m",
    "sickness_days_12m",
    "agency_fte",
    "bank_fte",
)
_CELL_INT_FIELDS: tuple[str, ...] = ("cell_org", "cell_role", "cell_area", "cell_footprint")


def _default_prevalence() -> FloatArray:
    return np.array(CFAS2_DEMENTIA_PREVALENCE, dtype=np.float64)


def prevalence_sd_log(lower: FloatArray, upper: FloatArray, level: float = 0.95) -> FloatArray:
    """sd of log prevalence from an interval taken as symmetric on the log scale (the CFAS II
    intervals are wider above the rate than below it); 0 where a limit is not positive."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    lower = np.asarray(lower, dtype=np.float64)
    upper = np.asarray(upper, dtype=np.float64)
    valid = (lower > 0) & (upper > lower)
    sd = np.zeros(np.broadcast(lower, upper).shape)
    np.divide(
        np.log(np.where(valid, upper, 1.0)) - np.log(np.where(valid, lower, 1.0)),
        2.0 * z,
        out=sd,
        where=valid,
    )
    return sd


@dataclass(frozen=True, eq=False)
class SharingAgreement:
    """An active staff-sharing agreement, as the model sees it.

    party_orgs are organisation indices (as in ProjectionInputs.cell_org); lender_cap_fte[p, s]
    is the most FTE party p may lend of role_codes[s] in any year (0 = does not lend).
    Agreements are applied in order of `key`.
    """

    key: str
    party_orgs: tuple[int, ...]
    role_codes: tuple[str, ...]
    lender_cap_fte: FloatArray


@dataclass(frozen=True, eq=False)
class ProjectionInputs:
    """Workforce returns at the base date, as cells, with the population of their home areas.

    cell_footprint is the planning footprint (ICS) of each cell: absolute intakes are given per
    footprint and cross-sector flows stay inside one. Cells of one organisation share one
    area and one footprint.
    """

    base_year: int
    role_codes: tuple[str, ...]
    cell_org: IntArray
    cell_role: IntArray
    cell_area: IntArray
    fte_in_post: FloatArray
    vacant_fte: FloatArray
    headcount: FloatArray
    headcount_by_age: FloatArray
    starters_12m: FloatArray
    leavers_12m: FloatArray
    sickness_days_12m: FloatArray
    population: FloatArray
    leavers_to_health_care_12m: FloatArray | None = None
    agency_fte: FloatArray | None = None
    bank_fte: FloatArray | None = None
    cell_footprint: IntArray | None = None
    population_variant: FloatArray | None = None
    dementia_prevalence: FloatArray = field(default_factory=_default_prevalence)
    # (2, 6) sd of log prevalence, from the source's 95% interval; None = no uncertainty.
    dementia_prevalence_sd_log: FloatArray | None = None
    agreements: tuple[SharingAgreement, ...] = ()
    # Unpaid care hours a week given in each area (Census 2021), for the unpaid-care lever.
    unpaid_care_hours_per_week: FloatArray | None = None

    def __post_init__(self) -> None:
        n_cells = len(np.asarray(self.cell_org))
        for name in _CELL_INT_FIELDS:
            value = getattr(self, name)
            if value is None:
                value = np.zeros(n_cells, dtype=np.int64)
            object.__setattr__(self, name, np.asarray(value, dtype=np.int64))
        for name in CELL_FIGURES:
            value = getattr(self, name)
            if value is None:
                value = np.zeros(n_cells, dtype=np.float64)
            object.__setattr__(self, name, np.asarray(value, dtype=np.float64))
        object.__setattr__(
            self, "headcount_by_age", np.asarray(self.headcount_by_age, dtype=np.float64)
        )
        object.__setattr__(self, "population", np.asarray(self.population, dtype=np.float64))
        if self.population_variant is not None:
            object.__setattr__(
                self, "population_variant", np.asarray(self.population_variant, dtype=np.float64)
            )
        object.__setattr__(
            self, "dementia_prevalence", np.asarray(self.dementia_prevalence, dtype=np.float64)
        )
        if self.dementia_prevalence_sd_log is not None:
            object.__setattr__(
                self,
                "dementia_prevalence_sd_log",
                np.asarray(self.dementia_prevalence_sd_log, dtype=np.float64),
            )

    # The defaults are filled in __post_init__; these accessors give mypy the narrowed types.
    @property
    def footprint(self) -> IntArray:
        assert self.cell_footprint is not None
        return self.cell_footprint

    @property
    def agency(self) -> FloatArray:
        assert self.agency_fte is not None
        return self.agency_fte

    @property
    def n_cells(self) -> int:
        return int(self.cell_org.shape[0])

    @property
    def n_roles(self) -> int:
        return len(self.role_codes)

    @property
    def n_areas(self) -> int:
        return int(self.population.shape[0])

    @property
    def horizon_years(self) -> int:
        return int(self.population.shape[1]) - 1

    @property
    def years(self) -> IntArray:
        return np.arange(self.base_year, self.base_year + self.horizon_years + 1, dtype=np.int64)

    def base_demand_fte(self) -> FloatArray:
        return self.fte_in_post + self.vacant_fte

    def select_cells(self, cells: IntArray | NDArray[np.bool_]) -> ProjectionInputs:
        """The same inputs restricted to (or reordered as) the given cells.

        Agreements are kept with the parties that still have cells.
        """
        index = np.asarray(cells)
        if index.dtype == np.bool_:
            index = np.flatnonzero(index)
        changes: dict[str, object] = {}
        for name in (*_CELL_INT_FIELDS, *CELL_FIGURES, "headcount_by_age"):
            changes[name] = np.asarray(getattr(self, name))[index]
        kept_orgs = set(np.unique(self.cell_org[index]).tolist())
        agreements = []
        for agreement in self.agreements:
            keep = [i for i, org in enumerate(agreement.party_orgs) if org in kept_orgs]
            if keep:
                agreements.append(
                    replace(
                        agreement,
                        party_orgs=tuple(agreement.party_orgs[i] for i in keep),
                        lender_cap_fte=np.asarray(agreement.lender_cap_fte)[keep],
                    )
                )
        changes["agreements"] = tuple(agreements)
        return replace(self, **changes)  # type: ignore[arg-type]


def find_cells(inputs: ProjectionInputs, orgs: IntArray, roles: IntArray) -> IntArray:
    """Cell index of each (organisation, role index) pair; -1 where there is no such cell."""
    orgs = np.asarray(orgs, dtype=np.int64)
    roles = np.asarray(roles, dtype=np.int64)
    if inputs.n_cells == 0:
        return np.full(orgs.shape, -1, dtype=np.int64)
    n_roles = max(inputs.n_roles, 1)
    keys = inputs.cell_org * n_roles + inputs.cell_role
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    wanted = orgs * n_roles + roles
    position = np.minimum(np.searchsorted(sorted_keys, wanted), sorted_keys.size - 1)
    found = (sorted_keys[position] == wanted) & (roles >= 0) & (roles < n_roles)
    return np.where(found, order[position], -1).astype(np.int64)


@dataclass(frozen=True)
class InputProblem:
    """One structural problem with the inputs, located by field (and cell where relevant)."""

    path: str
    message: str


class InputError(ValueError):
    def __init__(self, problems: list[InputProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.path}: {p.message}" for p in problems[:20]))


def validate_inputs(inputs: ProjectionInputs) -> list[InputProblem]:
    """Shape, index and sign problems that would make the projection meaningless: shapes
    first, then values, then how cells and agreements fit together (each stage only when the
    one before found nothing, so a problem is reported where it starts)."""
    for stage in (_shape_problems, _value_problems, _consistency_problems):
        problems = stage(inputs)
        if problems:
            return problems
    return []


def _shape_problems(inputs: ProjectionInputs) -> list[InputProblem]:
    problems: list[InputProblem] = []

    def add(path: str, message: str) -> None:
        problems.append(InputProblem(path, message))

    n_cells = inputs.n_cells
    for name in (*_CELL_INT_FIELDS, *CELL_FIGURES):
        value = np.asarray(getattr(inputs, name))
        if value.shape != (n_cells,):
            add(name, f"must have shape ({n_cells},), got {value.shape}")
    if inputs.headcount_by_age.shape != (n_cells, N_WORKFORCE_AGE_BANDS):
        add("headcount_by_age", f"must have shape ({n_cells}, {N_WORKFORCE_AGE_BANDS})")
    population_shape = inputs.population.shape
    if (
        inputs.population.ndim != 4
        or population_shape[2:] != (2, N_POPULATION_AGE_BANDS)
        or population_shape[1] < 1
    ):
        add("population", f"must have shape (areas, years, 2, {N_POPULATION_AGE_BANDS})")
    if inputs.unpaid_care_hours_per_week is not None and (
        np.shape(inputs.unpaid_care_hours_per_week) != (inputs.n_areas,)
    ):
        add("unpaid_care_hours_per_week", f"must have one value per area ({inputs.n_areas})")
    if inputs.population_variant is not None and (
        inputs.population_variant.shape != population_shape
    ):
        add("population_variant", f"must have the shape of population {population_shape}")
    if inputs.dementia_prevalence.shape != (2, 6):
        add("dementia_prevalence", "must have shape (2, 6): sex x age band 65-69 .. 90+")
    sd_log = inputs.dementia_prevalence_sd_log
    if sd_log is not None and sd_log.shape != (2, 6):
        add("dementia_prevalence_sd_log", "must have shape (2, 6): sex x age band 65-69 .. 90+")
    return problems


def _value_problems(inputs: ProjectionInputs) -> list[InputProblem]:
    problems: list[InputProblem] = []

    def add(path: str, message: str) -> None:
        problems.append(InputProblem(path, message))

    for name in (
        "population",
        "population_variant",
        "dementia_prevalence",
        "dementia_prevalence_sd_log",
    ):
        value = getattr(inputs, name)
        if value is not None and (not np.all(np.isfinite(value)) or np.any(value < 0)):
            add(name, "must be finite and non-negative")
    if len(set(inputs.role_codes)) != len(inputs.role_codes):
        add("role_codes", "must be unique")
    for name, upper in (("cell_role", inputs.n_roles), ("cell_area", inputs.n_areas)):
        value = getattr(inputs, name)
        bad = np.flatnonzero((value < 0) | (value >= upper))
        if bad.size:
            add(name, f"index out of range at cells {bad[:5].tolist()}")
    for name in ("cell_org", "cell_footprint"):
        bad = np.flatnonzero(getattr(inputs, name) < 0)
        if bad.size:
            add(name, f"must be non-negative at cells {bad[:5].tolist()}")
    for name in (*CELL_FIGURES, "headcount_by_age"):
        value = getattr(inputs, name)
        bad_rows = ~np.isfinite(value) | (value < 0)
        if bad_rows.ndim > 1:
            bad_rows = bad_rows.any(axis=1)
        bad = np.flatnonzero(bad_rows)
        if bad.size:
            add(name, f"must be finite and non-negative at cells {bad[:5].tolist()}")
    return problems


def _consistency_problems(inputs: ProjectionInputs) -> list[InputProblem]:
    problems: list[InputProblem] = []

    def add(path: str, message: str) -> None:
        problems.append(InputProblem(path, message))

    n_cells = inputs.n_cells
    pair = inputs.cell_org * max(inputs.n_roles, 1) + inputs.cell_role
    if np.unique(pair).size != n_cells:
        add("cell_org", "each organisation may have at most one cell per role")
    if n_cells:
        order = np.argsort(inputs.cell_org, kind="stable")
        org_sorted = inputs.cell_org[order]
        same_org = org_sorted[1:] == org_sorted[:-1]
        for name in ("cell_area", "cell_footprint"):
            value = getattr(inputs, name)[order]
            if np.any(same_org & (value[1:] != value[:-1])):
                add(name, "cells of one organisation must share one value")

    keys = [a.key for a in inputs.agreements]
    if len(set(keys)) != len(keys):
        add("agreements", "agreement keys must be unique")
    for i, agreement in enumerate(inputs.agreements):
        path = f"agreements[{i}]"
        caps = np.asarray(agreement.lender_cap_fte, dtype=np.float64)
        if caps.shape != (len(agreement.party_orgs), len(agreement.role_codes)):
            add(f"{path}.lender_cap_fte", "must have shape (parties, roles in scope)")
        elif not np.all(np.isfinite(caps)) or np.any(caps < 0):
            add(f"{path}.lender_cap_fte", "must be finite and non-negative")
        if len(set(agreement.party_orgs)) != len(agreement.party_orgs):
            add(f"{path}.party_orgs", "parties must be unique")
        if len(set(agreement.role_codes)) != len(agreement.role_codes):
            add(f"{path}.role_codes", "roles in scope must be unique")
    return problems


def observed_share_to_other_health_care(inputs: ProjectionInputs) -> dict[str, float]:
    """Per role, the share of leavers who went to other health or care employers.

    This is the evidence for a cross-sector flow's share_of_leavers (an upper bound: not all
    of them join the target role). Roles without reported leavers are left out.
    """
    assert inputs.leavers_to_health_care_12m is not None
    leavers = np.bincount(inputs.cell_role, inputs.leavers_12m, minlength=inputs.n_roles)
    onward = np.bincount(
        inputs.cell_role, inputs.leavers_to_health_care_12m, minlength=inputs.n_roles
    )
    return {
        code: float(min(1.0, onward[r] / leavers[r]))
        for r, code in enumerate(inputs.role_codes)
        if leavers[r] > 0
    }


def ensure_substitution_cells(
    inputs: ProjectionInputs, params: ScenarioParameters
) -> ProjectionInputs:
    """Add empty cells so every organisation with a substitution's from_role can receive it.

    Substitution only moves demand within an organisation to a cell that exists; new roles
    (care navigators and the like) usually have no return line yet, so without this their
    demand would be dropped. The added cells have zero staff and zero demand of their own.
    """
    code_index = {code: i for i, code in enumerate(inputs.role_codes)}
    existing = set(zip(inputs.cell_org.tolist(), inputs.cell_role.tolist(), strict=True))
    role_codes = list(inputs.role_codes)
    new_org: list[int] = []
    new_role: list[int] = []
    new_area: list[int] = []
    new_footprint: list[int] = []
    for rule in params.substitutions:
        if rule.from_role not in code_index:
            continue
        if rule.to_role not in code_index:
            code_index[rule.to_role] = len(role_codes)
            role_codes.append(rule.to_role)
        source = code_index[rule.from_role]
        target = code_index[rule.to_role]
        for c in np.flatnonzero(inputs.cell_role == source).tolist():
            org = int(inputs.cell_org[c])
            if (org, target) not in existing:
                existing.add((org, target))
                new_org.append(org)
                new_role.append(target)
                new_area.append(int(inputs.cell_area[c]))
                new_footprint.append(int(inputs.footprint[c]))
    if not new_org and len(role_codes) == inputs.n_roles:
        return inputs
    n_new = len(new_org)
    changes: dict[str, object] = {
        "role_codes": tuple(role_codes),
        "cell_org": np.concatenate([inputs.cell_org, np.array(new_org, dtype=np.int64)]),
        "cell_role": np.concatenate([inputs.cell_role, np.array(new_role, dtype=np.int64)]),
        "cell_area": np.concatenate([inputs.cell_area, np.array(new_area, dtype=np.int64)]),
        "cell_footprint": np.concatenate(
            [inputs.footprint, np.array(new_footprint, dtype=np.int64)]
        ),
        "headcount_by_age": np.concatenate(
            [inputs.headcount_by_age, np.zeros((n_new, N_WORKFORCE_AGE_BANDS))]
        ),
    }
    for name in CELL_FIGURES:
        changes[name] = np.concatenate([getattr(inputs, name), np.zeros(n_new)])
    return replace(inputs, **changes)  # type: ignore[arg-type]
