"""Projection benchmark: the engine against a bare numpy kernel doing the same arithmetic.

Builds synthetic England-scale inputs (296 LADs in 42 ICBs, 5,000 organisations, 40 roles:
200,000 cells, 20-year horizon, 500 runs), times project() and then a straight-line numpy
kernel with the same demand, supply, sharing and percentile maths (no dataclasses, no
validation, no general aggregation) in the same process, checks they agree, and prints both
times, their ratio (target: engine <= 1.5 x kernel) and the peak RSS.

    .venv/bin/python -m bench.projection            # England scale
    .venv/bin/python -m bench.projection --quick    # a small run for a smoke test
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

from services.projector.model.engine import Aggregation, ProjectionOutputs, project
from services.projector.model.inputs import (
    CFAS2_DEMENTIA_PREVALENCE,
    ProjectionInputs,
    SharingAgreement,
)
from services.projector.model.params import (
    ByRole,
    CrossSectorFlow,
    Intake,
    ScenarioParameters,
    Substitution,
    UncertaintyParameters,
)
from shared.vocab.drivers import POPULATION_DRIVERS

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class Size:
    lads: int
    icbs: int
    organisations: int
    roles: int
    horizon: int
    iterations: int


ENGLAND = Size(lads=296, icbs=42, organisations=5000, roles=40, horizon=20, iterations=500)
QUICK = Size(lads=30, icbs=5, organisations=300, roles=12, horizon=10, iterations=60)


@dataclass(frozen=True)
class Synthetic:
    inputs: ProjectionInputs
    params: ScenarioParameters
    area_icb: IntArray
    size: Size


def build(size: Size, seed: int = 7) -> Synthetic:
    """Synthetic returns and population; cells ordered by ICB, LAD, role, organisation."""
    rng = np.random.default_rng(seed)
    years = size.horizon + 1
    lad_icb = np.sort(
        np.r_[np.arange(size.icbs), rng.integers(0, size.icbs, size.lads - size.icbs)]
    )
    # Population: older bands grow faster, as in the ONS projections.
    base = rng.uniform(2_000, 9_000, (size.lads, 1, 2, 19))
    growth = 1.0 + rng.uniform(-0.002, 0.004, (size.lads, 1, 1, 1)) + np.linspace(0, 0.025, 19)
    population = base * growth ** np.arange(years)[None, :, None, None]
    variant = population * (1.0 + 0.1 * (growth - 1.0) * np.arange(years)[None, :, None, None])

    org_lad = np.sort(
        np.r_[np.arange(size.lads), rng.integers(0, size.lads, size.organisations - size.lads)]
    )
    lad_role = np.stack(np.meshgrid(np.arange(size.lads), np.arange(size.roles), indexing="ij"), -1)
    # One cell per organisation and role, ordered by LAD, role, organisation.
    orgs_in_lad = np.bincount(org_lad, minlength=size.lads)
    first_org = np.r_[0, np.cumsum(orgs_in_lad)[:-1]]
    cell_area = np.repeat(lad_role[..., 0].reshape(-1), np.repeat(orgs_in_lad, size.roles))
    cell_role = np.repeat(lad_role[..., 1].reshape(-1), np.repeat(orgs_in_lad, size.roles))
    cell_org = np.concatenate(
        [
            np.arange(first_org[lad], first_org[lad] + orgs_in_lad[lad])
            for lad in range(size.lads)
            for _ in range(size.roles)
        ]
    )
    n_cells = cell_org.size
    headcount = np.round(rng.lognormal(2.3, 0.9, n_cells))
    headcount_by_age = rng.dirichlet([3, 6, 6, 6, 4, 1], n_cells) * headcount[:, None]
    fte_in_post = headcount * rng.uniform(0.7, 0.95, n_cells)
    role_codes = tuple(f"role_{r:02d}" for r in range(size.roles))

    agreements = []
    for icb in range(size.icbs):
        orgs = np.flatnonzero(lad_icb[org_lad] == icb)[:8]
        if orgs.size >= 2:
            agreements.append(
                SharingAgreement(
                    key=f"icb{icb:02d}",
                    party_orgs=tuple(int(o) for o in orgs),
                    role_codes=role_codes[:3],
                    lender_cap_fte=np.full((orgs.size, 3), 2.0),
                )
            )
    inputs = ProjectionInputs(
        base_year=2024,
        role_codes=role_codes,
        cell_org=cell_org,
        cell_role=cell_role,
        cell_area=cell_area,
        fte_in_post=fte_in_post,
        vacant_fte=fte_in_post * rng.uniform(0.0, 0.15, n_cells),
        headcount=headcount,
        headcount_by_age=headcount_by_age,
        starters_12m=np.round(headcount * rng.uniform(0.08, 0.3, n_cells)),
        leavers_12m=np.round(headcount * rng.uniform(0.08, 0.3, n_cells)),
        sickness_days_12m=headcount * rng.uniform(3, 15, n_cells),
        agency_fte=fte_in_post * rng.uniform(0.0, 0.08, n_cells),
        bank_fte=fte_in_post * rng.uniform(0.0, 0.05, n_cells),
        cell_footprint=lad_icb[cell_area],
        population=population,
        population_variant=variant,
        agreements=tuple(agreements),
    )
    last = role_codes[-1]
    params = ScenarioParameters(
        default_demand_driver="population_all",
        demand_driver_by_role={
            code: POPULATION_DRIVERS[r % len(POPULATION_DRIVERS)]
            for r, code in enumerate(role_codes)
        },
        productivity_growth_per_year=ByRole(0.01),
        non_demographic_growth_per_year=ByRole(0.005),
        prevention_reduction=ByRole(0.0, {role_codes[1]: 0.1}),
        substitutions=(Substitution(role_codes[0], last, share=0.1, ratio=0.8, phase_in_years=5),),
        recruitment_change=ByRole(0.05),
        international_recruitment=(Intake(role_codes[0], 20.0, first_year=1, last_year=10),),
        training_pipeline=(Intake(role_codes[2], 10.0, first_year=3),),
        cross_sector_flows=(CrossSectorFlow(role_codes[1], role_codes[0], 0.1),),
        agency_conversion=ByRole(0.3),
        uncertainty=UncertaintyParameters(),
    )
    return Synthetic(inputs=inputs, params=params, area_icb=lad_icb, size=size)


# ---------------------------------------------------------------------------------------------
# The bare kernel: the same arithmetic as the engine for this benchmark's scenario, written as
# straight-line numpy over the synthetic layout (cells already in ICB, LAD, role, organisation
# order; every organisation has every role), with no dataclasses, validation or general
# aggregation. Same batching (ICB blocks, 2**16-element run batches, chunks of 50 runs).

AGEING = np.array([1 / 7, 0.1, 0.1, 0.1, 0.1, 0.0])
HAZARD = np.array([0.0, 0.0, 0.0, 0.005, 0.07, 0.25])
MIXES = np.array(
    [
        [0.25, 0.35, 0.20, 0.13, 0.06, 0.01],
        [0.55, 0.35, 0.08, 0.02, 0.0, 0.0],
        [0.05, 0.60, 0.28, 0.06, 0.01, 0.0],
    ]
)


def _normals(seed: int, start: int, stop: int) -> FloatArray:
    z = np.zeros((stop - start, 4))
    for row, run in enumerate(range(start, stop)):
        if run:
            generator = np.random.Generator(
                np.random.PCG64(np.random.SeedSequence(entropy=seed, spawn_key=(run,)))
            )
            z[row] = generator.standard_normal(4)
    return z


def _shares(group: IntArray, weight: FloatArray, fallback: FloatArray) -> FloatArray:
    share = np.zeros_like(weight)
    for w in (np.ones_like(weight), fallback, weight):
        totals = np.bincount(group, w)[group]
        share = np.where(totals > 0, w / np.where(totals > 0, totals, 1.0), share)
    return share


def bare_kernel(data: Synthetic, seed: int) -> dict[str, FloatArray]:
    """Principal and p10/p50/p90 of the six measures at the six levels, as (G, T) arrays."""
    inp, size = data.inputs, data.size
    years, horizon, n_roles = size.horizon + 1, size.horizon, size.roles
    n_runs, n_cells = size.iterations + 1, inp.n_cells
    role, area, org = inp.cell_role, inp.cell_area, inp.cell_org
    icb = data.area_icb[area]
    headcount = inp.headcount
    agency = inp.agency
    step = np.arange(years, dtype=np.float64)

    # Demand: drivers (kind, area, year), base level per cell and year.
    weights = np.zeros((7, 2, 19))
    weights[0] = 1.0
    weights[1, :, :3], weights[1, :, 3] = 1.0, 0.6
    weights[2, :, 3], weights[2, :, 4:13] = 0.4, 1.0
    weights[3, :, 13:] = 1.0
    weights[4, :, 15:] = 1.0
    weights[5, :, 17:] = 1.0
    weights[6, :, 13:] = np.array(CFAS2_DEMENTIA_PREVALENCE)
    flat = weights.reshape(1, 1, 7, 38)
    principal = (inp.population.reshape(size.lads, years, 1, 38) * flat).sum(-1).transpose(2, 0, 1)
    assert inp.population_variant is not None
    variant = (inp.population_variant.reshape(size.lads, years, 1, 38) * flat).sum(-1)
    variant = variant.transpose(2, 0, 1)
    role_kind = np.arange(n_roles) % 7
    prevention = np.where(np.arange(n_roles) == 1, 0.1, 0.0)[:, None] * np.minimum(step / 5, 1)
    base = inp.fte_in_post + inp.vacant_fte
    base_level = base * (1.005 ** step[:, None] * (1.0 - prevention)[role].T)
    variant_sd = 1.0 / NormalDist().inv_cdf(0.9)

    # Supply: base stock, rates, kernels.
    by_age = inp.headcount_by_age
    band_total = by_age.sum(1)
    h0 = np.where(
        (band_total > 0)[:, None],
        by_age * (headcount / np.where(band_total > 0, band_total, 1.0))[:, None],
        headcount[:, None] * np.array([0.07, 0.25, 0.25, 0.24, 0.17, 0.02]),
    )
    has_staff = headcount > 0
    per_head = np.where(has_staff, headcount, 1.0)
    retiring = (h0 * HAZARD).sum(1) / per_head
    rate = np.where(has_staff, (inp.leavers_12m / per_head - retiring) / (1.0 - retiring), 0.15)
    rate = np.clip(rate, 0.0, 1.0)
    fte_per_head = np.where(has_staff, inp.fte_in_post / per_head, 0.88)
    sickness = np.where(has_staff, inp.sickness_days_12m / (per_head * 225.0), 9.5 / 225.0)
    effective = fte_per_head * (1.0 - np.clip(sickness, 0.0, 1.0))
    stock = np.empty((years, n_cells))
    persons = h0.copy()
    matrix = (np.diag(1 - AGEING) + np.diag(AGEING[:-1], -1)) * (1 - HAZARD)
    for y in range(years):
        stock[y] = persons.sum(1)
        persons = persons @ matrix.T
    kernel = np.empty((3, years))
    cohort = MIXES.copy()
    for t in range(years):
        kernel[:, t] = cohort.sum(1)
        cohort = cohort @ matrix.T
    starters = inp.starters_12m * 1.05
    agency_heads = 0.3 * agency / horizon / fte_per_head
    share = _shares(icb * n_roles + role, headcount, base)
    international = np.where(role == 0, 20.0 * share, 0.0)
    pipeline = np.where(role == 2, 10.0 * share, 0.0)
    flow_weight = np.where(role == 0, share, 0.0)

    # Substitution role 0 -> last role in each organisation (same LAD, so same block).
    sub_source = np.flatnonzero(role == 0)
    sub_target = np.flatnonzero(role == n_roles - 1)
    assert np.array_equal(org[sub_source], org[sub_target])
    sub_phase = np.minimum(step / 5, 1.0) * 0.1

    # Sharing cells: agreement parties' cells for the roles in scope.
    lookup = {(int(o), int(r)): c for c, (o, r) in enumerate(zip(org, role, strict=True))}
    agreements = sorted(inp.agreements, key=lambda a: a.key)
    slots = [
        np.array([[lookup[(o, r)] for r in range(3)] for o in a.party_orgs]) for a in agreements
    ]
    share_cells = np.unique(np.concatenate([s.ravel() for s in slots]))
    slot_pos = [np.searchsorted(share_cells, s) for s in slots]

    atoms = area * n_roles + role
    n_atoms = size.lads * n_roles
    sums = np.zeros((3, n_atoms, years, n_runs))
    share_sums = np.zeros((2, n_atoms, years, n_runs))
    blocks = np.r_[np.flatnonzero(np.r_[True, icb[1:] != icb[:-1]]), n_cells]

    for first_run in range(0, n_runs, 50):
        last_run = min(n_runs, first_run + 50)
        n = last_run - first_run
        z = _normals(seed, first_run, last_run)
        leaving_m = np.exp(0.15 * z[:, 0])
        joining_m = np.exp(0.15 * z[:, 1])
        prod = (1.01 + 0.005 * z[:, 2])[:, None] ** -step
        w = variant_sd * z[:, 3]
        mixed = principal + w[:, None, None, None] * (variant - principal)
        mixed = np.maximum(mixed, 0.0)
        ratio = np.where(w[:, None, None, None] == 0, principal / principal[..., :1], mixed)
        ratio = np.where(w[:, None, None, None] == 0, ratio, mixed / mixed[..., :1])
        share_d = np.zeros((n, years, share_cells.size))
        share_s = np.zeros((n, years, share_cells.size))
        for b in range(blocks.size - 1):
            c0, c1 = int(blocks[b]), int(blocks[b + 1])
            cells = slice(c0, c1)
            nc = c1 - c0
            seg = np.flatnonzero(np.r_[True, atoms[c0 + 1 : c1] != atoms[c0 : c1 - 1]]) + c0
            seg_len = np.diff(np.r_[seg, c1])
            seg_starts = seg - c0
            seg_role, seg_area = role[seg], area[seg]
            local_src = sub_source[(sub_source >= c0) & (sub_source < c1)] - c0
            local_tgt = sub_target[(sub_target >= c0) & (sub_target < c1)] - c0
            src_flow = np.flatnonzero(role[cells] == 1)
            tgt_flow = np.flatnonzero(role[cells] == 0)
            in_block = (share_cells >= c0) & (share_cells < c1)
            share_local = share_cells[in_block] - c0
            share_pos = np.flatnonzero(in_block)
            batch = max(1, min(n, (1 << 16) // nc))
            for r0 in range(0, n, batch):
                r1 = min(n, r0 + batch)
                m = r1 - r0
                factor = ratio[r0:r1, role_kind[seg_role], seg_area, :] * prod[r0:r1, None, :]
                factor = np.ascontiguousarray(factor.transpose(2, 0, 1))
                stay = 1.0 - np.minimum(leaving_m[r0:r1, None] * rate[cells], 1.0)
                power = np.ones((m, nc))
                base_amount = joining_m[r0:r1, None] * starters[cells] + agency_heads[cells]
                ring_j = np.zeros((2, m, nc))
                ring_n = np.zeros((4, m, nc))
                ring_i = np.zeros((12, m, nc))
                cross = np.zeros((6, m, tgt_flow.size))
                cross_stay = stay[:, tgt_flow]
                scratch = np.empty((m, nc))
                supply_heads = np.empty((m, nc))
                supply = np.empty((m, nc))
                shortfall = np.empty((m, nc))
                columns = slice(first_run + r0, first_run + r1)
                atom_slice = slice(int(atoms[c0]), int(atoms[c1 - 1]) + 1)
                for y in range(years):
                    demand = np.repeat(factor[y], seg_len, axis=1)
                    demand *= base_level[y, cells]
                    moved = sub_phase[y] * demand[:, local_src]
                    demand[:, local_src] -= moved
                    demand[:, local_tgt] += 0.8 * moved
                    np.multiply(power, stock[y, cells], out=supply_heads)
                    if y > 0:
                        np.multiply(ring_j[y % 2], base_amount, out=scratch)
                        supply_heads += scratch
                        np.multiply(ring_i[y % 12], international[cells], out=scratch)
                        supply_heads += scratch
                    if y > 2:
                        np.multiply(ring_n[(y - 2) % 4], pipeline[cells], out=scratch)
                        supply_heads += scratch
                    if y > 10:
                        np.multiply(ring_i[(y - 10) % 12], international[cells], out=scratch)
                        supply_heads -= scratch
                    supply_heads[:, tgt_flow] += cross.sum(0)
                    np.maximum(supply_heads, 0.0, out=supply_heads)
                    np.multiply(supply_heads, effective[cells], out=supply)
                    np.subtract(demand, supply, out=shortfall)
                    np.maximum(shortfall, 0.0, out=shortfall)
                    sums[0, atom_slice, y, columns] = np.add.reduceat(demand, seg_starts, 1).T
                    sums[1, atom_slice, y, columns] = np.add.reduceat(supply, seg_starts, 1).T
                    sums[2, atom_slice, y, columns] = np.add.reduceat(shortfall, seg_starts, 1).T
                    share_d[r0:r1, y, share_pos] = demand[:, share_local]
                    share_s[r0:r1, y, share_pos] = supply[:, share_local]
                    if y == years - 1:
                        break
                    leavers = (1.0 - stay[:, src_flow]) * supply_heads[:, src_flow]
                    inflow = 0.1 * leavers.sum(1, keepdims=True) * flow_weight[c0 + tgt_flow]
                    cross *= cross_stay
                    cross *= (1.0 - HAZARD)[:, None, None]
                    moving = cross[:-1] * AGEING[:-1, None, None]
                    cross[:-1] -= moving
                    cross[1:] += moving
                    cross += MIXES[0][:, None, None] * inflow
                    for ring, mix in ((ring_j, 0), (ring_n, 1), (ring_i, 2)):
                        np.multiply(power, kernel[mix, y], out=scratch)
                        np.add(ring[y % len(ring)], scratch, out=ring[(y + 1) % len(ring)])
                    power *= stay

        # Sharing, agreement by agreement, on (runs, years, sharing cells).
        gap = share_d - share_s
        after = gap.copy()
        for pos, agreement in zip(slot_pos, agreements, strict=True):
            before = after[..., pos]
            lend = np.minimum(np.maximum(-before, 0.0), agreement.lender_cap_fte)
            short = np.maximum(before, 0.0)
            total_lend, total_short = lend.sum(-2), short.sum(-2)
            moved_fte = np.minimum(total_lend, total_short)
            give = np.divide(
                moved_fte, total_lend, out=np.zeros_like(moved_fte), where=total_lend > 0
            )
            take = np.divide(
                moved_fte, total_short, out=np.zeros_like(moved_fte), where=total_short > 0
            )
            after[..., pos] = before + lend * give[..., None, :] - short * take[..., None, :]
        for k, change in enumerate((after - gap, np.maximum(after, 0) - np.maximum(gap, 0))):
            by_atom = np.zeros((n_atoms, years, n))
            np.add.at(by_atom, atoms[share_cells], change.transpose(2, 1, 0))
            share_sums[k, :, :, first_run:last_run] = by_atom

    # Levels: the atoms are the LAD x role groups; coarser levels are plain sums.
    results: dict[str, FloatArray] = {}
    icb_of_lad = data.area_icb
    lad_bounds = np.r_[np.flatnonzero(np.r_[True, icb_of_lad[1:] != icb_of_lad[:-1]]), size.lads]

    def level(values: FloatArray, name: str) -> FloatArray:
        by_lad: FloatArray = values.reshape(size.lads, n_roles, years, n_runs)
        if name == "lad_role":
            return values
        if name in ("lad", "england_role"):
            summed: FloatArray = by_lad.sum(1 if name == "lad" else 0)
            return summed
        if name == "england":
            total: FloatArray = values.sum(0, keepdims=True)
            return total
        icb_role = np.stack(
            [by_lad[lad_bounds[i] : lad_bounds[i + 1]].sum(0) for i in range(size.icbs)]
        )
        return icb_role.reshape(-1, years, n_runs) if name == "icb_role" else icb_role.sum(1)

    q = np.array([10.0, 50.0, 90.0]) / 100 * (n_runs - 2)
    below = np.floor(q).astype(np.int64)
    above = np.minimum(below + 1, n_runs - 2)
    fraction = (q - below)[:, None, None]

    def keep(name: str, measure: str, values: FloatArray) -> None:
        ordered = np.sort(values[..., 1:], axis=-1)
        low = np.moveaxis(ordered[..., below], -1, 0)
        high = np.moveaxis(ordered[..., above], -1, 0)
        p10, p50, p90 = low + (high - low) * fraction
        results[f"{name}.{measure}.principal"] = values[..., 0].copy()
        results[f"{name}.{measure}.p10"] = p10
        results[f"{name}.{measure}.p50"] = p50
        results[f"{name}.{measure}.p90"] = p90

    # One level at a time, so only a level's arrays are in memory at once.
    for name in ("lad_role", "lad", "icb_role", "icb", "england_role", "england"):
        demand, supply, shortfall = (level(sums[k], name) for k in range(3))
        gap_change, short_change = (level(share_sums[k], name) for k in range(2))
        keep(name, "demand_fte", demand)
        keep(name, "supply_fte", supply)
        keep(name, "shortfall_fte", shortfall)
        keep(name, "shortfall_after_sharing_fte", shortfall + short_change)
        gap = demand - supply
        del demand, supply, shortfall
        keep(name, "gap_fte", gap)
        gap += gap_change
        keep(name, "gap_after_sharing_fte", gap)
        del gap
    return results


def check_agreement(outputs: ProjectionOutputs, bare: dict[str, FloatArray]) -> float:
    """Largest relative difference between engine and bare kernel over all statistics."""
    worst = 0.0
    for key, expected in bare.items():
        level_name, measure, statistic = key.split(".")
        actual = getattr(outputs.level(level_name).measure(measure), statistic)
        scale = max(1.0, float(np.abs(expected).max()))
        worst = max(worst, float(np.abs(actual - expected).max()) / scale)
    return worst


def peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_engine(data: Synthetic, seed: int, explain: bool) -> tuple[float, ProjectionOutputs]:
    aggregation = Aggregation.standard(data.inputs, data.area_icb, data.size.icbs)
    start = time.perf_counter()
    outputs = project(
        data.inputs,
        data.params,
        iterations=data.size.iterations,
        seed=seed,
        aggregation=aggregation,
        explain=explain,
    )
    return time.perf_counter() - start, outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small inputs (a smoke test)")
    parser.add_argument("--iterations", type=int, help="override the number of runs")
    parser.add_argument("--seed", type=int, default=20240401)
    parser.add_argument("--no-explain", action="store_true", help="time the engine without explain")
    args = parser.parse_args(argv)
    size = QUICK if args.quick else ENGLAND
    if args.iterations is not None:
        size = Size(**{**size.__dict__, "iterations": args.iterations})
    started = time.perf_counter()
    data = build(size)
    print(
        f"inputs: {size.lads} LADs, {size.icbs} ICBs, {size.organisations} organisations, "
        f"{size.roles} roles, {data.inputs.n_cells} cells, {size.horizon}-year horizon, "
        f"{size.iterations} runs; built in {time.perf_counter() - started:.1f}s"
    )
    engine_s, outputs = time_engine(data, args.seed, explain=not args.no_explain)
    print(f"engine:       {engine_s:8.2f}s   peak RSS so far {peak_rss_mib():8.0f} MiB")
    started = time.perf_counter()
    bare = bare_kernel(data, args.seed)
    kernel_s = time.perf_counter() - started
    print(f"bare kernel:  {kernel_s:8.2f}s   peak RSS so far {peak_rss_mib():8.0f} MiB")
    difference = check_agreement(outputs, bare)
    del bare, outputs
    print(f"ratio engine / bare kernel: {engine_s / kernel_s:.2f} (target <= 1.5)")
    print(f"largest relative difference between the two: {difference:.1e}")
    if difference > 1e-6:
        print("engine and bare kernel disagree", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
