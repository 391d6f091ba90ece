"""Projection runs: requests (validated against the data the run will use) and reads."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import anyio
import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.areas.errors import AreaNotFound
from services.api.cache import TtlCache
from services.api.projections import errors
from services.api.roles.errors import UnknownRole
from services.api.scenarios.errors import UnknownScenario
from services.domain.projections import runs as projection_runs
from services.projector.model import explain as explain_model
from shared.errors import FieldErrors, ValidationFailed
from shared.models import (
    ALL_ROLES,
    BASELINE,
    ENGLAND_CODE,
    Area,
    AreaType,
    ProjectionExplain,
    ProjectionRun,
    RunStatus,
    Scenario,
)
from shared.repositories import projections as repo
from shared.repositories import roles as roles_repo
from shared.repositories import scenarios
from shared.schemas.keys import Principal
from shared.schemas.projections import (
    BaseGapSplit,
    ExplainNet,
    ProjectionCreate,
    ProjectionExplainRead,
    ProjectionRefresh,
)


async def _scenario(session: AsyncSession, name: str, *, scope: Area) -> Scenario:
    """The scenario a name means for a run of this scope: the scope ICS's own, else the
    national one (England: national only). A run never uses another ICS's scenario, so among
    the runs of one scope a scenario name means one scenario, and another ICS's private name
    is refused as a free one is."""
    if name == BASELINE:
        return await projection_runs.baseline(session)
    ics_code = scope.code if scope.type == AreaType.icb else None
    scenario = await scenarios.in_namespace(session, name=name, ics_code=ics_code)
    if scenario is None:
        raise UnknownScenario(
            f"There is no scenario named {name!r} for {scope.code}.", field="scenario"
        )
    return scenario


def ensure_can_read_scope(principal: Principal, scope: str) -> None:
    if principal.organisation_id is not None or (
        principal.ics_code is not None and principal.ics_code != scope
    ):
        # Another ICS's (or England's) run is outside the key's binding.
        raise AreaNotFound("No such area.")


async def request_run(
    session: AsyncSession, *, principal: Principal | None, data: ProjectionCreate
) -> ProjectionRun:
    """Check the key may ask for this scope and scenario, then take the one request path
    (shared with the automatic recompute), which validates the run against its data.

    `principal` None is the operator at the command line (no key, no binding).
    """
    area = await repo.area_of(session, code=data.scope)
    if area is None or area.type not in (AreaType.icb, AreaType.country):
        raise errors.InvalidScope("scope must be an ICB code or E92000001.", field="scope")
    if principal is not None:
        ensure_can_read_scope(principal, data.scope)
    scenario = await _scenario(session, data.scenario, scope=area)
    return await projection_runs.request_run(
        session,
        scenario=scenario,
        scope=data.scope,
        base_year=data.base_year,
        horizon=data.horizon,
        iterations=data.iterations,
        seed=data.seed,
        key_id=principal.key_id if principal else None,
        actor=principal.actor if principal else "cli",
    )


def can_read_run(principal: Principal, run: ProjectionRun) -> bool:
    if principal.is_global:
        return True
    if principal.ics_code is not None:
        # England runs are visible, restricted to the ICS's own areas when reading results.
        return run.ics_code in (None, principal.ics_code)
    return False


async def visible_run(
    session: AsyncSession, *, principal: Principal, run_id: uuid.UUID
) -> ProjectionRun:
    run = await repo.get_run(session, run_id=run_id)
    if run is None or not can_read_run(principal, run):
        raise errors.ProjectionNotFound("No such projection run.")
    return run


async def allowed_areas(
    session: AsyncSession, *, principal: Principal, run: ProjectionRun
) -> list[str] | None:
    """The area codes a key may read in a run (None: all)."""
    if principal.is_global or principal.ics_code is None:
        return None
    if run.ics_code == principal.ics_code:
        return None
    return [principal.ics_code, *await repo.lads_of(session, icb_code=principal.ics_code)]


def restrict(area: str | None, allowed: list[str] | None) -> list[str] | None:
    if area is None:
        return allowed
    if allowed is not None and area not in allowed:
        return []
    return [area]


# Seconds a client should wait before asking again about a run that is still computing.
RETRY_AFTER_S = 5


def require_succeeded(run: ProjectionRun) -> ProjectionRun:
    """A run whose results can be read: 409 with its status (and progress) otherwise."""
    if run.status == RunStatus.succeeded:
        return run
    if run.status in (RunStatus.queued, RunStatus.running):
        raise errors.RunNotFinished(
            f"The run is {run.status}; its results are ready when it has succeeded.",
            headers={"Retry-After": str(RETRY_AFTER_S), "Location": f"/v1/projections/{run.id}"},
            run_status=str(run.status),
            progress=run.progress,
        )
    raise errors.RunNotSucceeded(
        f"The run {run.status} and has no results" + (f": {run.error}" if run.error else "."),
        run_status=str(run.status),
        progress=run.progress,
        error=run.error,
    )


async def finished_run(
    session: AsyncSession, *, principal: Principal, run_id: uuid.UUID
) -> ProjectionRun:
    """A visible run that has succeeded (404 if not visible, 409 if not finished)."""
    return require_succeeded(await visible_run(session, principal=principal, run_id=run_id))


def _unknown(field: str, code: str, message: str) -> dict[str, str]:
    return {"field": field, "in": "query", "code": code, "message": message}


async def check_roles(session: AsyncSession, *, roles: Sequence[str] | None) -> None:
    """422 naming every role code in a filter that is not in the catalogue ('all' is)."""
    if not roles:
        return
    wanted = [code for code in roles if code != ALL_ROLES]
    known = await roles_repo.existing_codes(session, codes=wanted) if wanted else set()
    missing = [code for code in wanted if code not in known]
    if missing:
        raise UnknownRole(
            "The filter names roles that are not in the catalogue.",
            errors=[_unknown("role", "unknown_role", f"no role {code!r}") for code in missing],
        )


async def result_selection(
    session: AsyncSession,
    *,
    principal: Principal,
    run: ProjectionRun,
    area: str | None,
    roles: Sequence[str] | None,
    sector: str | None,
    measures: Sequence[str] | None,
    year_from: int | None,
    year_to: int | None,
) -> repo.ResultFilter | None:
    """The checked filter for a run's results; None when the key may see none of them."""
    await check_roles(session, roles=roles)
    if year_from is not None and year_to is not None and year_from > year_to:
        raise ValidationFailed(
            "year_from is after year_to.",
            errors=[_unknown("year_from", "bad_year_range", f"{year_from} > {year_to}")],
        )
    allowed = await allowed_areas(session, principal=principal, run=run)
    areas = restrict(area, allowed)
    if areas == []:
        return None
    return repo.ResultFilter(
        run_id=run.id,
        area_codes=areas,
        role_codes=list(roles) if roles else None,
        sector=sector,
        year_from=year_from,
        year_to=year_to,
        measures=list(measures) if measures else None,
    )


@asynccontextmanager
async def export_session(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session for a streamed export, closed (its transaction rolled back and the connection
    returned) even when the client disconnects and the task is being cancelled."""
    session = sessionmaker()
    try:
        yield session
    finally:
        with anyio.CancelScope(shield=True):
            await session.close()


EXPORT_CHUNK_ROWS = 5000


async def result_chunks(
    sessionmaker: async_sessionmaker[AsyncSession], selection: repo.ResultFilter | None
) -> AsyncGenerator[list[tuple[Any, ...]], None]:
    """Every selected result row, a chunk at a time, with bounded memory.

    PostgreSQL: one server-side cursor in one read transaction. SQLite: keyset chunks, each a
    short read of its own, so a slow client never holds the database file. A succeeded run's
    rows never change, so the chunks add up to one consistent result either way.
    """
    if selection is None:
        return
    async with export_session(sessionmaker) as session:
        if session.get_bind().dialect.name == "postgresql":
            async for chunk in repo.stream_results(
                session, selection, chunk_rows=EXPORT_CHUNK_ROWS
            ):
                yield chunk
            return
    after: Sequence[Any] | None = None
    while True:
        async with export_session(sessionmaker) as session:
            rows = await repo.results_after(
                session, selection, after=after, limit=EXPORT_CHUNK_ROWS
            )
        if not rows:
            return
        yield rows
        if len(rows) < EXPORT_CHUNK_ROWS:
            return
        after = [rows[-1][i] for i in repo.RESULT_KEY_POSITIONS]


Write = Callable[[bytes], Awaitable[None]]


class _JsonArrayFromLines:
    """Turns COPY's one-object-per-line output into one JSON array, chunk by chunk."""

    def __init__(self, write: Write) -> None:
        self.write = write
        self.rows = False
        self.newline_held = False

    async def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        prefix = b",\n" if self.newline_held else (b"" if self.rows else b"[")
        self.rows = True
        self.newline_held = chunk.endswith(b"\n")
        body = chunk[:-1] if self.newline_held else chunk
        await self.write(prefix + body.replace(b"\n", b",\n"))

    async def close(self) -> None:
        await self.write(b"]\n" if self.rows else b"[]\n")


def copy_producer(
    sessionmaker: async_sessionmaker[AsyncSession],
    selection: repo.ResultFilter | None,
    fmt: str,
) -> Callable[[Write], Awaitable[None]] | None:
    """On PostgreSQL, CSV, NDJSON or a JSON array written by COPY (as fast as `psql \\copy`);
    None elsewhere, or for other formats."""
    bind = sessionmaker.kw.get("bind")
    if (
        selection is None
        or bind is None
        or bind.dialect.name != "postgresql"
        or fmt not in ("csv", "ndjson", "json")
    ):
        return None

    async def produce(write: Write) -> None:
        async with export_session(sessionmaker) as session:
            if fmt == "csv":

                async def crlf(chunk: bytes) -> None:
                    # COPY ends lines with LF; the API's CSV uses CRLF (RFC 4180) everywhere.
                    await write(bytes(chunk).replace(b"\n", b"\r\n"))

                await repo.copy_results(session, selection, output=crlf)
            elif fmt == "ndjson":

                async def lines(chunk: bytes) -> None:
                    await write(bytes(chunk))

                await repo.copy_results(session, selection, output=lines, as_json=True)
            else:
                array = _JsonArrayFromLines(write)

                async def objects(chunk: bytes) -> None:
                    await array.feed(bytes(chunk))

                await repo.copy_results(session, selection, output=objects, as_json=True)
                await array.close()

    return produce


async def explain(
    session: AsyncSession,
    *,
    principal: Principal,
    run_id: uuid.UUID,
    area: str | None,
    role: str | None,
    sector: str | None = None,
    year_from: int | None = None,
    year_to: int | None = None,
) -> ProjectionExplainRead:
    """What moved the gap after sharing between two years, for an area and a role, a sector
    or all roles; with net effects and the base-year gap split."""
    run = await finished_run(session, principal=principal, run_id=run_id)
    await check_roles(session, roles=[role] if role else None)
    first_year, last_year = run.base_year, run.base_year + run.horizon
    start = first_year if year_from is None else year_from
    end = last_year if year_to is None else year_to
    _check_explain_query(start, end, first_year, last_year, role=role, sector=sector)
    chosen = await _explained_rows(
        session, principal=principal, run=run, area=area, role=role, sector=sector
    )
    by_year = [row.by_year for row in chosen]
    if any(item is None for item in by_year):
        if start != first_year or end != last_year or len(chosen) > 1:
            raise errors.ExplanationByYearUnavailable(
                "This run was computed before explanations were kept for every year; "
                "request it again to explain other years or sectors."
            )
        return _whole_horizon_explanation(chosen[0], run_id=run_id, start=start, end=end)
    return explanation_between(
        chosen, run_id=run_id, sector=sector, first_year=first_year, start=start, end=end
    )


def _check_explain_query(
    start: int, end: int, first_year: int, last_year: int, *, role: str | None, sector: str | None
) -> None:
    """Both years within the run, `from` before `to`, and a role or a sector, not both."""
    problems = FieldErrors()
    for name, value in (("from", start), ("to", end)):
        if not first_year <= value <= last_year:
            problems.add(
                errors.YearOutOfRange,
                name,
                f"must be within the run's years, {first_year}-{last_year}",
                location="query",
            )
    if not problems and start >= end:
        problems.add(errors.YearOutOfRange, "to", "must be after `from`", location="query")
    if role is not None and sector is not None:
        problems.add(
            errors.RoleAndSector, "sector", "give a role or a sector, not both", location="query"
        )
    problems.raise_if_any("The request has invalid fields.")


async def _explained_rows(
    session: AsyncSession,
    *,
    principal: Principal,
    run: ProjectionRun,
    area: str | None,
    role: str | None,
    sector: str | None,
) -> list[ProjectionExplain]:
    """The explanation rows of the area (by default the run's scope, or the key's ICB) for the
    role, every role of the sector, or all roles; 404 when there are none."""
    allowed = await allowed_areas(session, principal=principal, run=run)
    area_code = area or (run.scope if allowed is None else allowed[0])
    areas = restrict(area_code, allowed)
    rows: Sequence[ProjectionExplain] = (
        await repo.explain_rows(session, run_id=run.id, area_codes=areas) if areas else []
    )
    if sector is not None:
        sectors = await repo.role_sectors(session, codes=[row.role_code for row in rows])
        chosen = [row for row in rows if sectors.get(row.role_code) == sector]
    else:
        chosen = [row for row in rows if row.role_code == (role or ALL_ROLES)]
    if not chosen:
        raise errors.ExplanationNotFound(
            "No explanation for this area and role or sector in the run."
        )
    return chosen


def _whole_horizon_explanation(
    row: ProjectionExplain, *, run_id: uuid.UUID, start: int, end: int
) -> ProjectionExplainRead:
    """A run computed before explanations were kept by year: its base-to-horizon figures."""
    return ProjectionExplainRead(
        run_id=run_id,
        area_code=row.area_code,
        role_code=row.role_code,
        year_from=start,
        year_to=end,
        total_change_fte=row.total_change,
        contributions_fte=dict(row.contributions),
        net_fte=ExplainNet(**explain_model.net_effects(dict(row.contributions))),
    )


def _base_gap_split(
    chosen: Sequence[ProjectionExplain], *, first_year: int, gap_after_sharing: float
) -> BaseGapSplit | None:
    """The base-year gap split into vacancies and sickness absence (None for runs that did
    not keep the split)."""
    splits = [row.base_split for row in chosen]
    if not all(split is not None for split in splits):
        return None
    gap = sum(float(split["gap"]) for split in splits if split)
    return BaseGapSplit(
        year=first_year,
        gap_fte=gap,
        vacancies_fte=sum(float(split["vacancies"]) for split in splits if split),
        sickness_absence_fte=sum(float(split["sickness_absence"]) for split in splits if split),
        sharing_fte=gap_after_sharing - gap,
    )


def explanation_between(
    chosen: Sequence[ProjectionExplain],
    *,
    run_id: uuid.UUID,
    sector: str | None,
    first_year: int,
    start: int,
    end: int,
) -> ProjectionExplainRead:
    """What moved the gap after sharing from `start` to `end`, summed over the rows (pure)."""
    by_year = [row.by_year for row in chosen]
    states = sum(np.asarray(item["states"], dtype=np.float64) for item in by_year if item)
    gaps = sum(np.asarray(item["gap_after_sharing"], dtype=np.float64) for item in by_year if item)
    contributions, total = explain_model.between(
        np.asarray(states), np.asarray(gaps), start - first_year, end - first_year
    )
    named = {
        column: float(contributions[k]) for k, column in enumerate(explain_model.EXPLAIN_COLUMNS)
    }
    return ProjectionExplainRead(
        run_id=run_id,
        area_code=chosen[0].area_code,
        role_code=ALL_ROLES if sector is not None else chosen[0].role_code,
        sector=sector,
        year_from=start,
        year_to=end,
        total_change_fte=float(total),
        contributions_fte=named,
        net_fte=ExplainNet(**explain_model.net_effects(named)),
        base_gap=_base_gap_split(
            chosen, first_year=first_year, gap_after_sharing=float(np.asarray(gaps)[0])
        ),
    )


async def _session(
    session: AsyncSession | Callable[[], Awaitable[AsyncSession]],
) -> AsyncSession:
    return session if isinstance(session, AsyncSession) else await session()


async def latest_for_area(
    session: AsyncSession | Callable[[], Awaitable[AsyncSession]],
    *,
    principal: Principal,
    area_code: str,
    scenario: str,
    areas_cache: TtlCache | None = None,
    latest_cache: TtlCache | None = None,
) -> tuple[uuid.UUID, str, bool, list[str]] | None:
    """The newest succeeded run covering an area (its ICB's, or England's): (run, area, stale,
    the scopes that cover the area).

    The version check behind the ETag. With the caches (the API's hot path) areas are
    remembered and the latest run for a scope is looked up at most once per cache period;
    `session` may then be a factory, called only on a miss, so a cached answer opens none.
    """
    area_key = ("area", area_code)
    area_info = areas_cache.get(area_key) if areas_cache is not None else None
    if area_info is None:
        area = await repo.area_of(await _session(session), code=area_code)
        if area is None:
            raise AreaNotFound("No such area.")
        area_info = (area.code, area.type, area.parent_code)
        if areas_cache is not None:
            areas_cache.put(area_key, area_info)
    code, area_type, parent = cast(tuple[str, str, str | None], area_info)
    icb = code if area_type == AreaType.icb else parent
    if principal.organisation_id is not None or (
        principal.ics_code is not None and principal.ics_code != icb
    ):
        raise AreaNotFound("No such area.")
    scopes = [ENGLAND_CODE] + ([icb] if icb and area_type != AreaType.country else [])
    latest_key = ("latest", tuple(scopes), scenario)
    found = latest_cache.get(latest_key) if latest_cache is not None else None
    if found is None:
        found = await repo.latest_succeeded(
            await _session(session), scopes=scopes, scenario=scenario
        )
        if found is None:
            return None
        if latest_cache is not None:
            latest_cache.put(latest_key, found)
    run_id, _, stale = cast(tuple[uuid.UUID, object, bool], found)
    return run_id, code, stale, scopes


async def pending_refresh(
    session: AsyncSession, *, scopes: Sequence[str], scenario: str
) -> ProjectionRefresh | None:
    """The fresh run on its way for a stale latest: queued or running, not itself stale."""
    run = await repo.pending_run(session, scopes=scopes, scenario=scenario, after=None)
    if run is None:
        return None
    return ProjectionRefresh(
        run_id=run.id, scope=run.scope, status=run.status, queued_at=run.queued_at
    )
