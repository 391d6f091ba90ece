"""Paired comparison of two runs (a scenario against the baseline) from their stored draws."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.areas.errors import AreaNotFound
from services.api.projections import errors, service
from services.projector.model import compare as compare_model
from shared.errors import FieldErrors
from shared.models import ALL_ROLES, ProjectionDraws, ProjectionRun, RunStatus
from shared.repositories import projections as repo
from shared.schemas.keys import Principal
from shared.schemas.projections import ComparisonRow, ProjectionComparison, RunSummary

COMPARISON_HEADER = (
    "area_code",
    "group",
    "measure",
    "year",
    "base_principal",
    "other_principal",
    "difference_principal",
    "difference_p10",
    "difference_p50",
    "difference_p90",
    "share_of_draws_better",
)


def check_comparable(base: ProjectionRun, other: ProjectionRun) -> None:
    """Same scope and years, and the same seed and draw count so draws pair up one to one."""
    problems = FieldErrors()
    for field in ("scope", "base_year", "horizon"):
        if getattr(base, field) != getattr(other, field):
            problems.add(
                errors.RunsNotComparable,
                field,
                f"{field} differs: {getattr(base, field)} and {getattr(other, field)}",
            )
    problems.raise_if_any("Only runs of the same scope, base year and horizon can be compared.")
    for field in ("seed", "iterations"):
        if getattr(base, field) != getattr(other, field):
            raise errors.RunsNotPaired(
                f"The runs' {field} differ ({getattr(base, field)} and "
                f"{getattr(other, field)}), so their draws do not pair up; request the "
                "scenario run with the baseline's seed and iterations.",
                field=field,
            )


async def _finished(
    session: AsyncSession, principal: Principal, run_id: uuid.UUID
) -> ProjectionRun:
    run = await service.visible_run(session, principal=principal, run_id=run_id)
    if run.status != RunStatus.succeeded:
        raise errors.RunNotFinished(f"Run {run_id} has not succeeded (it is {run.status}).")
    return run


def _load(blob: bytes) -> Any:
    return np.load(io.BytesIO(blob), allow_pickle=False)


async def compare_runs(
    session: AsyncSession,
    *,
    principal: Principal,
    base_id: uuid.UUID,
    other_id: uuid.UUID,
    area: str | None,
    by: str,
    group: str | None,
    measure: str | None,
    year_from: int | None,
    year_to: int | None,
) -> ProjectionComparison:
    """Paired differences other - base by group and year, for one area of both runs."""
    base = await _finished(session, principal, base_id)
    other = await _finished(session, principal, other_id)
    check_comparable(base, other)
    allowed = await service.allowed_areas(session, principal=principal, run=base)
    area_code = area or (base.scope if allowed is None else allowed[0])
    if service.restrict(area_code, allowed) == []:
        raise AreaNotFound("No such area in these runs.")
    base_draws, other_draws = await _area_draws(session, base, other, area_code)
    roles = sorted({*base_draws.role_codes, *other_draws.role_codes})
    values = [
        compare_model.align_roles(
            compare_model.measures_from_draws(_load(draws.values)), list(draws.role_codes), roles
        )
        for draws in (base_draws, other_draws)
    ]
    sectors = (
        await repo.role_sectors(session, codes=roles)
        if by == "sector" and roles != [ALL_ROLES]
        else None
    )
    names, membership = choose_group(*role_groups(roles, sectors), group=group, by=by)
    base_values, other_values = (compare_model.group_roles(v, membership) for v in values)
    years = list(range(base.base_year, base.base_year + base.horizon + 1))
    first = 0 if year_from is None else max(0, year_from - base.base_year)
    last = len(years) if year_to is None else min(len(years), year_to - base.base_year + 1)
    base_values = base_values[..., first:last]
    other_values = other_values[..., first:last]
    result = compare_model.compare(base_values, other_values, tuple(names))
    rows = comparison_rows(
        result, area_code=area_code, names=names, years=years[first:last], measure=measure
    )
    return ProjectionComparison(
        base=RunSummary.model_validate(base),
        other=RunSummary.model_validate(other),
        scope=base.scope,
        base_year=base.base_year,
        horizon=base.horizon,
        seed=base.seed,
        draws=base.iterations,
        area_code=area_code,
        by=by,
        rows=rows,
    )


async def _area_draws(
    session: AsyncSession, base: ProjectionRun, other: ProjectionRun, area_code: str
) -> tuple[ProjectionDraws, ProjectionDraws]:
    """Both runs' kept draws for the area: 409 for runs computed before draws were kept,
    404 for an area the runs have no results for."""
    base_draws = await repo.draws_of(session, run_id=base.id, area_code=area_code)
    other_draws = await repo.draws_of(session, run_id=other.id, area_code=area_code)
    if base_draws is not None and other_draws is not None:
        return base_draws, other_draws
    if (
        area_code == base.scope
        or (await repo.draws_of(session, run_id=base.id, area_code=base.scope) is None)
        or (await repo.draws_of(session, run_id=other.id, area_code=other.scope) is None)
    ):
        raise errors.DrawsNotAvailable(
            "A run was computed before draws were kept for comparison; request it again."
        )
    raise AreaNotFound(
        "The runs have no results for this area (LADs of the ICB with returns, the ICB, "
        "or England for an England run)."
    )


def role_groups(
    roles: list[str], sectors: dict[str, str] | None
) -> tuple[list[str], list[list[int]]]:
    """The groups compared and the role positions in each: one per sector (when `sectors` is
    given) or one per role, then all roles."""
    if sectors is not None:
        names = sorted({sectors.get(code, "unknown") for code in roles})
        membership = [
            [i for i, c in enumerate(roles) if sectors.get(c, "unknown") == s] for s in names
        ]
    elif roles == [ALL_ROLES]:
        names, membership = [], []
    else:
        names = list(roles)
        membership = [[i] for i in range(len(roles))]
    names.append(ALL_ROLES)
    membership.append(list(range(len(roles))))
    return names, membership


def choose_group(
    names: list[str], membership: list[list[int]], *, group: str | None, by: str
) -> tuple[list[str], list[list[int]]]:
    """Only the named group, when one is asked for (422 for a group not in the runs)."""
    if group is None:
        return names, membership
    if group not in names:
        raise errors.UnknownGroup(
            f"Unknown {by} {group!r} in these runs; one of {', '.join(names)}.",
            field="group",
        )
    keep = names.index(group)
    return [names[keep]], [membership[keep]]


def comparison_rows(
    result: compare_model.Comparison,
    *,
    area_code: str,
    names: list[str],
    years: list[int],
    measure: str | None,
) -> list[ComparisonRow]:
    """One row per measure (or the one asked for), group and year."""
    rows = []
    for m, name in enumerate(compare_model.COMPARED_MEASURES):
        if measure is not None and name != measure:
            continue
        for g, group_name in enumerate(names):
            for t, year in enumerate(years):
                rows.append(
                    ComparisonRow(
                        area_code=area_code,
                        group=group_name,
                        measure=name,
                        year=year,
                        base_principal=float(result.base_principal[m, g, t]),
                        other_principal=float(result.other_principal[m, g, t]),
                        difference_principal=float(result.difference_principal[m, g, t]),
                        difference_p10=float(result.difference_p10[m, g, t]),
                        difference_p50=float(result.difference_p50[m, g, t]),
                        difference_p90=float(result.difference_p90[m, g, t]),
                        share_of_draws_better=None
                        if result.share_better is None
                        else float(result.share_better[m, g, t]),
                    )
                )
    return rows


def table_rows(comparison: ProjectionComparison) -> Iterator[tuple[Any, ...]]:
    for row in comparison.rows:
        yield tuple(getattr(row, column) for column in COMPARISON_HEADER)


def xlsx_bytes(comparison: ProjectionComparison) -> bytes:
    """The comparison as a workbook: a sheet of rows and one describing the two runs."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("comparison")
    sheet.append(list(COMPARISON_HEADER))
    for row in table_rows(comparison):
        sheet.append(list(row))
    about = workbook.create_sheet("runs")
    about.append(["", "run", "scenario", "scenario_version", "stale"])
    for label, run in (("base", comparison.base), ("other", comparison.other)):
        about.append([label, str(run.id), run.scenario, run.scenario_version, run.stale])
    about.append([])
    about.append(["scope", comparison.scope])
    about.append(["base_year", comparison.base_year])
    about.append(["horizon", comparison.horizon])
    about.append(["seed", comparison.seed])
    about.append(["paired draws", comparison.draws])
    about.append(["units", "FTE; difference = other - base"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
