"""The projection page: fan charts, the explanation as a waterfall, the gap by local
authority and a scenario-against-baseline comparison, all read through the projections
services (their visibility rules, their explanation and their paired comparison)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.charts import draw
from services.api.charts import service as charts
from services.api.explorer.errors import AreaNotInRun
from services.api.explorer.exports import Table
from services.api.explorer.overview import sector_label
from services.api.http import PageParams
from services.api.projections import comparison as comparison_service
from services.api.projections import service as projections
from shared.errors import DomainError
from shared.models import ALL_ROLES, Area, AreaType, ProjectionRun, Role, RunStatus
from shared.repositories import areas as areas_repo
from shared.repositories import projections as projections_repo
from shared.repositories import roles as roles_repo
from shared.schemas.keys import Principal
from shared.schemas.projections import (
    ComparisonRow,
    ProjectionComparison,
    ProjectionExplainRead,
)

FAN_MEASURES = ("demand_fte", "supply_fte", "gap_fte")
STEP_LABELS = {
    "demography": "Demography",
    "productivity": "Productivity",
    "substitution": "Substitution",
    "leavers": "Leavers",
    "retirement": "Retirement",
    "joiners": "Joiners",
    "cross_sector_flows": "Cross-sector flows",
    "sharing": "Sharing",
}


async def visible_runs(
    session: AsyncSession, *, principal: Principal, limit: int = 50
) -> Sequence[ProjectionRun]:
    runs, _ = await projections_repo.list_runs(
        session,
        principal=principal,
        scope=None,
        status=None,
        scenario=None,
        page=PageParams(page=1, limit=limit),
    )
    return runs


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True)
class Selection:
    """What the page's form asked for, checked against the run."""

    area: str
    area_name: str
    role: str | None
    sector: str | None
    year_from: int
    year_to: int
    lad_year: int
    compare: uuid.UUID | None


@dataclass(frozen=True)
class ProjectionView:
    run: ProjectionRun
    selection: Selection
    areas: list[Choice]
    roles: list[Choice]
    sectors: list[Choice]
    years: list[int]
    fan: list[draw.Series]
    gap_after_sharing: dict[int, float]
    subject: str
    explanation: ProjectionExplainRead | None
    explanation_problem: str | None
    lad_gaps: list[tuple[str, str, float, float | None, float | None]]
    comparables: list[ProjectionRun]
    comparison: ProjectionComparison | None
    comparison_problem: str | None


async def _area_choices(
    session: AsyncSession, *, principal: Principal, run: ProjectionRun
) -> list[Choice]:
    allowed = await projections.allowed_areas(session, principal=principal, run=run)
    codes = allowed if allowed is not None else [run.scope]
    choices = []
    for code in codes:
        area = await areas_repo.get(session, code=code)
        if area is None:
            continue
        choices.append(Choice(code, area.name))
        if allowed is None:
            children = await areas_repo.children(session, code=code)
            choices.extend(Choice(c.code, f"  {c.name}") for c in children)
    return choices


def _sum_principal(
    rows: Sequence[charts.ResultPoint], measures: Sequence[str]
) -> list[draw.Series]:
    totals: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for row in rows:
        totals[row.measure][row.year] += row.principal
    return [
        draw.Series(
            key=m,
            label=charts.MEASURE_LABELS[m],
            years=sorted(totals[m]),
            principal=[totals[m][y] for y in sorted(totals[m])],
        )
        for m in measures
        if totals.get(m)
    ]


async def load(
    session: AsyncSession,
    *,
    principal: Principal,
    run_id: uuid.UUID,
    area: str | None,
    role: str | None,
    sector: str | None,
    year_from: int | None,
    year_to: int | None,
    lad_year: int | None,
    compare: uuid.UUID | None,
) -> ProjectionView:
    """Everything the projection page shows for a run this key may read (404 otherwise)."""
    run = await charts.finished_run(session, principal=principal, run_id=run_id)
    areas = await _area_choices(session, principal=principal, run=run)
    area_code = (area or "").upper() or areas[0].value
    if area_code not in {a.value for a in areas}:
        raise AreaNotInRun("That area is not in this run.")
    first, last = run.base_year, run.base_year + run.horizon
    start, end = _year_span(first, last, year_from, year_to)
    role = role or None
    # A role and a sector at once: the role wins.
    sector = (sector or None) if not role else None
    rows = await charts.read_results(
        session, projections_repo.ResultFilter(run_id=run.id, area_codes=[area_code])
    )
    catalogue = {r.code: r for r in await roles_repo.all_roles(session)}
    role_choices, sector_choices, sector_of = _role_and_sector_choices(rows, catalogue)
    area_name = next(a.label.strip() for a in areas if a.value == area_code)
    chosen, fan, subject = _subject(rows, catalogue, sector_of, role=role, sector=sector)
    explanation, explanation_problem = None, None
    try:
        explanation = await projections.explain(
            session,
            principal=principal,
            run_id=run.id,
            area=area_code,
            role=role,
            sector=sector,
            year_from=start,
            year_to=end,
        )
    except DomainError as exc:
        explanation_problem = exc.message
    chosen_lad_year = min(max(lad_year or last, first), last)
    lad_roles = [code for code, of in sector_of.items() if of == sector] if sector else [role]
    lad_gaps = await _lad_gaps(
        session,
        principal=principal,
        run=run,
        year=chosen_lad_year,
        role_codes=[r or ALL_ROLES for r in lad_roles],
        summed=sector is not None,
    )
    comparables = await _comparables(session, principal=principal, run=run)
    other = compare or (comparables[0].id if comparables else None)
    comparison, comparison_problem = await _comparison(
        session,
        principal=principal,
        run=run,
        other=other,
        area_code=area_code,
        group=(role, sector),
    )
    return ProjectionView(
        run=run,
        selection=Selection(
            area=area_code,
            area_name=area_name,
            role=role,
            sector=sector,
            year_from=start,
            year_to=end,
            lad_year=chosen_lad_year,
            compare=other,
        ),
        areas=areas,
        roles=role_choices,
        sectors=sector_choices,
        years=list(range(first, last + 1)),
        fan=fan,
        gap_after_sharing=_gap_after_sharing(chosen),
        subject=subject,
        explanation=explanation,
        explanation_problem=explanation_problem,
        lad_gaps=lad_gaps,
        comparables=comparables,
        comparison=comparison,
        comparison_problem=comparison_problem,
    )


def _year_span(
    first: int, last: int, year_from: int | None, year_to: int | None
) -> tuple[int, int]:
    """The years to explain: within the run, the start before the end."""
    start = min(max(year_from or first, first), last - 1)
    return start, max(min(year_to or last, last), start + 1)


def _role_and_sector_choices(
    rows: Sequence[charts.ResultPoint], catalogue: dict[str, Role]
) -> tuple[list[Choice], list[Choice], dict[str, str]]:
    """The roles of the results (named from the catalogue), their sectors, and each role's
    sector."""
    role_codes = sorted({r.role_code for r in rows if r.role_code != ALL_ROLES})
    sector_of = {code: str(catalogue[code].sector) for code in role_codes if code in catalogue}
    roles = [Choice(c, catalogue[c].name if c in catalogue else c) for c in role_codes]
    sectors = [Choice(s, sector_label(s)) for s in sorted(set(sector_of.values()))]
    return roles, sectors, sector_of


def _subject(
    rows: Sequence[charts.ResultPoint],
    catalogue: dict[str, Role],
    sector_of: dict[str, str],
    *,
    role: str | None,
    sector: str | None,
) -> tuple[list[charts.ResultPoint], list[draw.Series], str]:
    """The rows of the role, the sector (its roles summed) or all roles, their fan series and
    how the page names them."""
    if sector:
        chosen = [r for r in rows if sector_of.get(r.role_code) == sector]
        return chosen, _sum_principal(chosen, FAN_MEASURES), f"{sector_label(sector)} roles"
    code = role or ALL_ROLES
    chosen = [r for r in rows if r.role_code == code]
    subject = catalogue[code].name if code in catalogue else "all roles"
    return chosen, charts.series_from_rows(chosen, FAN_MEASURES), subject


def _gap_after_sharing(chosen: Sequence[charts.ResultPoint]) -> dict[int, float]:
    gap: dict[int, float] = defaultdict(float)
    for row in chosen:
        if row.measure == "gap_after_sharing_fte":
            gap[row.year] += row.principal
    return dict(gap)


async def _comparison(
    session: AsyncSession,
    *,
    principal: Principal,
    run: ProjectionRun,
    other: uuid.UUID | None,
    area_code: str,
    group: tuple[str | None, str | None],
) -> tuple[ProjectionComparison | None, str | None]:
    """The paired comparison of the run with another (the baseline first), or why there is
    none."""
    if other is None:
        return None, None
    role, sector = group
    base_id, other_id = (other, run.id) if run.scenario_name != "baseline" else (run.id, other)
    try:
        comparison = await comparison_service.compare_runs(
            session,
            principal=principal,
            base_id=base_id,
            other_id=other_id,
            area=area_code,
            by="sector" if sector else "role",
            group=sector or role or ALL_ROLES,
            measure="gap_fte",
            year_from=None,
            year_to=None,
        )
    except DomainError as exc:
        return None, exc.message
    return comparison, None


async def _lad_gaps(
    session: AsyncSession,
    *,
    principal: Principal,
    run: ProjectionRun,
    year: int,
    role_codes: list[str],
    summed: bool,
) -> list[tuple[str, str, float, float | None, float | None]]:
    """(code, name, gap principal, p10, p90) per LAD the key may read, largest gap first,
    for one role (or all roles), or the principal gap of several roles summed (a sector:
    percentiles do not add up, so it has none)."""
    allowed = await projections.allowed_areas(session, principal=principal, run=run)
    scope_icbs = [run.scope] if allowed is None else [a for a in allowed[:1]]
    lads: list[Area] = []
    for icb in scope_icbs:
        area = await areas_repo.get(session, code=icb)
        if area is not None and area.type == AreaType.country:
            for child in await areas_repo.children(session, code=icb):
                lads.extend(await areas_repo.children(session, code=child.code))
        else:
            lads.extend(await areas_repo.children(session, code=icb))
    names = {lad.code: lad.name for lad in lads if lad.type == AreaType.lad}
    if not names:
        return []
    rows = await charts.read_results(
        session,
        projections_repo.ResultFilter(
            run_id=run.id,
            area_codes=list(names),
            role_codes=role_codes,
            year_from=year,
            year_to=year,
            measures=["gap_fte"],
        ),
    )
    ranked: list[tuple[str, str, float, float | None, float | None]]
    if not summed:
        ranked = [(r.area_code, names[r.area_code], r.principal, r.p10, r.p90) for r in rows]
    else:
        totals: dict[str, float] = defaultdict(float)
        for r in rows:
            totals[r.area_code] += r.principal
        ranked = [(code, names[code], gap, None, None) for code, gap in totals.items()]
    return sorted(ranked, key=lambda item: -item[2])


async def _comparables(
    session: AsyncSession, *, principal: Principal, run: ProjectionRun
) -> list[ProjectionRun]:
    """Succeeded runs of the same scope, years, seed and draws under another scenario."""
    runs = await visible_runs(session, principal=principal, limit=200)
    return [
        other
        for other in runs
        if other.id != run.id
        and other.status == RunStatus.succeeded
        and other.scope == run.scope
        and other.base_year == run.base_year
        and other.horizon == run.horizon
        and other.seed == run.seed
        and other.iterations == run.iterations
        and (other.scenario_name == "baseline") != (run.scenario_name == "baseline")
    ]


# ---------------------------------------------------------------------------------------------
# Tables and charts


def _title(view: ProjectionView) -> str:
    return f"{view.selection.area_name} ({view.selection.area}), {view.subject}"


def fan_table(view: ProjectionView) -> Table:
    rows = []
    for series in view.fan:
        for index, year in enumerate(series.years):
            rows.append(
                [
                    series.key,
                    year,
                    round(series.principal[index], 1),
                    *(
                        round(values[index], 1) if values is not None else None
                        for values in (series.p10, series.p50, series.p90)
                    ),
                ]
            )
    return Table(
        name="projection",
        title=f"Projected demand, supply and gap (FTE): {_title(view)}",
        header=["measure", "year", "principal", "p10", "p50", "p90"],
        rows=rows,
        notes=(charts.run_text(view.run),)
        + (
            (
                "A sector's p10-p90 is not the sum of its roles' ranges: only its principal "
                "projection is given.",
            )
            if view.selection.sector
            else ()
        ),
    )


def fan_chart(view: ProjectionView, fmt: draw.ImageFormat, *, narrow: bool = False) -> bytes:
    panels = [draw.Panel(title=f"{s.label}, FTE", series=[s]) for s in view.fan]
    text = draw.ChartText(
        title=f"Projected workforce: {_title(view)}",
        subtitle=charts.run_text(view.run),
        source=charts.source_text(view.run),
        notes=(
            ("Sector: principal projection only.",)
            if view.selection.sector
            else ("Band: p10-p90 of the uncertain runs; dashed: p50; solid: principal.",)
        ),
    )
    return draw.fan_chart(panels, text, fmt, narrow=narrow)


def _steps(explanation: ProjectionExplainRead) -> list[draw.Step]:
    return [
        draw.Step(STEP_LABELS.get(name, name.replace("_", " ").capitalize()), value)
        for name, value in explanation.contributions_fte.items()
    ]


def explain_table(view: ProjectionView) -> Table:
    e = view.explanation
    rows: list[list[str | int | float | None]] = []
    if e is not None:
        rows = [[step.label, round(step.value, 1)] for step in _steps(e)]
        rows.append(["Total change", round(e.total_change_fte, 1)])
    return Table(
        name="explanation",
        title=f"What changed the gap after sharing from {view.selection.year_from} to "
        f"{view.selection.year_to} (FTE; positive widens the gap): {_title(view)}",
        header=["component", "fte"],
        rows=rows,
    )


def waterfall_chart(view: ProjectionView, fmt: draw.ImageFormat, *, narrow: bool = False) -> bytes:
    e = view.explanation
    assert e is not None
    # From the gap after sharing in the first year, each contribution, to the last year's.
    first = view.gap_after_sharing.get(view.selection.year_from, 0.0)
    text = draw.ChartText(
        title=f"What changed the gap after sharing, {e.year_from} to {e.year_to}: {_title(view)}",
        subtitle=charts.run_text(view.run),
        source=charts.source_text(view.run),
    )
    return draw.waterfall_chart(
        draw.Step(f"Gap {e.year_from}", first),
        _steps(e),
        draw.Step(f"Gap {e.year_to}", first + e.total_change_fte),
        text,
        fmt,
        narrow=narrow,
    )


def lad_table(view: ProjectionView) -> Table:
    return Table(
        name="gap-by-lad",
        title=f"Gap (demand - supply, FTE) by local authority in {view.selection.lad_year}, "
        f"{view.subject}, largest first",
        header=["rank", "area_code", "local_authority", "gap_principal", "gap_p10", "gap_p90"],
        rows=[
            [rank, code, name, round(gap, 1), _rounded(p10), _rounded(p90)]
            for rank, (code, name, gap, p10, p90) in enumerate(view.lad_gaps, start=1)
        ],
        notes=(
            (
                "A sector's p10-p90 is not the sum of its roles' ranges: only its principal "
                "projection is given.",
            )
            if view.selection.sector
            else ()
        ),
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def lad_chart(view: ProjectionView, fmt: draw.ImageFormat, *, narrow: bool = False) -> bytes:
    text = draw.ChartText(
        title=f"Gap by local authority in {view.selection.lad_year}, {view.subject}",
        subtitle=charts.run_text(view.run),
        source=charts.source_text(view.run),
    )
    return draw.bar_chart(
        [name for _, name, *_ in view.lad_gaps],
        [gap for _, _, gap, _, _ in view.lad_gaps],
        text,
        fmt,
        x_label="Gap, FTE (positive = shortfall)",
        narrow=narrow,
    )


def comparison_table(view: ProjectionView) -> Table:
    c = view.comparison
    rows: list[list[str | int | float | None]] = []
    if c is not None:
        rows = [
            [
                r.year, round(r.base_principal, 1), round(r.other_principal, 1),
                round(r.difference_principal, 1), round(r.difference_p10, 1),
                round(r.difference_p90, 1), _share_better(r),
            ]
            for r in sorted(c.rows, key=lambda r: r.year)
        ]  # fmt: skip
    label = f"'{c.other.scenario}' against '{c.base.scenario}'" if c is not None else "scenarios"
    return Table(
        name="comparison",
        title=f"Gap (FTE) under {label}: {_title(view)}",
        header=[
            "year",
            "base_gap",
            "scenario_gap",
            "difference",
            "difference_p10",
            "difference_p90",
            "draws_with_smaller_gap_pct",
        ],
        rows=rows,
        notes=(
            "Differences are paired draw by draw (same seed: common random numbers). Draws "
            "with a smaller gap: the share of paired draws in which the scenario's gap is "
            "smaller than the baseline's; none where every draw is the same (the base year).",
        ),
    )


def _share_better(row: ComparisonRow) -> float | None:
    """The share of draws with a smaller gap, in percent; none where no draw differs (a
    share of 0 there would read as 'worse in every draw')."""
    same = abs(row.difference_p10) < 1e-9 and abs(row.difference_p90) < 1e-9
    if row.share_of_draws_better is None or same:
        return None
    return round(row.share_of_draws_better * 100, 1)


def comparison_chart(view: ProjectionView, fmt: draw.ImageFormat, *, narrow: bool = False) -> bytes:
    c = view.comparison
    assert c is not None
    rows = sorted(c.rows, key=lambda r: r.year)
    years = [r.year for r in rows]
    panels = [
        draw.Panel(
            title="Gap, FTE",
            series=[
                draw.Series("base", f"{c.base.scenario} (base)", years,
                            [r.base_principal for r in rows], colour=draw.SCENARIO_COLOURS[0]),
                draw.Series("other", c.other.scenario, years,
                            [r.other_principal for r in rows], colour=draw.SCENARIO_COLOURS[1]),
            ],
        ),
        draw.Panel(
            title=f"Difference ({c.other.scenario} - {c.base.scenario}), FTE",
            series=[
                draw.Series("difference", "Difference", years,
                            [r.difference_principal for r in rows],
                            p10=[r.difference_p10 for r in rows],
                            p90=[r.difference_p90 for r in rows],
                            colour="#8E3A80"),
            ],
        ),
    ]  # fmt: skip
    text = draw.ChartText(
        title=f"Scenario '{c.other.scenario}' against '{c.base.scenario}': {_title(view)}",
        subtitle=f"Runs {str(c.base.id)[:8]} and {str(c.other.id)[:8]}; {c.draws} paired draws",
        source=charts.source_text(view.run),
        notes=("Band: p10-p90 of the paired differences.",),
    )
    return draw.fan_chart(panels, text, fmt, narrow=narrow)
