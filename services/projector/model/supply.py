"""Supply: a cohort stock-flow model by workforce age band (CfWI robust workforce planning).

Each projection year, in this order: non-retirement leavers leave at the cell's rate,
retirements leave at the age band's hazard, the remaining staff age (a fixed share of each
band moves up: 1/7 of under-25s, 1/10 of each ten-year band, 65+ stays), then the year's
joiners arrive with their age mix. Joiners do not leave in the year they join. Headcount is
persons; supply FTE = headcount x FTE per head; effective supply nets off sickness absence.

Because the non-retirement rate is the same for every age band of a cell, a year's
transition is s x R where s = 1 - leaving rate (a scalar per cell and run) and R is the
age-and-retire matrix of the role. So after t years a cohort x keeps s^t x 1'R^t x persons,
and the 1'R^t x terms can be computed once per run, leaving only scalar work per run and
cell. Joiners who arrive from year k onwards contribute sum_{t < y-k} s^t 1'R^t m per head,
a running sum shared by all streams with age mix m.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from services.projector.model.inputs import FloatArray, IntArray, ProjectionInputs
from services.projector.model.params import (
    Intake,
    ScenarioParameters,
)
from shared.schemas.scenario_parameters import (
    N_WORKFORCE_AGE_BANDS,
)

# Share of each workforce age band that moves to the next band in a year: ten-year bands
# move 1/10; the under-25 band is taken to start at 18, so 1/7; 65+ stays.
AGEING_FRACTION: FloatArray = np.array([1 / 7, 0.1, 0.1, 0.1, 0.1, 0.0])

JOINER_MIX = 0
NEWLY_QUALIFIED_MIX = 1
INTERNATIONAL_MIX = 2


def age_and_retire_matrix(retirement_hazard: FloatArray) -> FloatArray:
    """(..., 6, 6) matrix R with next-year persons = R @ persons for those who did not leave."""
    hazard = np.asarray(retirement_hazard, dtype=np.float64)
    stay = 1.0 - AGEING_FRACTION
    ageing = np.diag(stay) + np.diag(AGEING_FRACTION[:-1], k=-1)
    matrix: FloatArray = ageing * (1.0 - hazard)[..., None, :]
    return matrix


def cohort_step(
    persons_by_age: FloatArray, stay_share: FloatArray, retention: FloatArray
) -> FloatArray:
    """One year for persons (..., 6): leave, retire, age. stay_share broadcasts on (...)."""
    survivors = persons_by_age * retention * stay_share[..., None]
    moving = survivors * AGEING_FRACTION
    survivors -= moving
    survivors[..., 1:] += moving[..., :-1]
    return survivors


def cohort_reference(
    headcount_by_age: FloatArray,
    nonretirement_leaving_rate: FloatArray,
    retirement_hazard: FloatArray,
    joiners_by_age: FloatArray,
) -> FloatArray:
    """Band-by-band cohort model, (T, C, 6) persons; the definition the fast path must match.

    joiners_by_age[k] (C, 6) arrive at the end of year k.
    """
    years = joiners_by_age.shape[0] + 1
    result = np.empty((years, *headcount_by_age.shape))
    result[0] = headcount_by_age
    stay = 1.0 - np.clip(nonretirement_leaving_rate, 0.0, 1.0)
    retention = 1.0 - retirement_hazard
    for y in range(1, years):
        result[y] = cohort_step(result[y - 1], stay, retention) + joiners_by_age[y - 1]
    return result


@dataclass(frozen=True, eq=False)
class JoinTerm:
    """Joiners with one age mix arriving every year from the end of year start_year on.

    A stream that stops is a second term with negative headcount from its stop year.
    Per cell, headcount per year = fixed + run's joining multiplier x scaled.
    """

    start_year: int
    mix: int
    fixed_headcount: FloatArray  # (C,)
    scaled_headcount: FloatArray  # (C,)


@dataclass(frozen=True, eq=False)
class CrossFlowRule:
    """A share of source cells' non-retirement leavers joins target cells (same footprint).

    source_cells are sorted by footprint group, source_starts are the group boundaries;
    target_group says which group each target draws from; target_weight sums to 1 in a group.
    """

    source_cells: IntArray
    source_starts: IntArray
    target_cells: IntArray
    target_group: IntArray
    target_weight: FloatArray
    share: float


@dataclass(frozen=True, eq=False)
class SupplyPlan:
    """Everything supply needs, prepared once per run (cells in the order of the inputs)."""

    headcount_by_age: FloatArray  # (C, 6) persons at the base date
    nonretirement_leaving_rate: FloatArray  # (C,) per year
    fte_per_head: FloatArray  # (C,)
    sickness_rate: FloatArray  # (C,) share of working days lost
    effective_fte_per_head: FloatArray  # (C,)
    stock_headcount: FloatArray  # (T, C): 1'R^y h0, base staff left with no one leaving
    mix_kernel: FloatArray  # (M, T, C): 1'R^t m for age mix m and the cell's role
    mixes: FloatArray  # (M, 6)
    join_terms: tuple[JoinTerm, ...]
    cross_flows: tuple[CrossFlowRule, ...]
    cross_target_cells: IntArray  # union of all targets, sorted
    cell_retention: FloatArray  # (C, 6) 1 - retirement hazard actually applied
    leavers: bool


def _safe_divide(numerator: FloatArray, denominator: FloatArray, fallback: float) -> FloatArray:
    out = np.full(numerator.shape, fallback, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _group_shares(group: IntArray, weight: FloatArray, fallback: FloatArray) -> FloatArray:
    """Each cell's share of its group: by weight, else by fallback weight, else equal."""
    _, inverse = np.unique(group, return_inverse=True)
    n_groups = int(inverse.max()) + 1 if inverse.size else 0
    ones = np.ones_like(weight)
    share = np.zeros_like(weight)
    for w in (ones, fallback, weight):  # later (preferred) weights overwrite earlier ones
        totals = np.bincount(inverse, w, minlength=n_groups)
        usable = totals[inverse] > 0
        share = np.where(usable, w / np.where(usable, totals[inverse], 1.0), share)
    return share


def _intake_terms(
    intakes: tuple[Intake, ...],
    mix: int,
    inputs: ProjectionInputs,
    share_in_group: FloatArray,
    horizon: int,
) -> dict[tuple[int, int], FloatArray]:
    terms: dict[tuple[int, int], FloatArray] = {}
    code_index = {code: i for i, code in enumerate(inputs.role_codes)}
    for intake in intakes:
        if intake.role not in code_index or intake.headcount_per_year <= 0.0:
            continue
        if intake.first_year > horizon:
            continue
        per_cell = np.where(
            inputs.cell_role == code_index[intake.role],
            intake.headcount_per_year * share_in_group,
            0.0,
        )
        # Joiners counted in year j arrive at the end of year j - 1.
        start = (intake.first_year - 1, mix)
        terms[start] = terms.get(start, 0.0) + per_cell
        if intake.last_year is not None and intake.last_year < horizon:
            stop = (intake.last_year, mix)
            terms[stop] = terms.get(stop, 0.0) - per_cell
    return terms


def prepare_supply(
    inputs: ProjectionInputs,
    params: ScenarioParameters,
    *,
    leavers: bool = True,
    retirement: bool = True,
    joiners: bool = True,
    cross_sector: bool = True,
) -> SupplyPlan:
    """Build the supply plan; the switches turn flows off for the explain decomposition."""
    horizon = inputs.horizon_years
    roles = inputs.role_codes
    headcount = inputs.headcount

    # Base stock by age: the return's age bands, scaled to its headcount (returns whose
    # bands do not add up are scaled; returns without bands get the default age mix).
    by_age = inputs.headcount_by_age
    band_total = by_age.sum(axis=1)
    default_mix = np.asarray(params.workforce_age_mix_when_unknown, dtype=np.float64)
    scale = _safe_divide(headcount, band_total, 0.0)
    headcount_by_age = np.where(
        (band_total > 0)[:, None], by_age * scale[:, None], headcount[:, None] * default_mix
    )

    hazard_by_role = np.array([params.retirement_hazard_for(code) for code in roles]).reshape(
        len(roles), N_WORKFORCE_AGE_BANDS
    )
    cell_hazard = hazard_by_role[inputs.cell_role]
    # The returns' leavers include retirements. Staying means surviving both, so with the
    # retirements the hazards imply for the base age profile (share q of headcount) the
    # non-retirement rate r solves (1 - r)(1 - q) = 1 - observed: base-year leavers then
    # match the return exactly and retirements are not counted twice.
    observed_rate = _safe_divide(inputs.leavers_12m, headcount, params.leaving_rate_when_unknown)
    implied_retirement = _safe_divide((cell_hazard * headcount_by_age).sum(axis=1), headcount, 0.0)
    excess = _safe_divide(observed_rate - implied_retirement, 1.0 - implied_retirement, 0.0)
    nonretirement = np.clip(np.where(headcount > 0, excess, observed_rate), 0.0, 1.0)
    nonretirement = _pay_gap_retention(inputs, params, nonretirement)

    fte_per_head = _safe_divide(inputs.fte_in_post, headcount, params.fte_per_head_when_unknown)
    sickness_rate = np.clip(
        _safe_divide(
            inputs.sickness_days_12m,
            headcount * params.working_days_per_year,
            params.sickness_days_per_head_when_unknown / params.working_days_per_year,
        ),
        0.0,
        1.0,
    )
    effective_fte_per_head = fte_per_head * (1.0 - sickness_rate)

    applied_hazard = hazard_by_role if retirement else np.zeros_like(hazard_by_role)
    matrices = age_and_retire_matrix(applied_hazard)  # (R, 6, 6)
    cell_retention = 1.0 - applied_hazard[inputs.cell_role]

    stock = np.empty((horizon + 1, inputs.n_cells))
    persons = headcount_by_age.copy()
    no_leaving = np.ones(inputs.n_cells)
    for y in range(horizon + 1):
        stock[y] = persons.sum(axis=1)
        persons = cohort_step(persons, no_leaving, cell_retention)

    mixes = np.array(
        [params.joiner_age_mix, params.newly_qualified_age_mix, params.international_age_mix],
        dtype=np.float64,
    )
    role_kernel = np.empty((len(mixes), len(roles), horizon + 1))
    cohort = np.broadcast_to(mixes[:, None, :], (len(mixes), len(roles), 6)).copy()
    for t in range(horizon + 1):
        role_kernel[:, :, t] = cohort.sum(axis=-1)
        cohort = np.einsum("rij,mrj->mri", matrices, cohort)
    mix_kernel = np.ascontiguousarray(role_kernel[:, inputs.cell_role, :].transpose(0, 2, 1))

    terms: dict[tuple[int, int], FloatArray] = {}
    scaled: FloatArray = np.zeros(inputs.n_cells)
    if joiners and horizon > 0:
        change = params.recruitment_change.for_roles(roles)
        scaled = inputs.starters_12m * np.maximum(1.0 + change[inputs.cell_role], 0.0)
        conversion = params.agency_conversion.for_roles(roles)[inputs.cell_role]
        # Agency FTE converted evenly over the horizon, as substantive joiners.
        terms[(0, JOINER_MIX)] = conversion * inputs.agency / horizon / fte_per_head
        group = inputs.footprint * max(len(roles), 1) + inputs.cell_role
        share_in_group = _group_shares(group, headcount, inputs.base_demand_fte())
        for key, value in _intake_terms(
            params.training_pipeline, NEWLY_QUALIFIED_MIX, inputs, share_in_group, horizon
        ).items():
            terms[key] = terms.get(key, 0.0) + value
        for key, value in _intake_terms(
            params.international_recruitment, INTERNATIONAL_MIX, inputs, share_in_group, horizon
        ).items():
            terms[key] = terms.get(key, 0.0) + value
    join_terms = [
        JoinTerm(
            start_year=start,
            mix=mix,
            fixed_headcount=np.asarray(fixed, dtype=np.float64),
            scaled_headcount=scaled if (start, mix) == (0, JOINER_MIX) else np.zeros_like(scaled),
        )
        for (start, mix), fixed in sorted(terms.items())
    ]
    join_terms = [
        t for t in join_terms if np.any(t.fixed_headcount != 0) or np.any(t.scaled_headcount != 0)
    ]

    flows = _cross_flow_rules(inputs, params) if cross_sector and horizon > 0 else ()
    targets = (
        np.unique(np.concatenate([f.target_cells for f in flows]))
        if flows
        else np.zeros(0, dtype=np.int64)
    )
    return SupplyPlan(
        headcount_by_age=headcount_by_age,
        nonretirement_leaving_rate=nonretirement,
        fte_per_head=fte_per_head,
        sickness_rate=sickness_rate,
        effective_fte_per_head=effective_fte_per_head,
        stock_headcount=stock,
        mix_kernel=mix_kernel,
        mixes=mixes,
        join_terms=tuple(join_terms),
        cross_flows=flows,
        cross_target_cells=targets.astype(np.int64),
        cell_retention=cell_retention,
        leavers=leavers,
    )


def switch_supply(
    plan: SupplyPlan, *, leavers: bool, joiners: bool, cross_sector: bool
) -> SupplyPlan:
    """The plan with flows turned off (retirement needs prepare_supply(retirement=False))."""
    return replace(
        plan,
        leavers=plan.leavers and leavers,
        join_terms=plan.join_terms if joiners else (),
        cross_flows=plan.cross_flows if cross_sector else (),
        cross_target_cells=(
            plan.cross_target_cells if cross_sector else np.zeros(0, dtype=np.int64)
        ),
    )


def _pay_gap_retention(
    inputs: ProjectionInputs, params: ScenarioParameters, nonretirement: FloatArray
) -> FloatArray:
    """A narrower pay gap keeps in the care role the leavers who no longer go to the NHS
    role: its leaving rate falls by share x (1 - multiplier) of itself (and rises when the gap
    widens), for each cross-sector flow the pay-gap changes scale."""
    if not params.pay_gap_changes or params.pay_gap_flow_elasticity == 0.0:
        return nonretirement
    code_index = {code: i for i, code in enumerate(inputs.role_codes)}
    factor = np.ones(len(inputs.role_codes))
    for flow in params.cross_sector_flows:
        if flow.from_role not in code_index:
            continue
        multiplier = params.flow_multiplier(flow.from_role, flow.to_role)
        factor[code_index[flow.from_role]] *= 1.0 - flow.share_of_leavers * (1.0 - multiplier)
    adjusted: FloatArray = np.clip(nonretirement * factor[inputs.cell_role], 0.0, 1.0)
    return adjusted


def _cross_flow_rules(
    inputs: ProjectionInputs, params: ScenarioParameters
) -> tuple[CrossFlowRule, ...]:
    code_index = {code: i for i, code in enumerate(inputs.role_codes)}
    rules = []
    for flow in params.cross_sector_flows:
        if flow.from_role not in code_index or flow.to_role not in code_index:
            continue
        share = flow.share_of_leavers * params.flow_multiplier(flow.from_role, flow.to_role)
        if share <= 0.0:
            continue
        sources = np.flatnonzero(inputs.cell_role == code_index[flow.from_role])
        targets = np.flatnonzero(inputs.cell_role == code_index[flow.to_role])
        if sources.size == 0 or targets.size == 0:
            continue
        order = np.argsort(inputs.footprint[sources], kind="stable")
        sources = sources[order]
        source_fp = inputs.footprint[sources]
        groups, starts = np.unique(source_fp, return_index=True)
        target_fp = inputs.footprint[targets]
        position = np.searchsorted(groups, target_fp)
        position = np.minimum(position, groups.size - 1)
        served = groups[position] == target_fp
        targets = targets[served]
        if targets.size == 0:
            continue
        weight = _group_shares(
            inputs.footprint[targets],
            inputs.headcount[targets],
            inputs.base_demand_fte()[targets],
        )
        rules.append(
            CrossFlowRule(
                source_cells=sources.astype(np.int64),
                source_starts=starts.astype(np.int64),
                target_cells=targets.astype(np.int64),
                target_group=position[served].astype(np.int64),
                target_weight=weight,
                share=share,
            )
        )
    return tuple(rules)


def slice_plan(plan: SupplyPlan, start: int, stop: int) -> SupplyPlan:
    """The plan for a contiguous range of cells (indices in rules become local)."""

    def local_rule(rule: CrossFlowRule) -> CrossFlowRule | None:
        in_source = (rule.source_cells >= start) & (rule.source_cells < stop)
        in_target = (rule.target_cells >= start) & (rule.target_cells < stop)
        if not np.any(in_source) or not np.any(in_target):
            return None
        sources = rule.source_cells[in_source]
        group_of_source = np.searchsorted(rule.source_starts, np.flatnonzero(in_source), "right")
        kept_groups, starts = np.unique(group_of_source - 1, return_index=True)
        target_group = np.searchsorted(kept_groups, rule.target_group[in_target])
        return CrossFlowRule(
            source_cells=sources - start,
            source_starts=starts.astype(np.int64),
            target_cells=rule.target_cells[in_target] - start,
            target_group=target_group.astype(np.int64),
            target_weight=rule.target_weight[in_target],
            share=rule.share,
        )

    flows = tuple(r for r in (local_rule(rule) for rule in plan.cross_flows) if r is not None)
    targets = plan.cross_target_cells
    targets = targets[(targets >= start) & (targets < stop)] - start
    cells = slice(start, stop)
    return SupplyPlan(
        headcount_by_age=plan.headcount_by_age[cells],
        nonretirement_leaving_rate=plan.nonretirement_leaving_rate[cells],
        fte_per_head=plan.fte_per_head[cells],
        sickness_rate=plan.sickness_rate[cells],
        effective_fte_per_head=plan.effective_fte_per_head[cells],
        stock_headcount=plan.stock_headcount[:, cells],
        mix_kernel=plan.mix_kernel[:, :, cells],
        mixes=plan.mixes,
        join_terms=tuple(
            JoinTerm(
                start_year=t.start_year,
                mix=t.mix,
                fixed_headcount=t.fixed_headcount[cells],
                scaled_headcount=t.scaled_headcount[cells],
            )
            for t in plan.join_terms
        ),
        cross_flows=flows,
        cross_target_cells=targets.astype(np.int64),
        cell_retention=plan.cell_retention[cells],
        leavers=plan.leavers,
    )


class Workspace:
    """Reusable scratch arrays, so a year loop allocates nothing after its first batch."""

    def __init__(self) -> None:
        self._store: dict[str, FloatArray] = {}

    def get(self, name: str, shape: tuple[int, ...]) -> FloatArray:
        size = math.prod(shape)
        buffer = self._store.get(name)
        if buffer is None or buffer.size < size:
            buffer = np.empty(size)
            self._store[name] = buffer
        return buffer[:size].reshape(shape)


class CohortKernel:
    """Supply headcount of a set of cells for a batch of runs, one year at a time.

    Arrays are (runs, cells); memory depends on the batch, not the run count.
    """

    def __init__(
        self,
        plan: SupplyPlan,
        leaving_multiplier: FloatArray,
        joining_multiplier: FloatArray,
        workspace: Workspace | None = None,
    ) -> None:
        ws = workspace if workspace is not None else Workspace()
        n_runs = leaving_multiplier.shape[0]
        n_cells = plan.nonretirement_leaving_rate.shape[0]
        shape = (n_runs, n_cells)
        self.plan = plan
        self.stay = ws.get("stay", shape)
        if plan.leavers:
            np.multiply(leaving_multiplier[:, None], plan.nonretirement_leaving_rate, out=self.stay)
            np.minimum(self.stay, 1.0, out=self.stay)
            np.subtract(1.0, self.stay, out=self.stay)
        else:
            self.stay.fill(1.0)
        self.power = ws.get("power", shape)  # stay ** year
        self.power.fill(1.0)
        self.terms: list[tuple[int, int, FloatArray]] = []
        for k, term in enumerate(plan.join_terms):
            if np.any(term.scaled_headcount != 0):
                amount = ws.get(f"amount{k}", shape)
                np.multiply(joining_multiplier[:, None], term.scaled_headcount, out=amount)
                amount += term.fixed_headcount
            else:
                amount = term.fixed_headcount[None, :]
            self.terms.append((term.start_year, term.mix, amount))
        self.clip = any(np.any(t.fixed_headcount < 0) for t in plan.join_terms)
        # running[m] holds sum_{t < T} stay^t x kernel_m(t) for the last few T, in a ring
        # long enough for the longest lag a term of that mix reads.
        self.mixes_used = sorted({t.mix for t in plan.join_terms})
        self.running: dict[int, FloatArray] = {}
        for mix in self.mixes_used:
            longest_lag = max(t.start_year for t in plan.join_terms if t.mix == mix)
            ring = ws.get(f"running{mix}", (longest_lag + 2, n_runs, n_cells))
            ring[0].fill(0.0)
            self.running[mix] = ring
        self.scratch = ws.get("scratch", shape)
        targets = plan.cross_target_cells
        # Joiners from cross-sector flows, by age band: (6, runs, target cells).
        self.cross_persons = np.zeros((N_WORKFORCE_AGE_BANDS, n_runs, targets.shape[0]))
        self.cross_stay = self.stay[:, targets] if targets.size else self.stay[:, :0]
        self.cross_retention = plan.cell_retention[targets].T.copy()  # (6, targets)

    def _running_at(self, mix: int, elapsed: int) -> FloatArray:
        ring = self.running[mix]
        slot: FloatArray = ring[elapsed % ring.shape[0]]
        return slot

    def headcount(self, year: int, out: FloatArray) -> FloatArray:
        """Persons in post in `year`, (runs, cells); never negative."""
        plan = self.plan
        np.multiply(self.power, plan.stock_headcount[year], out=out)
        for start, mix, amount in self.terms:
            elapsed = year - start
            if elapsed > 0:
                np.multiply(self._running_at(mix, elapsed), amount, out=self.scratch)
                out += self.scratch
        if plan.cross_flows:
            out[:, plan.cross_target_cells] += self.cross_persons.sum(axis=0)
        if self.clip:
            np.maximum(out, 0.0, out=out)
        return out

    def advance(self, year: int, headcount: FloatArray) -> None:
        """Move from `year` to year + 1, given that year's headcount."""
        plan = self.plan
        if plan.cross_flows:
            self._advance_cross_flows(headcount)
        for mix in self.mixes_used:
            np.multiply(self.power, plan.mix_kernel[mix, year], out=self.scratch)
            np.add(self._running_at(mix, year), self.scratch, out=self._running_at(mix, year + 1))
        self.power *= self.stay

    def _advance_cross_flows(self, headcount: FloatArray) -> None:
        plan = self.plan
        targets = plan.cross_target_cells
        inflow = np.zeros((headcount.shape[0], targets.shape[0]))
        for rule in plan.cross_flows:
            sources = rule.source_cells
            leavers = (1.0 - self.stay[:, sources]) * headcount[:, sources]
            by_group = np.add.reduceat(leavers, rule.source_starts, axis=1)
            position = np.searchsorted(targets, rule.target_cells)
            inflow[:, position] += rule.share * by_group[:, rule.target_group] * rule.target_weight
        persons = self.cross_persons
        persons *= self.cross_stay
        persons *= self.cross_retention[:, None, :]
        moving = persons[:-1] * AGEING_FRACTION[:-1, None, None]
        persons[:-1] -= moving
        persons[1:] += moving
        persons += plan.mixes[JOINER_MIX][:, None, None] * inflow


def project_supply(
    inputs: ProjectionInputs, params: ScenarioParameters
) -> tuple[FloatArray, FloatArray]:
    """Principal (headcount, effective FTE) per year and cell, each (T, C).

    A convenience for checks and tests; the engine runs the same kernel in batches.
    """
    plan = prepare_supply(inputs, params)
    horizon = inputs.horizon_years
    kernel = CohortKernel(plan, np.ones(1), np.ones(1))
    headcount = np.empty((horizon + 1, inputs.n_cells))
    row = np.empty((1, inputs.n_cells))
    for y in range(horizon + 1):
        kernel.headcount(y, row)
        headcount[y] = row[0]
        if y < horizon:
            kernel.advance(y, row)
    return headcount, headcount * plan.effective_fte_per_head
