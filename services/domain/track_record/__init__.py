"""Track record: how well past baseline projections matched the returns posted later.

For an ICB, every year with current returns is a possible base year. For each base year b and
each later return year y, the baseline is projected again from b as it would have been run
then (the organisations' latest returns at the end of b, the baseline scenario, the same seed
and draws) and year y is compared with the returns posted for y. Only organisations with a
return in both years are compared, so an organisation joining or missing a year does not count
as error.

What is compared is what returns report: **FTE in post** (supply before sickness absence:
sickness days are set to zero for this projection, so supply is FTE in post) and **vacant
FTE** (projected as demand - FTE in post). Per role, sector and all roles:
error = projected - actual (positive: the projection was too high), absolute percentage
error = |error| / actual, and whether the actual fell between the projection's p10 and p90
(which it should about 80% of the time if the stated uncertainty is right).
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncSession

from services.domain.projections import runs as projection_runs
from services.domain.track_record import errors
from services.projector import pipeline
from services.projector.model.engine import Aggregation, AggregationLevel, Statistic, project
from services.projector.model.inputs import FloatArray, ProjectionInputs
from services.projector.model.uncertainty import run_percentiles
from shared.models import ALL_ROLES, Area, AreaType, ProjectionRun
from shared.reference import files as reference_files
from shared.repositories import population as population_repo
from shared.repositories import projections as repo

MEASURES: tuple[str, ...] = ("fte_in_post", "vacant_fte")
EXPECTED_COVERAGE = 0.8  # p10-p90


@dataclass(frozen=True)
class Comparison:
    base_year: int
    year: int
    level: str  # role, sector or all
    group: str
    measure: str
    projected: float
    p10: float
    p90: float
    actual: float
    error: float  # projected - actual, FTE
    absolute_percentage_error: float | None  # None when actual is 0
    inside_p10_p90: bool


@dataclass(frozen=True)
class Summary:
    level: str
    group: str
    measure: str
    comparisons: int
    mape: float | None  # mean absolute percentage error, percent
    mean_signed_error: float  # FTE; positive = projections too high
    mean_signed_percentage_error: float | None
    coverage_p10_p90: float  # share of comparisons inside p10-p90


@dataclass(frozen=True)
class TrackRecord:
    area_code: str
    roles: list[str] | None
    iterations: int
    seed: int
    return_years: list[int]
    comparisons: list[Comparison]
    summaries: list[Summary]
    coverage_by_measure: dict[str, float]
    expected_coverage: float = EXPECTED_COVERAGE


def _per_run(statistic: Statistic) -> FloatArray:
    """(N + 1, G, T): the principal, then every run."""
    runs = statistic.iterations
    principal = statistic.principal[None]
    return principal if runs is None else np.concatenate([principal, runs], axis=0)


def _statistics(per_run: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """principal, p10, p90 from per-run values (N+1, G)."""
    principal = per_run[0]
    if per_run.shape[0] > 1:
        p10, _, p90 = run_percentiles(per_run[1:], axis=0)
    else:
        p10 = p90 = principal
    return principal, p10, p90


def _kept_cells(
    inputs: ProjectionInputs,
    organisation_ids: list[uuid.UUID],
    both: set[uuid.UUID],
    roles: set[str] | None,
) -> npt.NDArray[np.bool_]:
    """Cells of organisations with returns in both years (and of the roles asked for)."""
    role_codes = inputs.role_codes
    org_in_both = np.array([org in both for org in organisation_ids], dtype=bool)
    keep = org_in_both[inputs.cell_org] if inputs.n_cells else np.zeros(0, dtype=bool)
    if roles is not None:
        keep &= np.array([role_codes[r] in roles for r in inputs.cell_role.tolist()], dtype=bool)
    return keep


def _actuals(
    later: repo.InputCells, both: set[uuid.UUID], projected_roles: list[str]
) -> dict[str, dict[str, float]]:
    """What the later returns of the organisations in `both` report, by role and measure."""
    actual: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(MEASURES, 0.0))
    compared = [organisation_id in both for organisation_id in later.organisation_ids]
    organisations = later.cell_organisation.tolist()
    cells = zip(organisations, later.role_codes, later.figures.tolist(), strict=True)
    for organisation, code, figures in cells:
        if compared[organisation] and code in projected_roles:
            for measure, value in zip(later.figure_names, figures, strict=True):
                actual[code][measure] += value
    return actual


def _aggregation(
    inputs: ProjectionInputs,
    role_codes: list[str],
    sector_names: list[str],
    sectors: dict[str, str],
) -> Aggregation:
    """Cells summed by role, by sector and over all roles."""
    cell_sector = np.array(
        [
            sector_names.index(sectors.get(role_codes[r], "unknown"))
            for r in inputs.cell_role.tolist()
        ],
        dtype=np.int64,
    )
    return Aggregation(
        levels=(
            AggregationLevel("role", inputs.cell_role, inputs.n_roles),
            AggregationLevel("sector", cell_sector, len(sector_names)),
            AggregationLevel("all", np.zeros(inputs.n_cells, dtype=np.int64), 1),
        )
    )


def _comparison(
    *,
    base_year: int,
    year: int,
    level: str,
    group: str,
    measure: str,
    runs: FloatArray,
    observed: float,
) -> Comparison:
    """One projected figure (principal and per-run values) against what was reported."""
    principal, p10, p90 = _statistics(runs[:, None])
    projected = float(principal[0])
    error = projected - observed
    return Comparison(
        base_year=base_year,
        year=year,
        level=level,
        group=group,
        measure=measure,
        projected=projected,
        p10=float(p10[0]),
        p90=float(p90[0]),
        actual=observed,
        error=error,
        absolute_percentage_error=(abs(error) / observed * 100.0 if observed > 0 else None),
        inside_p10_p90=float(p10[0]) - 1e-9 <= observed <= float(p90[0]) + 1e-9,
    )


def _groups(
    role_codes: list[str],
    projected_roles: list[str],
    sector_names: list[str],
    sectors: dict[str, str],
) -> dict[str, list[tuple[str, int, list[str]]]]:
    """Per level, each group's name, its position in the level and its projected roles."""
    return {
        "role": [(code, i, [code]) for i, code in enumerate(role_codes) if code in projected_roles],
        "sector": [
            (name, i, [c for c in projected_roles if sectors.get(c, "unknown") == name])
            for i, name in enumerate(sector_names)
        ],
        "all": [(ALL_ROLES, 0, projected_roles)],
    }


def compare_levels(
    per_level: dict[str, tuple[FloatArray, FloatArray]],
    groups_of_level: dict[str, list[tuple[str, int, list[str]]]],
    actual: dict[str, dict[str, float]],
    *,
    base_year: int,
    year: int,
) -> list[Comparison]:
    """Every group's projected FTE in post and vacant FTE in `year` against the returns."""
    t = year - base_year
    comparisons = []
    for level, groups in groups_of_level.items():
        runs_supply, runs_demand = per_level[level]
        for group, g, members in groups:
            if not members:
                continue
            per_measure = {
                "fte_in_post": runs_supply[:, g, t],
                "vacant_fte": runs_demand[:, g, t] - runs_supply[:, g, t],
            }
            for measure in MEASURES:
                comparisons.append(
                    _comparison(
                        base_year=base_year,
                        year=year,
                        level=level,
                        group=group,
                        measure=measure,
                        runs=per_measure[measure],
                        observed=sum(actual[code][measure] for code in members),
                    )
                )
    return comparisons


async def _compare_pair(
    session: AsyncSession,
    *,
    ics_code: str,
    base_run: ProjectionRun,
    year: int,
    roles: set[str] | None,
) -> list[Comparison]:
    """Project base_run.base_year -> year and compare with the returns of `year`."""
    loaded = await pipeline.load_inputs(session, base_run, ics_code)
    later = await repo.input_cells(
        session, ics_code=ics_code, on=date(year, 12, 31), figures=MEASURES
    )
    inputs = loaded.inputs
    role_codes = list(inputs.role_codes)
    sectors = await repo.role_sectors(session, codes=role_codes)
    # Organisations whose latest return at the end of `year` is one of that year.
    reported = {
        organisation_id
        for organisation_id, as_at in zip(later.organisation_ids, later.as_at, strict=True)
        if as_at.year == year
    }
    both = reported & set(loaded.organisation_ids)
    keep = _kept_cells(inputs, loaded.organisation_ids, both, roles)
    if not np.any(keep):
        return []
    inputs = inputs.select_cells(np.flatnonzero(keep))
    # Returns report FTE in post: project supply before sickness absence.
    inputs = dataclasses.replace(inputs, sickness_days_12m=np.zeros(inputs.n_cells))
    projected_roles = sorted({role_codes[r] for r in inputs.cell_role.tolist()})
    sector_names = sorted({sectors.get(code, "unknown") for code in role_codes})
    aggregation = _aggregation(inputs, role_codes, sector_names, sectors)

    def compute() -> dict[str, tuple[FloatArray, FloatArray]]:
        outputs = project(
            inputs,
            loaded.params,
            iterations=base_run.iterations,
            seed=base_run.seed,
            aggregation=aggregation,
            keep_iterations=True,
            explain=False,
        )
        return {
            level.name: (_per_run(level.supply_fte), _per_run(level.demand_fte))
            for level in outputs.levels
        }

    return compare_levels(
        await asyncio.to_thread(compute),
        _groups(role_codes, projected_roles, sector_names, sectors),
        _actuals(later, both, projected_roles),
        base_year=base_run.base_year,
        year=year,
    )


def summarise(comparisons: list[Comparison]) -> list[Summary]:
    grouped: dict[tuple[str, str, str], list[Comparison]] = defaultdict(list)
    for item in comparisons:
        grouped[(item.level, item.group, item.measure)].append(item)
    summaries = []
    for (level, group, measure), items in sorted(grouped.items()):
        percentages = [
            i.absolute_percentage_error for i in items if i.absolute_percentage_error is not None
        ]
        signed = [i.error / i.actual * 100.0 for i in items if i.actual > 0]
        summaries.append(
            Summary(
                level=level,
                group=group,
                measure=measure,
                comparisons=len(items),
                mape=float(np.mean(percentages)) if percentages else None,
                mean_signed_error=float(np.mean([i.error for i in items])),
                mean_signed_percentage_error=float(np.mean(signed)) if signed else None,
                coverage_p10_p90=float(np.mean([i.inside_p10_p90 for i in items])),
            )
        )
    return summaries


async def _check_request(
    session: AsyncSession, *, area_code: str, roles: list[str] | None
) -> tuple[Area, list[int]]:
    """The ICB and its return years within the population data (at least two)."""
    area = await repo.area_of(session, code=area_code)
    if area is None or area.type != AreaType.icb:
        raise errors.NotAnIcb("A track record is kept for an ICB (E54 code).", field="code")
    if roles is not None:
        known = await repo.role_drivers(session, codes=roles)
        unknown = sorted(set(roles) - set(known))
        if unknown:
            raise errors.UnknownTrackRecordRole(
                f"Unknown role codes: {', '.join(unknown)}.", field="roles"
            )
    years = await repo.return_years(session, ics_code=area.code)
    dataset = await population_repo.get_dataset_by_name(
        session, name=reference_files.BUNDLED_DATASET_NAME
    )
    if dataset is None:
        raise errors.PopulationNotLoaded("The population projections are not loaded.")
    usable = [y for y in years if dataset.first_year <= y <= dataset.last_year]
    if len(usable) < 2:
        raise errors.NoLaterReturns(
            "A track record needs returns in at least two years: an earlier base year and a "
            f"later year to compare with (this ICB has returns in {years or 'no year'}).",
        )
    return area, usable


def coverage_by_measure(comparisons: list[Comparison]) -> dict[str, float]:
    """The share of role-level comparisons inside p10-p90, per measure compared."""
    coverage = {}
    for measure in MEASURES:
        inside = [
            c.inside_p10_p90 for c in comparisons if c.measure == measure and c.level == "role"
        ]
        if inside:
            coverage[measure] = float(np.mean(inside))
    return coverage


async def track_record(
    session: AsyncSession,
    *,
    area_code: str,
    roles: list[str] | None,
    iterations: int,
    seed: int,
) -> TrackRecord:
    """Backtest the baseline for an ICB (and optionally a set of roles)."""
    area, usable = await _check_request(session, area_code=area_code, roles=roles)
    baseline = await projection_runs.baseline(session)
    comparisons: list[Comparison] = []
    for position, base_year in enumerate(usable[:-1]):
        for year in usable[position + 1 :]:
            run = ProjectionRun(
                id=uuid.uuid4(),
                scenario_id=baseline.id,
                scenario_name=baseline.name,
                scenario_version=baseline.version,
                scope=area.code,
                ics_code=area.code,
                base_year=base_year,
                horizon=year - base_year,
                iterations=iterations,
                seed=seed,
            )
            try:
                comparisons.extend(
                    await _compare_pair(
                        session,
                        ics_code=area.code,
                        base_run=run,
                        year=year,
                        roles=set(roles) if roles is not None else None,
                    )
                )
            except pipeline.RunFailed:
                continue
    return TrackRecord(
        area_code=area.code,
        roles=roles,
        iterations=iterations,
        seed=seed,
        return_years=usable,
        comparisons=comparisons,
        summaries=summarise(comparisons),
        coverage_by_measure=coverage_by_measure(comparisons),
    )
