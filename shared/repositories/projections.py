"""SQL for projection runs, their parts, results and explanations, and the inputs they read."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, Table, and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import (
    Area,
    AreaType,
    Organisation,
    Population,
    ProjectionDraws,
    ProjectionExplain,
    ProjectionResult,
    ProjectionRun,
    ProjectionRunPart,
    ReturnLine,
    ReturnStatus,
    Role,
    RunStatus,
    WorkforceReturn,
)
from shared.repositories import bulk
from shared.repositories import returns as returns_repo

RESULT_COLUMNS: tuple[str, ...] = (
    "run_id",
    "area_code",
    "role_code",
    "measure",
    "year",
    "principal",
    "p10",
    "p50",
    "p90",
)


def _is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# ---------------------------------------------------------------------------------------------
# Runs


async def add_run(session: AsyncSession, run: ProjectionRun) -> ProjectionRun:
    session.add(run)
    await session.flush()
    return run


async def get_run(
    session: AsyncSession, *, run_id: uuid.UUID, lock: bool = False
) -> ProjectionRun | None:
    if lock and not _is_postgres(session):
        # SQLite: take the write lock first so the read-then-write below is serialised.
        await session.execute(
            update(ProjectionRun).where(ProjectionRun.id == run_id).values(id=ProjectionRun.id)
        )
    query = select(ProjectionRun).where(ProjectionRun.id == run_id)
    if lock and _is_postgres(session):
        query = query.with_for_update()
    return (
        await session.execute(query.execution_options(populate_existing=True))
    ).scalar_one_or_none()


async def update_run(session: AsyncSession, *, run_id: uuid.UUID, **values: Any) -> None:
    await session.execute(update(ProjectionRun).where(ProjectionRun.id == run_id).values(**values))


def _run_filter(
    *,
    ics_code: str | None,
    scope: str | None,
    status: str | None,
    scenario: str | None,
) -> list[Any]:
    conditions: list[Any] = []
    if ics_code is not None:
        conditions.append(ProjectionRun.ics_code == ics_code)
    if scope is not None:
        conditions.append(ProjectionRun.scope == scope)
    if status is not None:
        conditions.append(ProjectionRun.status == status)
    if scenario is not None:
        conditions.append(ProjectionRun.scenario_name == scenario)
    return conditions


async def list_runs(
    session: AsyncSession,
    *,
    ics_code: str | None,
    visible_england: bool,
    scope: str | None,
    status: str | None,
    scenario: str | None,
    offset: int,
    limit: int,
) -> tuple[Sequence[ProjectionRun], int]:
    conditions = _run_filter(ics_code=None, scope=scope, status=status, scenario=scenario)
    if ics_code is not None:
        visible = ProjectionRun.ics_code == ics_code
        if visible_england:
            visible = or_(visible, ProjectionRun.ics_code.is_(None))
        conditions.append(visible)
    total = int(
        (
            await session.execute(
                select(func.count()).select_from(ProjectionRun).where(*conditions)
            )
        ).scalar_one()
    )
    query = (
        select(ProjectionRun)
        .where(*conditions)
        .order_by(ProjectionRun.queued_at.desc(), ProjectionRun.id)
        .offset(offset)
        .limit(limit)
    )
    return (await session.execute(query)).scalars().all(), total


async def latest_succeeded(
    session: AsyncSession, *, scopes: Sequence[str], scenario: str
) -> tuple[uuid.UUID, datetime | None, bool] | None:
    """The newest succeeded run of these scopes under a scenario: (id, finished_at, stale)."""
    query = (
        select(ProjectionRun.id, ProjectionRun.finished_at, ProjectionRun.stale)
        .where(
            ProjectionRun.scope.in_(list(scopes)),
            ProjectionRun.scenario_name == scenario,
            ProjectionRun.status == RunStatus.succeeded,
        )
        .order_by(ProjectionRun.finished_at.desc(), ProjectionRun.id)
        .limit(1)
    )
    row = (await session.execute(query)).first()
    return None if row is None else (row[0], row[1], bool(row[2]))


async def mark_stale(session: AsyncSession, *, ics_codes: Sequence[str]) -> int:
    """Mark these ICSs' finished and running runs stale; how many runs that touched.

    A running run may already have read its inputs, so it is marked too (it may be a false
    alarm, never a missed one); a queued run will read the new returns and is left alone.
    """
    condition = and_(
        ProjectionRun.ics_code.in_(list(ics_codes)),
        ProjectionRun.status.in_([RunStatus.succeeded, RunStatus.running]),
        ProjectionRun.stale.is_(False),
    )
    result = await session.execute(update(ProjectionRun).where(condition).values(stale=True))
    return int(getattr(result, "rowcount", 0) or 0)


async def has_runs(session: AsyncSession, *, ics_code: str, scenario: str) -> bool:
    query = select(ProjectionRun.id).where(
        ProjectionRun.ics_code == ics_code, ProjectionRun.scenario_name == scenario
    )
    return (await session.execute(query.limit(1))).first() is not None


async def find_queued(
    session: AsyncSession, *, ics_code: str, scenario: str, requested_after: datetime
) -> ProjectionRun | None:
    query = select(ProjectionRun).where(
        ProjectionRun.scope == ics_code,
        ProjectionRun.scenario_name == scenario,
        ProjectionRun.status == RunStatus.queued,
        ProjectionRun.attempts == 0,
        ProjectionRun.queued_at >= requested_after,
    )
    return (await session.execute(query.limit(1))).scalars().first()


async def stuck_runs(
    session: AsyncSession, *, heartbeat_before: datetime
) -> Sequence[ProjectionRun]:
    """ICB runs whose worker stopped beating (England runs are watched through their parts)."""
    query = select(ProjectionRun).where(
        ProjectionRun.status == RunStatus.running,
        ProjectionRun.scope != "E92000001",
        or_(ProjectionRun.heartbeat_at.is_(None), ProjectionRun.heartbeat_at < heartbeat_before),
    )
    return (await session.execute(query)).scalars().all()


async def stuck_parts(
    session: AsyncSession, *, heartbeat_before: datetime
) -> Sequence[ProjectionRunPart]:
    query = select(ProjectionRunPart).where(
        ProjectionRunPart.status == RunStatus.running,
        or_(
            ProjectionRunPart.heartbeat_at.is_(None),
            ProjectionRunPart.heartbeat_at < heartbeat_before,
        ),
    )
    return (await session.execute(query)).scalars().all()


# ---------------------------------------------------------------------------------------------
# Parts


async def add_missing_parts(
    session: AsyncSession, *, run_id: uuid.UUID, ics_codes: Sequence[str]
) -> list[str]:
    existing = set(
        (
            await session.execute(
                select(ProjectionRunPart.ics_code).where(ProjectionRunPart.run_id == run_id)
            )
        )
        .scalars()
        .all()
    )
    added = [code for code in ics_codes if code not in existing]
    for code in added:
        session.add(ProjectionRunPart(run_id=run_id, ics_code=code))
    await session.flush()
    return added


async def get_part(
    session: AsyncSession, *, run_id: uuid.UUID, ics_code: str, lock: bool = False
) -> ProjectionRunPart | None:
    condition = and_(ProjectionRunPart.run_id == run_id, ProjectionRunPart.ics_code == ics_code)
    if lock and not _is_postgres(session):
        await session.execute(
            update(ProjectionRunPart).where(condition).values(attempts=ProjectionRunPart.attempts)
        )
    query = select(ProjectionRunPart).where(condition)
    if lock and _is_postgres(session):
        query = query.with_for_update()
    return (
        await session.execute(query.execution_options(populate_existing=True))
    ).scalar_one_or_none()


async def update_part(
    session: AsyncSession, *, run_id: uuid.UUID, ics_code: str, **values: Any
) -> None:
    await session.execute(
        update(ProjectionRunPart)
        .where(ProjectionRunPart.run_id == run_id, ProjectionRunPart.ics_code == ics_code)
        .values(**values)
    )


async def part_counts(session: AsyncSession, *, run_id: uuid.UUID) -> dict[str, int]:
    query = (
        select(ProjectionRunPart.status, func.count())
        .where(ProjectionRunPart.run_id == run_id)
        .group_by(ProjectionRunPart.status)
    )
    return {str(row[0]): int(row[1]) for row in (await session.execute(query)).all()}


async def parts_of(session: AsyncSession, *, run_id: uuid.UUID) -> Sequence[ProjectionRunPart]:
    query = (
        select(ProjectionRunPart)
        .where(ProjectionRunPart.run_id == run_id)
        .order_by(ProjectionRunPart.ics_code)
    )
    return (await session.execute(query)).scalars().all()


# ---------------------------------------------------------------------------------------------
# Results


async def delete_results(
    session: AsyncSession, *, run_id: uuid.UUID, area_codes: Sequence[str] | None = None
) -> None:
    """Remove what an earlier attempt wrote (all of the run, or these areas)."""
    models: tuple[type[ProjectionResult] | type[ProjectionExplain] | type[ProjectionDraws], ...]
    models = (ProjectionResult, ProjectionExplain, ProjectionDraws)
    for model in models:
        statement = delete(model).where(model.run_id == run_id)
        if area_codes is not None:
            statement = statement.where(model.area_code.in_(list(area_codes)))
        await session.execute(statement)


async def write_results(session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> int:
    """Insert result rows (RESULT_COLUMNS order): COPY on PostgreSQL, batches on SQLite."""
    if not rows:
        return 0
    table = ProjectionResult.__table__
    assert isinstance(table, Table)
    return await bulk.insert_rows(session, table=table, columns=RESULT_COLUMNS, rows=rows)


async def write_explain(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(ProjectionExplain), list(rows))


async def write_draws(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(ProjectionDraws), list(rows))


async def draws_of(
    session: AsyncSession, *, run_id: uuid.UUID, area_code: str
) -> ProjectionDraws | None:
    return await session.get(ProjectionDraws, (run_id, area_code))


def results_query(
    *,
    run_id: uuid.UUID,
    area_codes: Sequence[str] | None,
    role_code: str | None,
    year_from: int | None,
    year_to: int | None,
    measure: str | None,
) -> Select[ProjectionResult]:
    query = select(ProjectionResult).where(ProjectionResult.run_id == run_id)
    if area_codes is not None:
        query = query.where(ProjectionResult.area_code.in_(list(area_codes)))
    if role_code is not None:
        query = query.where(ProjectionResult.role_code == role_code)
    if year_from is not None:
        query = query.where(ProjectionResult.year >= year_from)
    if year_to is not None:
        query = query.where(ProjectionResult.year <= year_to)
    if measure is not None:
        query = query.where(ProjectionResult.measure == measure)
    return query


async def list_results(
    session: AsyncSession,
    *,
    run_id: uuid.UUID,
    area_codes: Sequence[str] | None,
    role_code: str | None = None,
    year_from: int | None = None,
    year_to: int | None = None,
    measure: str | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> tuple[Sequence[ProjectionResult], int]:
    query = results_query(
        run_id=run_id,
        area_codes=area_codes,
        role_code=role_code,
        year_from=year_from,
        year_to=year_to,
        measure=measure,
    )
    total = int(
        (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    )
    ordered = query.order_by(
        ProjectionResult.area_code,
        ProjectionResult.role_code,
        ProjectionResult.measure,
        ProjectionResult.year,
    ).offset(offset)
    if limit is not None:
        ordered = ordered.limit(limit)
    return (await session.execute(ordered)).scalars().all(), total


async def explain_rows(
    session: AsyncSession, *, run_id: uuid.UUID, area_codes: Sequence[str] | None = None
) -> Sequence[ProjectionExplain]:
    query = select(ProjectionExplain).where(ProjectionExplain.run_id == run_id)
    if area_codes is not None:
        query = query.where(ProjectionExplain.area_code.in_(list(area_codes)))
    return (await session.execute(query)).scalars().all()


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class InputLine:
    organisation_id: uuid.UUID
    home_lad_code: str
    ics_code: str
    return_id: uuid.UUID
    return_version: int
    line: ReturnLine
    as_at: date | None = None


async def latest_return_year(session: AsyncSession, *, ics_code: str | None) -> int | None:
    query = (
        select(func.max(WorkforceReturn.as_at))
        .join(Organisation, Organisation.id == WorkforceReturn.organisation_id)
        .where(WorkforceReturn.status == ReturnStatus.current)
    )
    if ics_code is not None:
        query = query.where(Organisation.ics_code == ics_code)
    latest: date | None = (await session.execute(query)).scalar_one_or_none()
    return None if latest is None else latest.year


async def ics_with_returns(session: AsyncSession, *, on: date) -> list[str]:
    query = (
        select(func.distinct(Organisation.ics_code))
        .join(WorkforceReturn, WorkforceReturn.organisation_id == Organisation.id)
        .where(WorkforceReturn.status == ReturnStatus.current, WorkforceReturn.as_at <= on)
        .order_by(Organisation.ics_code)
    )
    return [str(code) for code in (await session.execute(query)).scalars().all()]


async def input_lines(session: AsyncSession, *, ics_code: str, on: date) -> list[InputLine]:
    """Lines of each organisation's latest current return at or before `on`, in one ICS."""
    latest = returns_repo.latest_dates(organisation_filter=Organisation.ics_code == ics_code, on=on)
    query = (
        select(
            Organisation.id,
            Organisation.home_lad_code,
            Organisation.ics_code,
            WorkforceReturn.id,
            WorkforceReturn.version,
            ReturnLine,
            WorkforceReturn.as_at,
        )
        .join(WorkforceReturn, WorkforceReturn.organisation_id == Organisation.id)
        .join(
            latest,
            (latest.c.organisation_id == WorkforceReturn.organisation_id)
            & (latest.c.as_at == WorkforceReturn.as_at),
        )
        .join(ReturnLine, ReturnLine.return_id == WorkforceReturn.id)
        .where(WorkforceReturn.status == ReturnStatus.current)
        .order_by(Organisation.id, ReturnLine.role_code)
    )
    return [
        InputLine(
            organisation_id=row[0],
            home_lad_code=row[1],
            ics_code=row[2],
            return_id=row[3],
            return_version=row[4],
            line=row[5],
            as_at=row[6],
        )
        for row in (await session.execute(query)).all()
    ]


async def return_years(session: AsyncSession, *, ics_code: str) -> list[int]:
    """Years in which organisations of an ICS have current returns, ascending."""
    query = (
        select(WorkforceReturn.as_at)
        .join(Organisation, Organisation.id == WorkforceReturn.organisation_id)
        .where(WorkforceReturn.status == ReturnStatus.current, Organisation.ics_code == ics_code)
        .distinct()
    )
    return sorted({row[0].year for row in (await session.execute(query)).all()})


async def role_drivers(session: AsyncSession, *, codes: Sequence[str]) -> dict[str, str]:
    query = select(Role.code, Role.default_demand_driver).where(Role.code.in_(list(codes)))
    return {row[0]: str(row[1]) for row in (await session.execute(query)).all()}


async def role_sectors(session: AsyncSession, *, codes: Sequence[str]) -> dict[str, str]:
    query = select(Role.code, Role.sector).where(Role.code.in_(list(codes)))
    return {row[0]: str(row[1]) for row in (await session.execute(query)).all()}


async def population_rows(
    session: AsyncSession,
    *,
    dataset_id: uuid.UUID,
    area_codes: Sequence[str],
    year_from: int,
    year_to: int,
) -> list[tuple[str, int, str, str, int]]:
    query = select(
        Population.area_code,
        Population.year,
        Population.sex,
        Population.age_band,
        Population.persons,
    ).where(
        Population.dataset_id == dataset_id,
        Population.area_code.in_(list(area_codes)),
        Population.year.between(year_from, year_to),
    )
    return [(r[0], r[1], r[2], r[3], r[4]) for r in (await session.execute(query)).all()]


async def area_of(session: AsyncSession, *, code: str) -> Area | None:
    return await session.get(Area, code)


async def lads_of(session: AsyncSession, *, icb_code: str) -> list[str]:
    query = select(Area.code).where(Area.parent_code == icb_code, Area.type == AreaType.lad)
    return [str(code) for code in (await session.execute(query)).scalars().all()]


async def ics_of_import(session: AsyncSession, *, import_id: uuid.UUID) -> list[str]:
    query = (
        select(func.distinct(Organisation.ics_code))
        .join(WorkforceReturn, WorkforceReturn.organisation_id == Organisation.id)
        .where(WorkforceReturn.import_id == import_id)
    )
    return [str(code) for code in (await session.execute(query)).scalars().all()]
