"""SQL for projection runs, their parts, results and explanations, and the inputs they read.

Row locks follow one order everywhere (docs/projection-locking.md): a run row before its part
rows, parts by ICB code, runs by id; and run rows are only ever locked FOR NO KEY UPDATE, so the
foreign-key checks of result and part inserts (FOR KEY SHARE on the run row) never wait.
"""

from __future__ import annotations

import functools
import struct
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import (
    Select,
    String,
    Table,
    and_,
    bindparam,
    cast,
    delete,
    false,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, defer

from shared.db.base import utcnow
from shared.models import (
    Area,
    AreaType,
    Organisation,
    Population,
    ProjectionDraws,
    ProjectionExplain,
    ProjectionRun,
    ProjectionRunPart,
    ProjectionSeries,
    ReturnLine,
    ReturnStatus,
    Role,
    RunStatus,
    WorkforceReturn,
)
from shared.reference.bands import AGE_BANDS
from shared.repositories import bulk
from shared.repositories.base import PageWindow, paginate, paginate_rows
from shared.schemas.keys import Principal

# A stored result series: the key, the first year, then each figure's list over the years.
SERIES_COLUMNS: tuple[str, ...] = (
    "run_id",
    "area_code",
    "role_code",
    "measure",
    "first_year",
    "principal",
    "p10",
    "p50",
    "p90",
)


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _is_postgres(session: AsyncSession) -> bool:
    return _dialect(session) == "postgresql"


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
        # NO KEY UPDATE: it does not conflict with the KEY SHARE locks that inserting result
        # rows takes on their run through the foreign key (FOR UPDATE would, and did deadlock).
        query = query.with_for_update(key_share=True)
    return (
        await session.execute(query.execution_options(populate_existing=True))
    ).scalar_one_or_none()


async def update_run(session: AsyncSession, *, run_id: uuid.UUID, **values: Any) -> None:
    await session.execute(update(ProjectionRun).where(ProjectionRun.id == run_id).values(**values))


def readable_statement(principal: Principal) -> Select[ProjectionRun]:
    """The runs a key may see: every run (a global key); its ICS's and England's (an ICS key,
    which reads only its own areas' results of an England run); none (an organisation's key).
    A run's reads and the list of runs both start here."""
    query = select(ProjectionRun)
    if principal.organisation_id is not None:
        return query.where(false())
    if principal.ics_code is not None:
        return query.where(
            or_(ProjectionRun.ics_code == principal.ics_code, ProjectionRun.ics_code.is_(None))
        )
    return query


async def get_readable_run(
    session: AsyncSession, *, principal: Principal, run_id: uuid.UUID
) -> ProjectionRun | None:
    query = readable_statement(principal).where(ProjectionRun.id == run_id)
    return (
        await session.execute(query.execution_options(populate_existing=True))
    ).scalar_one_or_none()


async def list_runs(
    session: AsyncSession,
    *,
    principal: Principal,
    scope: str | None,
    status: str | None,
    scenario: str | None,
    page: PageWindow,
) -> tuple[Sequence[ProjectionRun], int]:
    """A page of the runs the key may see, newest first, and the total matching the filters."""
    filters = {
        ProjectionRun.scope: scope,
        ProjectionRun.status: status,
        ProjectionRun.scenario_name: scenario,
    }
    query = (
        readable_statement(principal)
        # A run's fingerprint inputs (every return id) are read through their own endpoint.
        .options(defer(ProjectionRun.fingerprint_parts))
        .where(*(column == value for column, value in filters.items() if value is not None))
        .order_by(ProjectionRun.queued_at.desc(), ProjectionRun.id)
    )
    return await paginate(session, query, page)


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


async def mark_stale(session: AsyncSession, *, condition: Any) -> list[uuid.UUID]:
    """Mark the finished and running runs matching `condition` stale; the runs it touched.

    A running run may already have read its inputs, so it is marked too (it may be a false
    alarm, never a missed one); a queued run will read the new inputs and is left alone. The
    rows are locked in id order first, the order every multi-run writer follows.
    """
    where = and_(
        condition,
        ProjectionRun.status.in_([RunStatus.succeeded, RunStatus.running]),
        ProjectionRun.stale.is_(False),
    )
    query = select(ProjectionRun.id).where(where).order_by(ProjectionRun.id)
    if _is_postgres(session):
        query = query.with_for_update(key_share=True)
    ids = list((await session.execute(query)).scalars().all())
    if ids:
        await session.execute(
            update(ProjectionRun).where(ProjectionRun.id.in_(ids)).values(stale=True)
        )
    return ids


def runs_of_scopes(scopes: Sequence[str]) -> Any:
    return ProjectionRun.scope.in_(list(scopes))


def runs_of_scenario_before(scenario_id: uuid.UUID, version: int) -> Any:
    return and_(ProjectionRun.scenario_id == scenario_id, ProjectionRun.scenario_version < version)


def runs_using_role(role_code: str) -> Any:
    """Finished runs with the role in their results (its explanation rows are few), and every
    running run (it may have read the role already)."""
    used = select(ProjectionExplain.run_id).where(ProjectionExplain.role_code == role_code)
    return or_(ProjectionRun.id.in_(used), ProjectionRun.status == RunStatus.running)


def all_runs() -> Any:
    return ProjectionRun.id.is_not(None)


async def scopes_with_runs(
    session: AsyncSession, *, scenario: str, scopes: Sequence[str] | None = None
) -> list[str]:
    """Scopes that have had a run under this scenario (of these scopes, when given)."""
    query = select(ProjectionRun.scope).where(ProjectionRun.scenario_name == scenario)
    if scopes is not None:
        query = query.where(ProjectionRun.scope.in_(list(scopes)))
    return sorted({str(s) for s in (await session.execute(query.distinct())).scalars().all()})


async def succeeded_runs(
    session: AsyncSession, *, run_ids: Sequence[uuid.UUID]
) -> Sequence[ProjectionRun]:
    """Those of these runs that succeeded."""
    if not run_ids:
        return []
    query = select(ProjectionRun).where(
        ProjectionRun.id.in_(list(run_ids)), ProjectionRun.status == RunStatus.succeeded
    )
    return (await session.execute(query.order_by(ProjectionRun.id))).scalars().all()


async def scopes_of_runs(
    session: AsyncSession, *, run_ids: Sequence[uuid.UUID], scenario: str
) -> list[str]:
    if not run_ids:
        return []
    query = select(ProjectionRun.scope).where(
        ProjectionRun.id.in_(list(run_ids)), ProjectionRun.scenario_name == scenario
    )
    return sorted({str(s) for s in (await session.execute(query.distinct())).scalars().all()})


async def latest_of_scope(
    session: AsyncSession, *, scope: str, scenario: str
) -> ProjectionRun | None:
    """The newest run requested for a scope under a scenario."""
    query = (
        select(ProjectionRun)
        .where(ProjectionRun.scope == scope, ProjectionRun.scenario_name == scenario)
        .order_by(ProjectionRun.queued_at.desc(), ProjectionRun.id)
        .limit(1)
    )
    return (await session.execute(query)).scalars().first()


async def pending_run(
    session: AsyncSession, *, scopes: Sequence[str], scenario: str, after: datetime | None
) -> ProjectionRun | None:
    """The newest queued or running run of these scopes under a scenario, requested after a
    given time (the stale run's finish): the fresh one on its way."""
    query = select(ProjectionRun).where(
        ProjectionRun.scope.in_(list(scopes)),
        ProjectionRun.scenario_name == scenario,
        ProjectionRun.status.in_([RunStatus.queued, RunStatus.running]),
        ProjectionRun.stale.is_(False),
    )
    if after is not None:
        query = query.where(ProjectionRun.queued_at >= after)
    query = query.order_by(ProjectionRun.queued_at.desc(), ProjectionRun.id).limit(1)
    return (await session.execute(query)).scalars().first()


async def find_queued(session: AsyncSession, *, scope: str, scenario: str) -> ProjectionRun | None:
    """A run of the scope still waiting for its first attempt: it will read the newest inputs."""
    query = select(ProjectionRun).where(
        ProjectionRun.scope == scope,
        ProjectionRun.scenario_name == scenario,
        ProjectionRun.status == RunStatus.queued,
        ProjectionRun.attempts == 0,
    )
    return (await session.execute(query.limit(1))).scalars().first()


def _silent(column: Any, before: datetime) -> Any:
    return or_(column.is_(None), column < before)


async def stuck_runs(session: AsyncSession, *, heartbeat_before: datetime) -> list[uuid.UUID]:
    """ICB runs whose worker stopped beating (England runs are watched through their parts)."""
    query = (
        select(ProjectionRun.id)
        .where(
            ProjectionRun.status == RunStatus.running,
            ProjectionRun.scope != "E92000001",
            _silent(ProjectionRun.heartbeat_at, heartbeat_before),
        )
        .order_by(ProjectionRun.id)
    )
    return list((await session.execute(query)).scalars().all())


async def stuck_parts(
    session: AsyncSession, *, heartbeat_before: datetime
) -> dict[uuid.UUID, list[str]]:
    """Running parts whose worker stopped beating, and open parts of runs that have ended,
    by run (in id order) and ICB code."""
    query = (
        select(ProjectionRunPart.run_id, ProjectionRunPart.ics_code)
        .join(ProjectionRun, ProjectionRun.id == ProjectionRunPart.run_id)
        .where(
            or_(
                and_(
                    ProjectionRunPart.status == RunStatus.running,
                    _silent(ProjectionRunPart.heartbeat_at, heartbeat_before),
                ),
                and_(
                    ProjectionRunPart.status.in_([RunStatus.queued, RunStatus.running]),
                    ProjectionRun.status.in_(
                        [RunStatus.succeeded, RunStatus.failed, RunStatus.cancelled]
                    ),
                ),
            )
        )
        .order_by(ProjectionRunPart.run_id, ProjectionRunPart.ics_code)
    )
    found: dict[uuid.UUID, list[str]] = {}
    for run_id, code in (await session.execute(query)).all():
        found.setdefault(run_id, []).append(str(code))
    return found


async def stuck_combines(session: AsyncSession, *, heartbeat_before: datetime) -> list[uuid.UUID]:
    """England runs whose parts have all succeeded but which have not been combined since."""
    open_parts = select(ProjectionRunPart.run_id).where(
        ProjectionRunPart.run_id == ProjectionRun.id,
        ProjectionRunPart.status != RunStatus.succeeded,
    )
    query = (
        select(ProjectionRun.id)
        .where(
            ProjectionRun.status == RunStatus.running,
            ProjectionRun.scope == "E92000001",
            _silent(ProjectionRun.heartbeat_at, heartbeat_before),
            ~open_parts.exists(),
        )
        .order_by(ProjectionRun.id)
    )
    return list((await session.execute(query)).scalars().all())


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


async def end_open_parts(
    session: AsyncSession, *, run_id: uuid.UUID, failed_part: str | None = None
) -> None:
    """A run that has ended leaves no part open: the one that failed it (if any) is failed, the
    rest cancelled. Call with the run row locked (the run before its parts)."""
    open_statuses = [RunStatus.queued, RunStatus.running]
    codes = select(ProjectionRunPart.ics_code).where(
        ProjectionRunPart.run_id == run_id, ProjectionRunPart.status.in_(open_statuses)
    )
    if _is_postgres(session):
        codes = codes.order_by(ProjectionRunPart.ics_code).with_for_update()
    locked = list((await session.execute(codes)).scalars().all())
    now = utcnow()
    for status, chosen in (
        (RunStatus.failed, [code for code in locked if code == failed_part]),
        (RunStatus.cancelled, [code for code in locked if code != failed_part]),
    ):
        if chosen:
            await session.execute(
                update(ProjectionRunPart)
                .where(ProjectionRunPart.run_id == run_id, ProjectionRunPart.ics_code.in_(chosen))
                .values(status=status, finished_at=now)
            )


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
    models: tuple[type[ProjectionSeries] | type[ProjectionExplain] | type[ProjectionDraws], ...]
    models = (ProjectionSeries, ProjectionExplain, ProjectionDraws)
    for model in models:
        statement = delete(model).where(model.run_id == run_id)
        if area_codes is not None:
            statement = statement.where(model.area_code.in_(list(area_codes)))
        await session.execute(statement)


@dataclass(frozen=True)
class SeriesBlock:
    """Result series of one run as arrays: a key per series, and its figures (principal,
    p10, p50, p90) over the years from `first_year`. Built where the model ran and handed
    over as a few buffers, not as millions of Python floats."""

    run_id: uuid.UUID
    first_year: int
    keys: list[tuple[str, str, str]]  # (area, role, measure) per series
    figures: NDArray[np.float64]  # (series, 4, years)

    def __len__(self) -> int:
        return len(self.keys)

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """SERIES_COLUMNS tuples, each figure a list of floats."""
        figures = self.figures.tolist()
        for (area, role, measure), values in zip(self.keys, figures, strict=True):
            yield (self.run_id, area, role, measure, self.first_year, *values)

    def copy_binary(self) -> bytes:
        """The series in PostgreSQL's binary COPY format (SERIES_COLUMNS order): the arrays
        laid out by NumPy in one pass, only the short keys per row in Python."""
        n, figures, years = self.figures.shape
        element = np.dtype([("length", ">i4"), ("value", ">f8")])
        array_field = np.dtype(
            [
                ("field_length", ">i4"),
                ("dimensions", ">i4"),
                ("has_nulls", ">i4"),
                ("element_type", ">i4"),
                ("size", ">i4"),
                ("lower_bound", ">i4"),
                ("elements", element, (years,)),
            ]
        )
        arrays = np.zeros((n, figures), dtype=array_field)
        arrays["field_length"] = array_field.itemsize - 4
        arrays["dimensions"] = 1
        arrays["element_type"] = _FLOAT8_OID
        arrays["size"] = years
        arrays["lower_bound"] = 1
        arrays["elements"]["length"] = 8
        arrays["elements"]["value"] = self.figures
        packed = arrays.tobytes()
        stride = figures * array_field.itemsize
        run = _field(self.run_id.bytes)
        year = _field(struct.pack(">i", self.first_year))
        out = [_COPY_HEADER]
        for i, (area, role, measure) in enumerate(self.keys):
            out += (
                _FIELD_COUNT,
                run,
                _field(area.encode()),
                _field(role.encode()),
                _field(measure.encode()),
                year,
                packed[i * stride : (i + 1) * stride],
            )
        out.append(_COPY_TRAILER)
        return b"".join(out)


_FLOAT8_OID = 701
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
_FIELD_COUNT = struct.pack(">h", len(SERIES_COLUMNS))


def _field(value: bytes) -> bytes:
    return struct.pack(">i", len(value)) + value


async def write_results(session: AsyncSession, series: SeriesBlock) -> int:
    """Insert result series: a binary COPY on PostgreSQL, batches on SQLite."""
    if not len(series):
        return 0
    table = ProjectionSeries.__table__
    assert isinstance(table, Table)
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        payload = series.copy_binary()

        async def source() -> AsyncIterator[bytes]:
            yield payload

        raw = await connection.get_raw_connection()
        status: str = await raw.driver_connection.copy_to_table(  # type: ignore[union-attr]
            table.name, source=source(), columns=list(SERIES_COLUMNS), format="binary"
        )
        return int(status.rsplit(" ", 1)[-1])
    return await bulk.insert_rows(
        session, table=table, columns=SERIES_COLUMNS, rows=list(series.rows())
    )


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


async def draws_of_areas(
    session: AsyncSession, *, run_id: uuid.UUID, area_codes: Sequence[str]
) -> dict[str, bytes]:
    """The per-draw values (np.save bytes) of these areas of a run, by area."""
    query = select(ProjectionDraws.area_code, ProjectionDraws.values).where(
        ProjectionDraws.run_id == run_id, ProjectionDraws.area_code.in_(list(area_codes))
    )
    return {str(row[0]): bytes(row[1]) for row in (await session.execute(query)).all()}


# What every representation of results shows, in order: rows carry the role's name and sector
# so portals need not re-join the catalogue, and figures are FTE rounded to 2 decimals.
RESULT_EXPORT_COLUMNS: tuple[str, ...] = (
    "area_code",
    "role_code",
    "role_name",
    "sector",
    "measure",
    "year",
    "principal",
    "p10",
    "p50",
    "p90",
)
ALL_ROLES_NAME = "All roles"
# Positions of the ordering key (area, role, measure, year) in a result row.
RESULT_KEY_POSITIONS = (0, 1, 4, 5)


def rounded(column: Any, places: int = 2) -> Any:
    """A figure rounded in SQL on PostgreSQL and SQLite alike, in floating point (a NUMERIC
    round trip costs seconds over an England run's rows)."""
    scale = 10**places
    return func.round(column * scale) / scale


@dataclass(frozen=True)
class ResultFilter:
    """Which of a run's results to read (None: no condition)."""

    run_id: uuid.UUID
    area_codes: Sequence[str] | None = None
    role_codes: Sequence[str] | None = None
    sector: str | None = None
    year_from: int | None = None
    year_to: int | None = None
    measures: Sequence[str] | None = None


@dataclass(frozen=True)
class _Expanded:
    """A series expanded into one row per year: the year and each figure as columns."""

    source: Any  # the table-valued function to join to the series
    year: Any
    figures: tuple[Any, Any, Any, Any]  # principal, p10, p50, p90


def _expanded(dialect: str) -> _Expanded:
    series = ProjectionSeries
    if dialect == "postgresql":
        figures = func.unnest(series.principal, series.p10, series.p50, series.p90)
        years = figures.table_valued("principal", "p10", "p50", "p90", with_ordinality="n")
        u = years.render_derived(name="result_year")
        return _Expanded(
            source=u,
            year=series.first_year + u.c.n - 1,
            figures=(u.c.principal, u.c.p10, u.c.p50, u.c.p90),
        )
    # SQLite: the lists are JSON arrays; walk the principal's, and pick the others' element at
    # the same position.
    e = func.json_each(series.principal).table_valued("key", "value", name="result_year")
    position = func.printf("$[%d]", e.c.key)
    return _Expanded(
        source=e,
        year=series.first_year + e.c.key,
        figures=(
            e.c.value,
            func.json_extract(series.p10, position),
            func.json_extract(series.p50, position),
            func.json_extract(series.p90, position),
        ),
    )


def results_query(selection: ResultFilter, *, dialect: str) -> Select[Any]:
    """Result rows (RESULT_EXPORT_COLUMNS) in key order: area, role, measure, year; each stored
    series expanded into a row per year."""
    series = ProjectionSeries
    expanded = _expanded(dialect)
    year = expanded.year
    principal, p10, p50, p90 = expanded.figures
    query = (
        select(
            series.area_code,
            series.role_code,
            func.coalesce(Role.name, literal(ALL_ROLES_NAME)).label("role_name"),
            Role.sector.label("sector"),
            series.measure,
            year.label("year"),
            rounded(principal).label("principal"),
            rounded(p10).label("p10"),
            rounded(p50).label("p50"),
            rounded(p90).label("p90"),
        )
        .select_from(series)
        .outerjoin(Role, Role.code == series.role_code)
        .join(expanded.source, true())
        .where(series.run_id == selection.run_id)
    )
    if selection.area_codes is not None:
        query = query.where(series.area_code.in_(list(selection.area_codes)))
    if selection.role_codes is not None:
        query = query.where(series.role_code.in_(list(selection.role_codes)))
    if selection.sector is not None:
        query = query.where(Role.sector == selection.sector)
    if selection.year_from is not None:
        query = query.where(year >= selection.year_from)
    if selection.year_to is not None:
        query = query.where(year <= selection.year_to)
    if selection.measures is not None:
        query = query.where(series.measure.in_(list(selection.measures)))
    return query.order_by(series.area_code, series.role_code, series.measure, year)


async def page_of_results(
    session: AsyncSession, selection: ResultFilter, page: PageWindow
) -> tuple[list[tuple[Any, ...]], int]:
    """A page of result rows (RESULT_EXPORT_COLUMNS order) and how many match over all pages."""
    return await paginate_rows(session, results_query(selection, dialect=_dialect(session)), page)


async def list_results(session: AsyncSession, selection: ResultFilter) -> list[tuple[Any, ...]]:
    """Every result row of the selection (RESULT_EXPORT_COLUMNS order)."""
    connection = await session.connection()
    query = results_query(selection, dialect=_dialect(session))
    return [tuple(row) for row in (await connection.execute(query)).all()]


async def results_after(
    session: AsyncSession,
    selection: ResultFilter,
    *,
    after: Sequence[Any] | None,
    limit: int,
) -> list[tuple[Any, ...]]:
    """The next `limit` rows after the key `after` (area, role, measure, year): keyset paging,
    so each chunk is a short read that seeks the primary key instead of skipping rows."""
    query = results_query(selection, dialect=_dialect(session))
    if after is not None:
        series = ProjectionSeries
        key = tuple_(series.area_code, series.role_code, series.measure)
        at = tuple_(*(literal(value) for value in after[:3]))
        # The series at or after the last row's (an index range), then within its series
        # only the later years.
        query = query.where(key >= at, or_(key > at, query.selected_columns.year > after[3]))
    connection = await session.connection()
    return [tuple(row) for row in (await connection.execute(query.limit(limit))).all()]


async def _read_in_key_order(session: AsyncSession) -> None:
    """Walk the primary key instead of sorting: the export's first bytes leave at once, and
    the plan does not depend on the table's statistics being fresh after a run's writes."""
    await session.execute(text("SET LOCAL enable_sort = off"))


async def stream_results(
    session: AsyncSession, selection: ResultFilter, *, chunk_rows: int
) -> AsyncIterator[list[tuple[Any, ...]]]:
    """All selected rows through a server-side cursor (PostgreSQL), `chunk_rows` at a time."""
    await _read_in_key_order(session)
    connection = await session.connection()
    query = results_query(selection, dialect=_dialect(session))
    query = query.execution_options(yield_per=chunk_rows)
    streamed = await connection.stream(query)
    async for partition in streamed.partitions(chunk_rows):
        yield [tuple(row) for row in partition]


async def copy_results(
    session: AsyncSession,
    selection: ResultFilter,
    *,
    output: Callable[[bytes], Awaitable[None]],
    as_json: bool = False,
) -> None:
    """The selected rows straight from PostgreSQL's COPY, the database formatting the text:
    CSV with a header, or (`as_json`) one compact JSON object per line. The chunks pass through
    untouched; an error in `output`, such as the client going away, cancels the COPY."""
    await _read_in_key_order(session)
    connection = await session.connection()
    query: Select[Any] = results_query(selection, dialect=_dialect(session))
    options: dict[str, Any] = {"format": "csv", "header": True}
    if as_json:
        rows = query.order_by(None).subquery("result_row")
        query = (
            select(func.row_to_json(literal_column("result_row")))
            .select_from(rows)
            .order_by(rows.c.area_code, rows.c.role_code, rows.c.measure, rows.c.year)
        )
        # CSV with a quote and a delimiter that JSON text never holds raw: one line per object,
        # written as is (COPY's text format would double every backslash).
        options = {"format": "csv", "quote": "\x01", "delimiter": "\x02"}
    compiled = query.compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )
    params = compiled.params
    args = [params[name] for name in (compiled.positiontup or [])]
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    await driver.copy_from_query(  # type: ignore[union-attr]
        str(compiled), *args, output=output, **options
    )


async def explain_rows(
    session: AsyncSession, *, run_id: uuid.UUID, area_codes: Sequence[str] | None = None
) -> Sequence[ProjectionExplain]:
    query = select(ProjectionExplain).where(ProjectionExplain.run_id == run_id)
    if area_codes is not None:
        query = query.where(ProjectionExplain.area_code.in_(list(area_codes)))
    return (await session.execute(query)).scalars().all()


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True, eq=False)
class InputCells:
    """The lines of each organisation's latest current return at a date, as columns: one cell
    per line, in organisation id then role code order, with what its cells share held once per
    organisation. An object per line cost more to build than the projection took to run."""

    # Per organisation with lines, in id order: its home LAD and the date of its return.
    organisation_ids: tuple[uuid.UUID, ...]
    home_lad_codes: tuple[str, ...]
    as_at: tuple[date, ...]
    # The returns the lines are from, (id, version) in id order, the ids as text: what a
    # run's fingerprint records.
    returns: tuple[tuple[str, int], ...]
    # Per cell: its organisation (a position in organisation_ids), its role, and its figures
    # (cells, figures) in `figure_names` order, a missing figure as 0.
    cell_organisation: NDArray[np.int64]
    role_codes: tuple[str, ...]
    figure_names: tuple[str, ...]
    figures: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.role_codes)

    def figure(self, name: str) -> NDArray[np.float64]:
        """One figure of every cell, as an array of its own."""
        return np.ascontiguousarray(self.figures[:, self.figure_names.index(name)])

    def figures_of(self, names: Sequence[str]) -> NDArray[np.float64]:
        """(cells, len(names)): these figures of every cell, as an array of its own."""
        return np.ascontiguousarray(self.figures[:, [self.figure_names.index(n) for n in names]])


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


@functools.lru_cache(maxsize=64)
def _driver_statement(
    dialect: Dialect, query: Select[*tuple[Any, ...]]
) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """A statement as the driver takes it: its SQL, its parameters' names in order and their
    bound values. A statement built once (see `_latest_return_lines`) is compiled once."""
    compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    return str(compiled), tuple(compiled.positiontup or ()), compiled.params


# Rows the driver hands over at a time: each chunk's row objects are freed before the next
# arrive, where holding every row of an ICS's lines at once kept the garbage collector walking
# them (a third of the time of reading them).
_CHUNK_ROWS = 250


async def _all_columns(
    session: AsyncSession,
    query: Select[*tuple[Any, ...]],
    params: dict[str, Any] | None = None,
) -> list[Sequence[Any]]:
    """Every row of a read of thousands of rows, as columns (none without rows), `params`
    filling the statement's unbound parameters. On PostgreSQL the rows come straight from the
    driver, without SQLAlchemy's processing of each row (most of the time of such a read): only
    for columns the driver already returns as the model types them (dates, numbers, text)."""
    connection = await session.connection()
    if connection.dialect.name != "postgresql":
        rows = (await connection.execute(query, params or {})).all()
        return list(zip(*rows, strict=True))
    sql, names, bound = _driver_statement(connection.dialect, query)
    values = {**bound, **(params or {})}
    args = [values[name] for name in names]
    driver: Any = (await connection.get_raw_connection()).driver_connection
    if not driver.is_in_transaction():  # a cursor needs one: before the session's first read
        return list(zip(*await driver.fetch(sql, *args), strict=True))
    columns: list[list[Any]] = []
    cursor = await driver.cursor(sql, *args)
    while _extend(columns, await cursor.fetch(_CHUNK_ROWS)) == _CHUNK_ROWS:
        pass
    return list(columns)


def _extend(columns: list[list[Any]], rows: Sequence[Sequence[Any]]) -> int:
    """Add the rows' values to the columns (made on the first rows); how many rows there were."""
    if not rows:
        return 0
    if not columns:
        columns.extend([] for _ in rows[0])
    for column, values in zip(columns, zip(*rows, strict=True), strict=True):
        column.extend(values)
    return len(rows)


# Join methods other than looking rows up through an index, off for the reads of one ICS's
# returns: with few returns per organisation the planner estimates hashing every return to cost
# less than looking up the ICS's organisations' one by one, and it took a fifth longer over
# England's ICSs.
_HASH_AND_MERGE_JOINS = ("enable_hashjoin", "enable_mergejoin")


async def _join_by_lookups(session: AsyncSession, *, on: bool) -> None:
    """Plan joins as index lookups only (`on`), or as the server is set up again (PostgreSQL;
    for the rest of the transaction)."""
    if _is_postgres(session):
        for name in _HASH_AND_MERGE_JOINS:
            await session.execute(text(f"SET LOCAL {name} TO {'off' if on else 'DEFAULT'}"))


@functools.cache
def _latest_return_lines(figures: tuple[str, ...]) -> Select[*tuple[Any, ...]]:
    """The lines of each organisation's latest current return at or before the date `on`, in
    the ICS `ics_code` (both parameters): organisation id, home LAD, return date, return id,
    version, role code, then `figures`. Built once for each set of figures.

    The latest date is looked up organisation by organisation through the (organisation,
    status, date) index, starting from the ICS's organisations: joining a date per organisation
    grouped over every return read all of them for each ICS. Ids are read as text, several
    times cheaper for the driver to hand over than UUID objects, one per line.
    """
    earlier = aliased(WorkforceReturn)
    latest_as_at = (
        select(func.max(earlier.as_at))
        .where(
            earlier.organisation_id == Organisation.id,
            earlier.status == ReturnStatus.current,
            earlier.as_at <= bindparam("on"),
        )
        .scalar_subquery()
    )
    columns = ReturnLine.__table__.c
    return (
        select(
            cast(Organisation.id, String),
            Organisation.home_lad_code,
            WorkforceReturn.as_at,
            cast(WorkforceReturn.id, String),
            WorkforceReturn.version,
            ReturnLine.role_code,
            *(
                func.coalesce(columns[name], 0) if columns[name].nullable else columns[name]
                for name in figures
            ),
        )
        .select_from(Organisation)
        .join(WorkforceReturn, WorkforceReturn.organisation_id == Organisation.id)
        .join(ReturnLine, ReturnLine.return_id == WorkforceReturn.id)
        .where(
            Organisation.ics_code == bindparam("ics_code"),
            WorkforceReturn.status == ReturnStatus.current,
            WorkforceReturn.as_at == latest_as_at,
        )
        .order_by(Organisation.id, ReturnLine.role_code)
    )


def _input_cells(columns: list[Sequence[Any]], figures: tuple[str, ...]) -> InputCells:
    """The columns of `_latest_return_lines`, each organisation's and return's fields once
    (ids as text sort as the ids do)."""
    if not columns:
        no_cells = np.zeros(0, dtype=np.int64)
        return InputCells((), (), (), (), no_cells, (), figures, np.zeros((0, len(figures))))
    organisations, lad_codes, as_at, return_ids, versions, role_codes, *values = columns
    lad_of = dict(zip(organisations, lad_codes, strict=True))
    as_at_of = dict(zip(organisations, as_at, strict=True))
    keys = sorted(lad_of)
    position = {key: i for i, key in enumerate(keys)}
    version_of = dict(zip(return_ids, versions, strict=True))
    returns = sorted((str(uuid.UUID(key)), version) for key, version in version_of.items())
    return InputCells(
        organisation_ids=tuple(uuid.UUID(key) for key in keys),
        home_lad_codes=tuple(lad_of[key] for key in keys),
        as_at=tuple(as_at_of[key] for key in keys),
        returns=tuple(returns),
        cell_organisation=np.fromiter(
            map(position.__getitem__, organisations), dtype=np.int64, count=len(organisations)
        ),
        role_codes=tuple(role_codes),
        figure_names=figures,
        figures=np.array(values, dtype=np.float64).T.copy(),
    )


async def input_cells(
    session: AsyncSession, *, ics_code: str, on: date, figures: Sequence[str]
) -> InputCells:
    """The lines of each organisation's latest current return at or before `on`, in one ICS,
    with these figures (return line columns) of each."""
    query = _latest_return_lines(tuple(figures))
    await _join_by_lookups(session, on=True)
    columns = await _all_columns(session, query, {"ics_code": ics_code, "on": on})
    await _join_by_lookups(session, on=False)
    return _input_cells(columns, tuple(figures))


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


@dataclass(frozen=True, eq=False)
class PopulationBands:
    """Persons by area, year and sex (one entry for each read) and age band: `persons` is
    (entries, bands) in AGE_BANDS order, 0 for a band without a row."""

    area_codes: tuple[str, ...]
    years: tuple[int, ...]
    sexes: tuple[str, ...]
    persons: NDArray[np.float64]


@functools.lru_cache(maxsize=64)
def _population_by_band(areas: int) -> Select[*tuple[Any, ...]]:
    """Persons by area, year, sex and age band (a column each) of the dataset `dataset_id` in
    the years `year_from` to `year_to` and the areas `area_0` .. (parameters). Built once for
    each number of areas: building and compiling it again for each ICS took as long as the
    read."""
    return (
        select(
            Population.area_code,
            Population.year,
            Population.sex,
            *(
                func.coalesce(func.sum(Population.persons).filter(Population.age_band == band), 0)
                for band in AGE_BANDS
            ),
        )
        .where(
            Population.dataset_id == bindparam("dataset_id"),
            Population.area_code.in_([bindparam(f"area_{i}") for i in range(areas)]),
            Population.year.between(bindparam("year_from"), bindparam("year_to")),
        )
        .group_by(Population.area_code, Population.year, Population.sex)
    )


async def population_bands(
    session: AsyncSession,
    *,
    dataset_id: uuid.UUID,
    area_codes: Sequence[str],
    year_from: int,
    year_to: int,
) -> PopulationBands:
    """The population of these areas and years, the age bands side by side: a twentieth of
    the rows to hand over that one row per band would be."""
    params: dict[str, Any] = {"dataset_id": dataset_id, "year_from": year_from, "year_to": year_to}
    params.update((f"area_{i}", code) for i, code in enumerate(area_codes))
    query = _population_by_band(len(area_codes))
    columns = await _all_columns(session, query, params)
    if not columns:
        return PopulationBands((), (), (), np.zeros((0, len(AGE_BANDS))))
    areas, years, sexes, *persons = columns
    return PopulationBands(
        tuple(areas), tuple(years), tuple(sexes), np.array(persons, dtype=np.float64).T.copy()
    )


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


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    query = select(ProjectionRun.status, func.count()).group_by(ProjectionRun.status)
    return {str(row[0]): int(row[1]) for row in (await session.execute(query)).all()}
