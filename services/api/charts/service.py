"""Chart data: a run's results read through the projections service's visibility rules, and
the words every chart carries (scenario, run, units, source)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.charts import draw
from services.api.charts.errors import ResultsNotFound
from services.api.projections import service as projections
from services.api.projections.errors import RunNotFinished
from shared.models import ALL_ROLES, ProjectionRun, RunStatus
from shared.repositories import areas as areas_repo
from shared.repositories import projections as projections_repo
from shared.repositories import roles as roles_repo
from shared.schemas.keys import Principal

MEASURE_LABELS = {
    "demand_fte": "Demand",
    "supply_fte": "Supply",
    "gap_fte": "Gap (demand - supply)",
    "gap_after_sharing_fte": "Gap after sharing",
    "shortfall_fte": "Shortfall",
    "shortfall_after_sharing_fte": "Shortfall after sharing",
}
DEFAULT_MEASURES = ("demand_fte", "supply_fte", "gap_fte")
POPULATION_SOURCE = "ONS 2018-based subnational population projections (OGL v3.0)"


@dataclass(frozen=True)
class ResultPoint:
    """One result row: an area, role, measure and year in FTE."""

    area_code: str
    role_code: str
    measure: str
    year: int
    principal: float
    p10: float
    p50: float
    p90: float


async def read_results(
    session: AsyncSession, selection: projections_repo.ResultFilter
) -> list[ResultPoint]:
    """A run's result rows as the results endpoint reads them (rounded in the same way)."""
    column = {name: i for i, name in enumerate(projections_repo.RESULT_EXPORT_COLUMNS)}
    return [
        ResultPoint(
            area_code=row[column["area_code"]],
            role_code=row[column["role_code"]],
            measure=row[column["measure"]],
            year=int(row[column["year"]]),
            principal=float(row[column["principal"]]),
            p10=float(row[column["p10"]]),
            p50=float(row[column["p50"]]),
            p90=float(row[column["p90"]]),
        )
        for row in await projections_repo.list_results(session, selection)
    ]


@dataclass(frozen=True)
class FanData:
    run: ProjectionRun
    area_code: str
    area_name: str
    role_code: str
    role_name: str
    series: list[draw.Series]


async def finished_run(
    session: AsyncSession, *, principal: Principal, run_id: uuid.UUID
) -> ProjectionRun:
    """A run this key may read that has results (409 while it is still computing)."""
    run = await projections.visible_run(session, principal=principal, run_id=run_id)
    if run.status != RunStatus.succeeded:
        raise RunNotFinished(f"The run is {run.status}; charts are drawn once it has succeeded.")
    return run


async def area_name(session: AsyncSession, code: str) -> str:
    area = await areas_repo.get(session, code=code)
    return area.name if area is not None else code


async def role_name(session: AsyncSession, code: str) -> str:
    if code == ALL_ROLES:
        return "all roles"
    role = await roles_repo.get(session, code=code)
    return role.name if role is not None else code


def series_from_rows(rows: Sequence[ResultPoint], measures: Sequence[str]) -> list[draw.Series]:
    by_measure: dict[str, list[ResultPoint]] = defaultdict(list)
    for row in rows:
        by_measure[row.measure].append(row)
    series = []
    for measure in measures:
        points = sorted(by_measure.get(measure, []), key=lambda r: r.year)
        if not points:
            continue
        series.append(
            draw.Series(
                key=measure,
                label=MEASURE_LABELS[measure],
                years=[p.year for p in points],
                principal=[p.principal for p in points],
                p10=[p.p10 for p in points],
                p50=[p.p50 for p in points],
                p90=[p.p90 for p in points],
            )
        )
    return series


async def default_area(session: AsyncSession, *, principal: Principal, run: ProjectionRun) -> str:
    allowed = await projections.allowed_areas(session, principal=principal, run=run)
    return run.scope if allowed is None else allowed[0]


async def fan_data(
    session: AsyncSession,
    *,
    principal: Principal,
    run_id: uuid.UUID,
    area: str | None,
    role: str | None,
    measures: Sequence[str],
    year_from: int | None = None,
    year_to: int | None = None,
) -> FanData:
    """A run's series for one area and role, only where this key may read."""
    run = await finished_run(session, principal=principal, run_id=run_id)
    allowed = await projections.allowed_areas(session, principal=principal, run=run)
    area_code = (area or "").strip().upper() or await default_area(
        session, principal=principal, run=run
    )
    areas = projections.restrict(area_code, allowed)
    role_code = role or ALL_ROLES
    rows: list[ResultPoint] = []
    if areas:
        rows = await read_results(
            session,
            projections_repo.ResultFilter(
                run_id=run.id,
                area_codes=areas,
                role_codes=[role_code],
                year_from=year_from,
                year_to=year_to,
            ),
        )
    series = series_from_rows(rows, measures)
    if not series:
        raise ResultsNotFound("The run has no results for this area, role and years.")
    return FanData(
        run=run,
        area_code=area_code,
        area_name=await area_name(session, area_code),
        role_code=role_code,
        role_name=await role_name(session, role_code),
        series=series,
    )


def run_text(run: ProjectionRun) -> str:
    return (
        f"Scenario '{run.scenario_name}' v{run.scenario_version}; base year {run.base_year}; "
        f"{run.iterations} uncertain runs; run {str(run.id)[:8]}"
        + ("; stale: inputs have changed since" if run.stale else "")
    )


def source_text(run: ProjectionRun) -> str:
    return f"OneWorkforce projection {run.id}; workforce returns; {POPULATION_SOURCE}"


def fan_chart(data: FanData, fmt: draw.ImageFormat) -> bytes:
    panels = [draw.Panel(title=f"{s.label}, FTE", series=[s]) for s in data.series]
    text = draw.ChartText(
        title=f"Projected workforce: {data.area_name} ({data.area_code}), {data.role_name}",
        subtitle=run_text(data.run),
        source=source_text(data.run),
        notes=("Band: p10-p90 of the uncertain runs; dashed: p50; solid: principal.",),
    )
    return draw.fan_chart(panels, text, fmt)
