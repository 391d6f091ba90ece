"""The projection engine: demand, supply, gap and gap after sharing, with uncertainty.

project() computes every run for every cell and year, sums the cells into "atoms" (the
finest partition of cells that every aggregation level is a union of) and keeps per-run
atom sums; each level's per-run values are exact sums of atoms, and statistics (principal,
p10, p50, p90) are taken over the per-run sums, so they are percentiles of totals.

Work is batched so memory depends on the batch, not the run count: runs go in chunks of
chunk_size, cells in blocks of whole planning footprints, and each block's runs in batches
small enough for the (runs x cells) arrays to stay in the processor cache. The per-run atom
sums, (years x runs x atoms) per measure, are what grows with the run count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from services.projector.model import demand as demand_model
from services.projector.model import explain as explain_model
from services.projector.model import gap as gap_model
from services.projector.model import supply as supply_model
from services.projector.model.inputs import (
    FloatArray,
    InputError,
    InputProblem,
    IntArray,
    ProjectionInputs,
    validate_inputs,
)
from services.projector.model.params import (
    ScenarioParameters,
    validate_parameters,
)
from services.projector.model.uncertainty import (
    RunDraws,
    central_runs,
    draw_runs,
    run_percentiles,
)
from shared.schemas.scenario_parameters import (
    ParameterError,
)
from shared.vocab.measures import MEASURES

MODEL_VERSION = "1.1.0"


# Elements of one (runs x cells) working array: 2**16 float64 = 512 KiB, so the dozen or so
# arrays a year step touches stay in the L2 cache.
_BATCH_ELEMENTS = 1 << 16
# Cells per block: whole footprints are packed up to this size (one footprint may exceed it).
_BLOCK_CELLS = 8192
# Elements gathered at once when summing atoms into a level's groups.
_LEVEL_ELEMENTS = 1 << 21


# ---------------------------------------------------------------------------------------------
# Aggregation


@dataclass(frozen=True, eq=False)
class AggregationLevel:
    """One output level: cell_group[c] in 0..n_groups-1 is the group cell c is summed into."""

    name: str
    cell_group: IntArray
    n_groups: int


@dataclass(frozen=True, eq=False)
class Aggregation:
    levels: tuple[AggregationLevel, ...]

    @classmethod
    def standard(cls, inputs: ProjectionInputs, area_icb: IntArray, n_icbs: int) -> Aggregation:
        """LAD, ICB and England, each by role and for all roles.

        Group ids: lad_role = area x R + role, lad = area, icb_role = icb x R + role,
        icb = icb, england_role = role, england = 0 (R = number of roles, area = population
        area index of the cell, icb = area_icb[area]).
        """
        n_roles = inputs.n_roles
        area = inputs.cell_area
        role = inputs.cell_role
        icb = np.asarray(area_icb, dtype=np.int64)[area]
        n_areas = inputs.n_areas
        return cls(
            levels=(
                AggregationLevel("lad_role", area * n_roles + role, n_areas * n_roles),
                AggregationLevel("lad", area, n_areas),
                AggregationLevel("icb_role", icb * n_roles + role, n_icbs * n_roles),
                AggregationLevel("icb", icb, n_icbs),
                AggregationLevel("england_role", role, n_roles),
                AggregationLevel("england", np.zeros_like(role), 1),
            )
        )


# ---------------------------------------------------------------------------------------------
# Outputs


@dataclass(frozen=True, eq=False)
class Statistic:
    """One measure for every group and year, each (G, T) FTE.

    Percentiles are over runs 1..N of the level's totals; with no runs they equal the
    principal. iterations (N, G, T) is kept only when asked for.
    """

    principal: FloatArray
    p10: FloatArray
    p50: FloatArray
    p90: FloatArray
    iterations: FloatArray | None = None


@dataclass(frozen=True, eq=False)
class LevelResult:
    name: str
    n_groups: int
    demand_fte: Statistic
    supply_fte: Statistic  # effective: net of sickness absence
    gap_fte: Statistic  # demand - supply, net over the group's cells
    gap_after_sharing_fte: Statistic
    shortfall_fte: Statistic  # sum over cells of positive gaps
    shortfall_after_sharing_fte: Statistic
    explain: explain_model.Explanation | None

    def measure(self, name: str) -> Statistic:
        if name not in MEASURES:
            raise KeyError(name)
        value: Statistic = getattr(self, name)
        return value


@dataclass(frozen=True, eq=False)
class ProjectionOutputs:
    model_version: str
    base_year: int
    years: IntArray  # (T,)
    iterations: int
    seed: int
    levels: tuple[LevelResult, ...]

    def level(self, name: str) -> LevelResult:
        for level in self.levels:
            if level.name == name:
                return level
        raise KeyError(name)


def summarise_runs(values: FloatArray, keep_iterations: bool = False) -> Statistic:
    """Statistic from per-run values (N + 1, G, T), run 0 first.

    For combining jobs: sum the per-run totals of several jobs (same seed), then summarise,
    e.g. England from its ICB jobs' per-run ICB totals.
    """
    principal = values[0]
    runs = values[1:]
    if runs.shape[0] == 0:
        p10 = p50 = p90 = principal.copy()
    else:
        p10, p50, p90 = run_percentiles(runs, axis=0)
    return Statistic(
        principal=principal.copy(),
        p10=p10,
        p50=p50,
        p90=p90,
        iterations=runs.copy() if keep_iterations else None,
    )


# ---------------------------------------------------------------------------------------------
# Layout: cells sorted into blocks and atoms


@dataclass(frozen=True, eq=False)
class _Block:
    cell_start: int
    cell_stop: int
    atom_start: int
    atom_stop: int
    atom_starts: IntArray  # reduceat boundaries, local to the block


@dataclass(frozen=True, eq=False)
class _Layout:
    inputs: ProjectionInputs  # cells sorted by block and atom
    cell_atom: IntArray  # (C,) ascending
    n_atoms: int
    blocks: tuple[_Block, ...]
    atom_group: tuple[IntArray, ...]  # per level, (K,)


def _layout(inputs: ProjectionInputs, aggregation: Aggregation) -> _Layout:
    footprint = inputs.footprint
    footprints, footprint_index, footprint_cells = np.unique(
        footprint, return_inverse=True, return_counts=True
    )
    block_of_footprint = np.zeros(footprints.size, dtype=np.int64)
    block, filled = 0, 0
    for f, count in enumerate(footprint_cells.tolist()):
        if filled and filled + count > _BLOCK_CELLS:
            block, filled = block + 1, 0
        block_of_footprint[f] = block
        filled += count
    cell_block = block_of_footprint[footprint_index]

    keys = np.stack([cell_block, *(level.cell_group for level in aggregation.levels)], axis=1)
    if inputs.n_cells:
        atom_keys, inverse = np.unique(keys, axis=0, return_inverse=True)
        cell_atom = inverse.reshape(-1).astype(np.int64)
    else:
        atom_keys = np.zeros((0, keys.shape[1]), dtype=np.int64)
        cell_atom = np.zeros(0, dtype=np.int64)
    order = np.argsort(cell_atom, kind="stable")
    sorted_inputs = inputs.select_cells(order)
    cell_atom = cell_atom[order]
    cell_block = cell_block[order]

    blocks = []
    atom_block = atom_keys[:, 0]
    for b in np.unique(cell_block).tolist():
        cells = np.flatnonzero(cell_block == b)
        atoms = np.flatnonzero(atom_block == b)
        local_atoms = cell_atom[cells[0] : cells[-1] + 1] - atoms[0]
        starts = np.flatnonzero(np.r_[True, local_atoms[1:] != local_atoms[:-1]])
        blocks.append(
            _Block(
                cell_start=int(cells[0]),
                cell_stop=int(cells[-1]) + 1,
                atom_start=int(atoms[0]),
                atom_stop=int(atoms[-1]) + 1,
                atom_starts=starts.astype(np.int64),
            )
        )
    return _Layout(
        inputs=sorted_inputs,
        cell_atom=cell_atom,
        n_atoms=int(atom_keys.shape[0]),
        blocks=tuple(blocks),
        atom_group=tuple(
            atom_keys[:, 1 + i].astype(np.int64) for i in range(len(aggregation.levels))
        ),
    )


# ---------------------------------------------------------------------------------------------
# Plans per switch state, and their per-block slices


@dataclass(frozen=True, eq=False)
class _BlockPlan:
    block: _Block
    base_level_fte: FloatArray  # (T, c)
    segment_key: IntArray  # demand key of each run of consecutive cells with one key
    segment_length: IntArray
    substitutions: tuple[demand_model.SubstitutionRule, ...]
    supply: supply_model.SupplyPlan
    sharing_local: IntArray  # block-local cells that take part in sharing
    sharing_position: IntArray  # their position among the sharing cells


@dataclass(frozen=True, eq=False)
class _Plans:
    demand: demand_model.DemandPlan
    supply: supply_model.SupplyPlan
    sharing: gap_model.SharingPlan
    blocks: tuple[_BlockPlan, ...]
    sharing_atoms: IntArray  # atoms holding sharing cells, ascending
    sharing_atom_starts: IntArray  # reduceat boundaries over the sharing cells


def _plans(
    layout: _Layout,
    demand_plan: demand_model.DemandPlan,
    supply_plan: supply_model.SupplyPlan,
    sharing_plan: gap_model.SharingPlan,
) -> _Plans:
    block_plans = []
    for block in layout.blocks:
        start, stop = block.cell_start, block.cell_stop
        segment_key, segment_length = demand_model.key_segments(demand_plan.cell_key[start:stop])
        rules = []
        for rule in demand_plan.substitutions:
            inside = (rule.source_cells >= start) & (rule.source_cells < stop)
            if np.any(inside):
                rules.append(
                    replace(
                        rule,
                        source_cells=rule.source_cells[inside] - start,
                        target_cells=rule.target_cells[inside] - start,
                    )
                )
        in_block = (sharing_plan.cells >= start) & (sharing_plan.cells < stop)
        block_plans.append(
            _BlockPlan(
                block=block,
                base_level_fte=demand_plan.base_level_fte[:, start:stop],
                segment_key=segment_key,
                segment_length=segment_length,
                substitutions=tuple(rules),
                supply=supply_model.slice_plan(supply_plan, start, stop),
                sharing_local=(sharing_plan.cells[in_block] - start).astype(np.int64),
                sharing_position=np.flatnonzero(in_block).astype(np.int64),
            )
        )
    share_cell_atoms = layout.cell_atom[sharing_plan.cells]
    sharing_atoms, sharing_starts = np.unique(share_cell_atoms, return_index=True)
    return _Plans(
        demand=demand_plan,
        supply=supply_plan,
        sharing=sharing_plan,
        blocks=tuple(block_plans),
        sharing_atoms=sharing_atoms.astype(np.int64),
        sharing_atom_starts=sharing_starts.astype(np.int64),
    )


# ---------------------------------------------------------------------------------------------
# Simulation


@dataclass(frozen=True, eq=False)
class _AtomSums:
    """Per-run sums by atom, each (atoms, T, runs); sharing changes only on sharing atoms."""

    demand_fte: FloatArray
    supply_fte: FloatArray
    shortfall_fte: FloatArray
    sharing_gap_change_fte: FloatArray
    sharing_shortfall_change_fte: FloatArray


def _allocate_sums(years: int, runs: int, atoms: int, sharing_atoms: int) -> _AtomSums:
    return _AtomSums(
        demand_fte=np.zeros((atoms, years, runs)),
        supply_fte=np.zeros((atoms, years, runs)),
        shortfall_fte=np.zeros((atoms, years, runs)),
        sharing_gap_change_fte=np.zeros((sharing_atoms, years, runs)),
        sharing_shortfall_change_fte=np.zeros((sharing_atoms, years, runs)),
    )


def _simulate(
    plans: _Plans,
    draws: RunDraws,
    sums: _AtomSums,
    run_offset: int,
    years: int,
    workspace: supply_model.Workspace,
) -> None:
    """Project the runs in `draws` and store their atom sums at sums[:, :, run_offset + i]."""
    n_runs = len(draws)
    driver_ratio = demand_model.driver_growth_by_run(
        plans.demand,
        variant_weight=draws.population_variant_weight,
        growth_exponent=draws.population_growth_exponent,
        prevalence_z=draws.dementia_prevalence_z,
    )
    productivity = demand_model.productivity_factor_by_run(
        plans.demand, draws.productivity_shift, years - 1
    )
    n_sharing = plans.sharing.cells.shape[0]
    sharing_demand = np.zeros((n_runs, years, n_sharing))
    sharing_supply = np.zeros((n_runs, years, n_sharing))

    for block_plan in plans.blocks:
        block = block_plan.block
        n_cells = block.cell_stop - block.cell_start
        batch = max(1, min(n_runs, _BATCH_ELEMENTS // max(n_cells, 1)))
        for first in range(0, n_runs, batch):
            runs = slice(first, min(n_runs, first + batch))
            factors = demand_model.key_factors(
                plans.demand, driver_ratio[runs], productivity[runs], block_plan.segment_key
            )
            _simulate_block(
                block_plan,
                np.ascontiguousarray(factors.transpose(2, 0, 1)),
                draws,
                runs,
                sums,
                run_offset,
                (sharing_demand, sharing_supply),
                workspace,
            )

    if n_sharing:
        gap_before = sharing_demand - sharing_supply  # (runs, T, m)
        gap_after = gap_model.share_surplus(gap_before, plans.sharing)
        gap_change = gap_after - gap_before
        shortfall_change = np.maximum(gap_after, 0.0) - np.maximum(gap_before, 0.0)
        run_columns = slice(run_offset, run_offset + n_runs)
        for source, target in (
            (gap_change, sums.sharing_gap_change_fte),
            (shortfall_change, sums.sharing_shortfall_change_fte),
        ):
            by_atom = np.add.reduceat(source, plans.sharing_atom_starts, axis=2)
            target[:, :, run_columns] = by_atom.transpose(2, 1, 0)


def _simulate_block(
    block_plan: _BlockPlan,
    factors_by_year: FloatArray,
    draws: RunDraws,
    runs: slice,
    sums: _AtomSums,
    run_offset: int,
    sharing_out: tuple[FloatArray, FloatArray],
    workspace: supply_model.Workspace,
) -> None:
    """One block of cells for a batch of runs, every year: (runs, cells) arrays throughout."""
    block = block_plan.block
    n_runs = runs.stop - runs.start
    n_cells = block.cell_stop - block.cell_start
    kernel = supply_model.CohortKernel(
        block_plan.supply,
        draws.leaving_multiplier[runs],
        draws.joining_multiplier[runs],
        workspace,
    )
    effective_fte_per_head = block_plan.supply.effective_fte_per_head
    headcount = workspace.get("headcount", (n_runs, n_cells))
    supply = workspace.get("supply", (n_runs, n_cells))
    shortfall = workspace.get("shortfall", (n_runs, n_cells))
    columns = slice(run_offset + runs.start, run_offset + runs.stop)
    atoms = slice(block.atom_start, block.atom_stop)
    starts = block.atom_starts
    has_sharing = block_plan.sharing_local.shape[0] > 0
    sharing_demand, sharing_supply = sharing_out
    years = factors_by_year.shape[0]
    for y in range(years):
        demand = demand_model.cell_demand_fte(
            block_plan.base_level_fte[y], factors_by_year[y], block_plan.segment_length
        )
        if block_plan.substitutions:
            demand_model.apply_substitutions(demand, block_plan.substitutions, y)
        kernel.headcount(y, headcount)
        np.multiply(headcount, effective_fte_per_head, out=supply)
        np.subtract(demand, supply, out=shortfall)
        np.maximum(shortfall, 0.0, out=shortfall)
        sums.demand_fte[atoms, y, columns] = np.add.reduceat(demand, starts, axis=1).T
        sums.supply_fte[atoms, y, columns] = np.add.reduceat(supply, starts, axis=1).T
        sums.shortfall_fte[atoms, y, columns] = np.add.reduceat(shortfall, starts, axis=1).T
        if has_sharing:
            sharing_demand[runs, y, block_plan.sharing_position] = demand[
                :, block_plan.sharing_local
            ]
            sharing_supply[runs, y, block_plan.sharing_position] = supply[
                :, block_plan.sharing_local
            ]
        if y < years - 1:
            kernel.advance(y, headcount)


# ---------------------------------------------------------------------------------------------
# From atoms to levels


@dataclass(frozen=True, eq=False)
class _LevelMap:
    n_groups: int
    atom_order: IntArray  # atoms sorted by group
    bounds: IntArray  # segment boundaries in atom_order, with the end appended
    groups: IntArray  # group of each segment, ascending
    sharing_order: IntArray  # sharing atoms (positions in the sharing sums) sorted by group
    sharing_bounds: IntArray
    sharing_groups: IntArray


def _segments(group_of_item: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    order = np.argsort(group_of_item, kind="stable").astype(np.int64)
    sorted_groups = group_of_item[order]
    if sorted_groups.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return order, np.zeros(1, dtype=np.int64), empty
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    bounds = np.r_[starts, order.size].astype(np.int64)
    return order, bounds, sorted_groups[starts].astype(np.int64)


def _level_map(atom_group: IntArray, n_groups: int, sharing_atoms: IntArray) -> _LevelMap:
    order, bounds, groups = _segments(atom_group)
    s_order, s_bounds, s_groups = _segments(atom_group[sharing_atoms])
    return _LevelMap(n_groups, order, bounds, groups, s_order, s_bounds, s_groups)


def _segment_sums(
    values: FloatArray, order: IntArray, bounds: IntArray, first: int, last: int
) -> FloatArray:
    """Sums of segments first..last-1 of items (rows of values) taken in `order`.

    One-item segments are a single gather; longer ones are summed row by row with np.sum,
    which is far faster than np.add.reduceat along the first axis of a large array.
    """
    lengths = np.diff(bounds[first : last + 1])
    starts = bounds[first:last]
    rows = order[int(bounds[first]) : int(bounds[last])]
    in_order = rows.size == last - first and bool(np.all(np.diff(rows) == 1))
    if in_order and rows.size:
        # One item per group, already in order: a view, no copy.
        view: FloatArray = values[rows[0] : rows[-1] + 1]
        return view
    out = np.empty((last - first, *values.shape[1:]))
    single = lengths == 1
    if np.any(single):
        out[single] = values[order[starts[single]]]
    for segment in np.flatnonzero(~single).tolist():
        rows = order[starts[segment] : starts[segment] + lengths[segment]]
        if rows[-1] - rows[0] == rows.size - 1:
            np.sum(values[rows[0] : rows[-1] + 1], axis=0, out=out[segment])
        else:
            np.sum(values[rows], axis=0, out=out[segment])
    return out


def _level_slices(level: _LevelMap, per_atom: int) -> list[tuple[int, int]]:
    """Ranges of group segments whose atoms fit the gather budget (at least one segment)."""
    step = max(1, _LEVEL_ELEMENTS // max(per_atom, 1))
    slices = []
    first = 0
    n_segments = level.groups.size
    while first < n_segments:
        last = int(np.searchsorted(level.bounds, level.bounds[first] + step, side="right")) - 1
        last = min(max(last, first + 1), n_segments)
        slices.append((first, last))
        first = last
    return slices


def _slice_values(
    sums: _AtomSums, level: _LevelMap, first: int, last: int
) -> dict[str, FloatArray]:
    """Per-run values (g, T, runs) of every measure for group segments first..last-1."""

    def dense(values: FloatArray) -> FloatArray:
        return _segment_sums(values, level.atom_order, level.bounds, first, last)

    groups = level.groups[first:last]
    demand = dense(sums.demand_fte)
    supply = dense(sums.supply_fte)
    gap = demand - supply
    shortfall = dense(sums.shortfall_fte)
    gap_after = gap.copy()
    shortfall_after = shortfall.copy()
    # Sharing changes live on few atoms: add those whose group is in this slice.
    s_first = int(np.searchsorted(level.sharing_groups, groups[0], side="left"))
    s_last = int(np.searchsorted(level.sharing_groups, groups[-1], side="right"))
    if s_last > s_first:
        target = np.searchsorted(groups, level.sharing_groups[s_first:s_last])
        for values, out in (
            (sums.sharing_gap_change_fte, gap_after),
            (sums.sharing_shortfall_change_fte, shortfall_after),
        ):
            out[target] += _segment_sums(
                values, level.sharing_order, level.sharing_bounds, s_first, s_last
            )
    return {
        "demand_fte": demand,
        "supply_fte": supply,
        "gap_fte": gap,
        "gap_after_sharing_fte": gap_after,
        "shortfall_fte": shortfall,
        "shortfall_after_sharing_fte": shortfall_after,
    }


def _level_statistics(
    sums: _AtomSums, level: _LevelMap, keep_iterations: bool
) -> dict[str, Statistic]:
    """Principal and percentiles of every measure for one level, built slice by slice."""
    _, years, n_runs = sums.demand_fte.shape
    shape = (level.n_groups, years)
    outputs = {
        name: {key: np.zeros(shape) for key in ("principal", "p10", "p50", "p90")}
        for name in MEASURES
    }
    kept = {name: np.zeros((n_runs - 1, *shape)) for name in MEASURES} if keep_iterations else {}
    for first, last in _level_slices(level, years * n_runs):
        groups = level.groups[first:last]
        for name, values in _slice_values(sums, level, first, last).items():
            outputs[name]["principal"][groups] = values[:, :, 0]
            if n_runs > 1:
                p10, p50, p90 = run_percentiles(values[:, :, 1:], axis=-1)
            else:
                p10 = p50 = p90 = values[:, :, 0]
            outputs[name]["p10"][groups] = p10
            outputs[name]["p50"][groups] = p50
            outputs[name]["p90"][groups] = p90
            if keep_iterations:
                kept[name][:, groups, :] = values[:, :, 1:].transpose(2, 0, 1)
    # Groups without cells have no runs to spread: their percentiles are the principal (zero).
    return {
        name: Statistic(
            principal=outputs[name]["principal"],
            p10=outputs[name]["p10"],
            p50=outputs[name]["p50"],
            p90=outputs[name]["p90"],
            iterations=kept.get(name),
        )
        for name in MEASURES
    }


def _principal_gaps(sums: _AtomSums, level: _LevelMap) -> tuple[FloatArray, FloatArray]:
    """Principal gap and gap after sharing per group and year, each (G, T)."""
    principal = _AtomSums(
        demand_fte=sums.demand_fte[:, :, :1],
        supply_fte=sums.supply_fte[:, :, :1],
        shortfall_fte=sums.shortfall_fte[:, :, :1],
        sharing_gap_change_fte=sums.sharing_gap_change_fte[:, :, :1],
        sharing_shortfall_change_fte=sums.sharing_shortfall_change_fte[:, :, :1],
    )
    years = sums.demand_fte.shape[1]
    gap = np.zeros((level.n_groups, years))
    gap_after = np.zeros((level.n_groups, years))
    if level.groups.size:
        values = _slice_values(principal, level, 0, level.groups.size)
        gap[level.groups] = values["gap_fte"][:, :, 0]
        gap_after[level.groups] = values["gap_after_sharing_fte"][:, :, 0]
    return gap, gap_after


# ---------------------------------------------------------------------------------------------
# Entry point


def _check_call(
    inputs: ProjectionInputs,
    params: ScenarioParameters,
    aggregation: Aggregation,
    iterations: int,
    seed: int,
    chunk_size: int,
) -> None:
    parameter_problems = validate_parameters(params)
    if parameter_problems:
        raise ParameterError(parameter_problems)
    problems = validate_inputs(inputs)
    if iterations < 0:
        problems.append(InputProblem("iterations", "must be zero or more"))
    if seed < 0:
        problems.append(InputProblem("seed", "must be zero or more"))
    if chunk_size < 1:
        problems.append(InputProblem("chunk_size", "must be at least 1"))
    names = [level.name for level in aggregation.levels]
    if len(set(names)) != len(names):
        problems.append(InputProblem("aggregation", "level names must be unique"))
    for level in aggregation.levels:
        group = np.asarray(level.cell_group)
        if group.shape != (inputs.n_cells,):
            problems.append(
                InputProblem(f"aggregation.{level.name}", f"must have shape ({inputs.n_cells},)")
            )
        elif group.size and (group.min() < 0 or group.max() >= level.n_groups):
            problems.append(InputProblem(f"aggregation.{level.name}", "group id out of range"))
    if problems:
        raise InputError(problems)


def project(
    inputs: ProjectionInputs,
    params: ScenarioParameters,
    *,
    iterations: int,
    seed: int,
    aggregation: Aggregation,
    chunk_size: int = 50,
    keep_iterations: bool | frozenset[str] = False,
    explain: bool = True,
    progress: Callable[[float], None] | None = None,
) -> ProjectionOutputs:
    """Project demand, supply, gap and gap after sharing for run 0 and `iterations` runs.

    Raises ParameterError or InputError (each listing every problem) on invalid arguments.
    progress, when given, is called with the share of the work done after each chunk.
    keep_iterations keeps every run's values of every level (True) or of the named levels.
    """
    _check_call(inputs, params, aggregation, iterations, seed, chunk_size)
    years = inputs.horizon_years + 1
    levels = tuple(
        replace(level, cell_group=np.asarray(level.cell_group, dtype=np.int64))
        for level in aggregation.levels
    )
    layout = _layout(inputs, Aggregation(levels))
    demand_plan = demand_model.prepare_demand(layout.inputs, params)
    supply_plan = supply_model.prepare_supply(layout.inputs, params)
    sharing_plan = gap_model.prepare_sharing(layout.inputs)
    plans = _plans(layout, demand_plan, supply_plan, sharing_plan)
    workspace = supply_model.Workspace()
    n_runs = iterations + 1
    sums = _allocate_sums(years, n_runs, layout.n_atoms, plans.sharing_atoms.shape[0])
    for start in range(0, n_runs, chunk_size):
        stop = min(n_runs, start + chunk_size)
        draws = draw_runs(seed, start, stop, params.uncertainty)
        _simulate(plans, draws, sums, start, years, workspace)
        if progress is not None:
            progress(0.9 * stop / n_runs)

    level_maps = [
        _level_map(layout.atom_group[i], level.n_groups, plans.sharing_atoms)
        for i, level in enumerate(levels)
    ]
    explanations: list[explain_model.Explanation | None] = [None] * len(levels)
    if explain:
        explanations = list(_explain(layout, params, plans, level_maps, sums, years, workspace))

    results = []
    for level, level_map, explanation in zip(levels, level_maps, explanations, strict=True):
        keep = (
            level.name in keep_iterations
            if isinstance(keep_iterations, frozenset)
            else keep_iterations
        )
        statistics = _level_statistics(sums, level_map, keep)
        results.append(
            LevelResult(
                name=level.name,
                n_groups=level.n_groups,
                explain=explanation,
                **statistics,
            )
        )
    if progress is not None:
        progress(1.0)
    return ProjectionOutputs(
        model_version=MODEL_VERSION,
        base_year=inputs.base_year,
        years=inputs.years,
        iterations=iterations,
        seed=seed,
        levels=tuple(results),
    )


def _group_sums(groups: IntArray, values: FloatArray, n_groups: int) -> FloatArray:
    sums: FloatArray = np.bincount(groups, values, minlength=n_groups).astype(np.float64)
    return sums


def _explain(
    layout: _Layout,
    params: ScenarioParameters,
    plans: _Plans,
    level_maps: list[_LevelMap],
    sums: _AtomSums,
    years: int,
    workspace: supply_model.Workspace,
) -> list[explain_model.Explanation]:
    principal = [_principal_gaps(sums, level_map) for level_map in level_maps]
    supply_plan = plans.supply
    inputs = layout.inputs
    # Base-year gap = vacancies + sickness absence: demand at base is FTE in post + vacant FTE
    # and effective supply is FTE in post less the share of working time lost to sickness.
    cell_vacancies = np.asarray(inputs.vacant_fte, dtype=np.float64)
    cell_sickness = inputs.headcount * supply_plan.fte_per_head * supply_plan.sickness_rate
    supply_without_retirement = supply_model.prepare_supply(layout.inputs, params, retirement=False)
    no_sharing = gap_model.prepare_sharing(layout.inputs, enabled=False)
    changes: list[list[FloatArray]] = [[] for _ in level_maps]
    for switches in explain_model.switch_sequence():
        demand_plan = demand_model.switch_demand(
            plans.demand,
            demography=switches.demography,
            productivity=switches.productivity,
            substitution=switches.substitution,
        )
        supply_plan = supply_model.switch_supply(
            plans.supply if switches.retirement else supply_without_retirement,
            leavers=switches.leavers,
            joiners=switches.joiners,
            cross_sector=switches.cross_sector_flows,
        )
        sharing_plan = plans.sharing if switches.sharing else no_sharing
        state_plans = _plans(layout, demand_plan, supply_plan, sharing_plan)
        state = _allocate_sums(years, 1, layout.n_atoms, state_plans.sharing_atoms.shape[0])
        _simulate(state_plans, central_runs(), state, 0, years, workspace)
        for i, level_map in enumerate(level_maps):
            state_map = _level_map(
                layout.atom_group[i], level_map.n_groups, state_plans.sharing_atoms
            )
            changes[i].append(_principal_gaps(state, state_map)[1])
    explanations = []
    for i, (level_changes, (gap, gap_after)) in enumerate(zip(changes, principal, strict=True)):
        groups = layout.atom_group[i][layout.cell_atom]
        n_groups = level_maps[i].n_groups
        explanations.append(
            explain_model.decompose(
                np.stack(level_changes),
                gap_after,
                base_gap_fte=gap[:, 0],
                base_vacancies_fte=_group_sums(groups, cell_vacancies, n_groups),
                base_sickness_absence_fte=_group_sums(groups, cell_sickness, n_groups),
            )
        )
    return explanations
