"""Projection runs: request (202 + job), status, results (JSON or CSV), explanation, latest."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import QueryParams

from services.api.areas.errors import AreaNotFound
from services.api.cache import BodyCache
from services.api.deps import AdminKey, ReadKey, SessionDep, get_principal
from services.api.export import csv_bytes, export_response
from services.api.gate import requires_scope
from services.api.http import (
    IMMUTABLE,
    REVALIDATE,
    PageDep,
    csv_response,
    etag_of,
    negotiate,
    negotiate_header,
    not_modified,
    wants_csv,
)
from services.api.openapi import NOT_MODIFIED, raises
from services.api.projections import comparison as comparison_service
from services.api.projections import service
from services.api.projections.errors import (
    BaseYearOutOfRange,
    DrawsNotAvailable,
    ExplanationByYearUnavailable,
    ExplanationNotFound,
    HorizonBeyondPopulation,
    InvalidScope,
    NoPopulation,
    NoReturns,
    ProjectionNotFound,
    RoleAndSector,
    RunNotFinished,
    RunNotSucceeded,
    RunsNotComparable,
    RunsNotPaired,
    UnknownGroup,
    YearOutOfRange,
)
from services.api.roles.errors import UnknownRole
from services.api.scenarios.errors import UnknownScenario
from shared.errors import DomainError, NotAcceptable, ValidationFailed
from shared.models import ALL_ROLES, ENGLAND_CODE, KeyScope, ProjectionRun, RoleSector, RunStatus
from shared.repositories import projections as repo
from shared.repositories import roles as roles_repo
from shared.schemas.common import Page
from shared.schemas.keys import Principal
from shared.schemas.projections import (
    LatestProjection,
    ProjectionComparison,
    ProjectionCreate,
    ProjectionExplainRead,
    ProjectionFingerprintRead,
    ProjectionRefresh,
    ProjectionResultRead,
    ProjectionRunRead,
)
from shared.vocab.measures import Measure

router = APIRouter(prefix="/v1/projections", tags=["projections"])

# Part of every results ETag: a change in how rows are written (columns, rounding) is a new
# representation even for the same run.
EXPORT_VERSION = 2


@router.post(
    "",
    status_code=202,
    response_model=ProjectionRunRead,
    summary="Request a projection run (admin); poll the Location until it has finished",
    responses=raises(
        AreaNotFound,
        InvalidScope,
        UnknownScenario,
        NoPopulation,
        NoReturns,
        BaseYearOutOfRange,
        HorizonBeyondPopulation,
    ),
)
async def create_projection(
    data: ProjectionCreate, session: SessionDep, principal: AdminKey
) -> Response:
    run = await service.request_run(session, principal=principal, data=data)
    body = json.loads(ProjectionRunRead.model_validate(run).model_dump_json())
    # A hint for pollers: an ICB run takes seconds, an England run (fanned out) longer.
    retry_after = "10" if run.scope == ENGLAND_CODE else "2"
    return JSONResponse(
        body,
        status_code=202,
        headers={"Location": f"/v1/projections/{run.id}", "Retry-After": retry_after},
    )


@router.get(
    "",
    response_model=Page[ProjectionRunRead],
    summary="Projection runs, newest first",
)
async def list_projections(
    session: SessionDep,
    principal: ReadKey,
    page: PageDep,
    scope: Annotated[str | None, Query(max_length=9)] = None,
    status: Annotated[
        Literal["queued", "running", "succeeded", "failed", "cancelled"] | None, Query()
    ] = None,
    scenario: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[ProjectionRunRead]:
    runs, total = await repo.list_runs(
        session,
        principal=principal,
        scope=scope,
        status=status,
        scenario=scenario,
        page=page,
    )
    return page.result([ProjectionRunRead.model_validate(run) for run in runs], total)


ResultFormat = Literal["json", "csv", "ndjson", "xlsx"]
STREAMED_FORMATS: tuple[str, ...] = ("json", "csv", "ndjson", "xlsx")
_EXPORT_CONTENT: dict[str, Any] = {
    "text/csv": {"schema": {"type": "string"}},
    "application/x-ndjson": {"schema": {"type": "string"}},
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
        "schema": {"type": "string", "format": "binary"}
    },
}


def _run_derived(*more: type[DomainError]) -> dict[int | str, dict[str, Any]]:
    """What a read of a run's results can answer besides 200: 304, and these problems (409
    `run_not_finished` carries the run's status, progress and Retry-After)."""
    return {
        **NOT_MODIFIED,
        **raises(
            ProjectionNotFound, NotAcceptable, RunNotFinished, RunNotSucceeded, UnknownRole, *more
        ),
    }


def _run_derived_headers(etag: str) -> dict[str, str]:
    """A succeeded run's results never change: cache for good, keyed by the strong ETag."""
    return {"ETag": etag, "Cache-Control": IMMUTABLE, "Vary": "Accept"}


def _about(run: ProjectionRun) -> list[tuple[str, str]]:
    return [
        ("Run", str(run.id)),
        ("Scope", run.scope),
        ("Scenario", f"{run.scenario_name} (version {run.scenario_version})"),
        ("Base year", str(run.base_year)),
        ("Horizon", f"{run.horizon} years"),
        ("Monte Carlo runs", str(run.iterations)),
        ("Seed", str(run.seed)),
        ("Finished", run.finished_at.isoformat() if run.finished_at else ""),
        ("Model version", run.model_version or ""),
        ("Fingerprint", run.fingerprint or ""),
        ("Units", "Full-time equivalents (FTE), rounded to 2 decimals"),
        (
            "Measures",
            "demand_fte: FTE needed; supply_fte: FTE projected in post; gap_fte: demand - "
            "supply; gap_after_sharing_fte: after staff sharing agreements; shortfall_*: the "
            "gap where positive",
        ),
        ("principal / p10 / p50 / p90", "central projection; Monte Carlo percentiles"),
        (
            "Sources",
            "Workforce returns of the organisations in scope; ONS 2018-based subnational "
            "population projections (Open Government Licence v3.0); the OneWorkforce role "
            "catalogue; scenario parameters",
        ),
    ]


async def _results_response(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    run_id: uuid.UUID,
    *,
    fmt: str,
    area: str | None,
    role: list[str] | None,
    sector: RoleSector | None,
    measure: list[Measure] | None,
    year_from: int | None,
    year_to: int | None,
    bom: bool,
) -> Response:
    """A whole filtered result set, streamed (json array, csv, ndjson or xlsx)."""
    run = await service.finished_run(session, principal=principal, run_id=run_id)
    selection = await service.result_selection(
        session,
        principal=principal,
        run=run,
        area=area,
        roles=role,
        sector=sector,
        measures=measure,
        year_from=year_from,
        year_to=year_to,
    )
    etag = etag_of(
        "results-export", EXPORT_VERSION, run.id, fmt, bom, selection and selection.__dict__
    )
    if (cached := not_modified(request, etag)) is not None:
        cached.headers.update(_run_derived_headers(etag))
        return cached
    sessionmaker = request.app.state.sessionmaker
    return export_response(
        fmt,
        repo.RESULT_EXPORT_COLUMNS,
        lambda: service.result_chunks(sessionmaker, selection),
        filename=f"projection-{run.id}",
        bom=bom,
        sheet="Results",
        about=_about(run),
        headers=_run_derived_headers(etag),
        producer=service.copy_producer(sessionmaker, selection, fmt),
    )


RoleFilter = Annotated[
    list[str] | None,
    Query(max_length=200, description="Role codes (repeat for several; 'all' is the total)"),
]
SectorFilter = Annotated[
    RoleSector | None, Query(description="Only roles of this sector (excludes the 'all' rows)")
]
MeasureFilter = Annotated[list[Measure] | None, Query(description="Repeat for several")]
BomParam = Annotated[
    bool, Query(description="CSV only: start with a UTF-8 byte order mark (for Excel)")
]


XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# Registered before /v1/projections/{run_id}, which would otherwise read "compare" as an id.
@router.get(
    "/compare",
    response_model=ProjectionComparison,
    responses={
        200: {"content": {"text/csv": {}, XLSX_MEDIA_TYPE: {}}},
        **raises(
            ProjectionNotFound,
            RunNotFinished,
            RunsNotComparable,
            RunsNotPaired,
            AreaNotFound,
            DrawsNotAvailable,
            UnknownGroup,
        ),
    },
    summary="Paired comparison of two runs (other - base) by area, role or sector and year",
)
async def compare_projections(
    request: Request,
    session: SessionDep,
    principal: ReadKey,
    base: Annotated[uuid.UUID, Query(description="The run compared against, e.g. baseline")],
    other: Annotated[uuid.UUID, Query(description="The run compared, e.g. a scenario")],
    area: Annotated[str | None, Query(max_length=9)] = None,
    by: Annotated[Literal["role", "sector"], Query()] = "role",
    group: Annotated[
        str | None, Query(max_length=64, description="One role code or sector, or 'all'")
    ] = None,
    measure: Annotated[
        Literal["demand_fte", "supply_fte", "gap_fte", "gap_after_sharing_fte"] | None, Query()
    ] = None,
    year_from: Annotated[int | None, Query(ge=1900, le=2200)] = None,
    year_to: Annotated[int | None, Query(ge=1900, le=2200)] = None,
    format: Annotated[Literal["json", "csv", "xlsx"] | None, Query()] = None,
) -> ProjectionComparison | Response:
    """Both runs must have succeeded, cover the same scope, base year and horizon, and share
    the seed and iteration count, so that draw i of each used the same random numbers."""
    comparison = await comparison_service.compare_runs(
        session,
        principal=principal,
        base_id=base,
        other_id=other,
        area=area,
        by=by,
        group=group,
        measure=measure,
        year_from=year_from,
        year_to=year_to,
    )
    filename = f"comparison-{base}-{other}"
    wants_xlsx = format == "xlsx" or (
        format is None and XLSX_MEDIA_TYPE in request.headers.get("accept", "")
    )
    if wants_xlsx:
        return Response(
            await anyio.to_thread.run_sync(comparison_service.xlsx_bytes, comparison),
            media_type=XLSX_MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{filename}.xlsx"'},
        )
    if wants_csv(request, format):
        return csv_response(
            comparison_service.COMPARISON_HEADER,
            comparison_service.table_rows(comparison),
            filename=f"{filename}.csv",
        )
    return comparison


@router.get(
    "/{run_id}",
    response_model=ProjectionRunRead,
    responses={**NOT_MODIFIED, **raises(ProjectionNotFound, NotAcceptable)},
    summary="A run's status, with links to its results, explanation and fingerprint",
)
async def get_projection(
    run_id: uuid.UUID, request: Request, session: SessionDep, principal: ReadKey
) -> Response:
    run = await service.visible_run(session, principal=principal, run_id=run_id)
    content = ProjectionRunRead.model_validate(run).model_dump_json().encode()
    # Even a finished run may still turn stale, so clients revalidate (cheaply, by ETag).
    etag = etag_of("run", content)
    headers = {"ETag": etag, "Cache-Control": REVALIDATE}
    if (cached := not_modified(request, etag)) is not None:
        cached.headers.update(headers)
        return cached
    if run.status in (RunStatus.queued, RunStatus.running):
        headers["Retry-After"] = str(service.RETRY_AFTER_S)
    return Response(content, media_type="application/json", headers=headers)


@router.get(
    "/{run_id}/results",
    response_model=Page[ProjectionResultRead],
    responses={
        200: {"content": _EXPORT_CONTENT},
        **_run_derived(ValidationFailed),
    },
    summary="A run's results in FTE: principal and p10/p50/p90 by area, role, measure and year",
    description=(
        "JSON is paged (`Link`, `X-Total-Count`). CSV, NDJSON and xlsx (by `format` or "
        "`Accept`) stream every matching row, as `/export` does. Figures are FTE rounded to "
        "2 decimals. Answers 409 while the run is still computing."
    ),
)
async def get_results(
    run_id: uuid.UUID,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: ReadKey,
    page: PageDep,
    area: Annotated[str | None, Query(max_length=9)] = None,
    role: RoleFilter = None,
    sector: SectorFilter = None,
    year_from: Annotated[int | None, Query(ge=1900, le=2200)] = None,
    year_to: Annotated[int | None, Query(ge=1900, le=2200)] = None,
    measure: MeasureFilter = None,
    format: Annotated[ResultFormat | None, Query()] = None,
    bom: BomParam = False,
) -> Page[ProjectionResultRead] | Response:
    fmt = negotiate(request, format, STREAMED_FORMATS)
    if fmt != "json":
        return await _results_response(
            request,
            session,
            principal,
            run_id,
            fmt=fmt,
            area=area,
            role=role,
            sector=sector,
            measure=measure,
            year_from=year_from,
            year_to=year_to,
            bom=bom,
        )
    run = await service.finished_run(session, principal=principal, run_id=run_id)
    selection = await service.result_selection(
        session,
        principal=principal,
        run=run,
        area=area,
        roles=role,
        sector=sector,
        measures=measure,
        year_from=year_from,
        year_to=year_to,
    )
    etag = etag_of(
        "results", EXPORT_VERSION, run.id, page.page, page.limit, selection and selection.__dict__
    )
    response.headers.update(_run_derived_headers(etag))
    if (cached := not_modified(request, etag)) is not None:
        cached.headers.update(_run_derived_headers(etag))
        return cached
    if selection is None:
        return page.result([], 0)
    rows, total = await repo.page_of_results(session, selection, page)
    return page.result(
        [
            ProjectionResultRead.model_validate(
                dict(zip(repo.RESULT_EXPORT_COLUMNS, r, strict=True))
            )
            for r in rows
        ],
        total,
    )


@router.get(
    "/{run_id}/export",
    responses={
        200: {
            "description": "Every matching row, streamed",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/ProjectionResultRead"},
                    }
                },
                **_EXPORT_CONTENT,
            },
        },
        **_run_derived(ValidationFailed),
    },
    summary="A run's whole result set, streamed as JSON, CSV, NDJSON or xlsx",
    description=(
        "Streamed from the database in chunks, so memory stays flat for England's 650,000 "
        "rows; gzip when the client accepts it. JSON is one array; NDJSON one object a line; "
        "xlsx adds an About sheet (units, sources, scenario). Same filters as /results."
    ),
)
async def export_results(
    run_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: ReadKey,
    area: Annotated[str | None, Query(max_length=9)] = None,
    role: RoleFilter = None,
    sector: SectorFilter = None,
    year_from: Annotated[int | None, Query(ge=1900, le=2200)] = None,
    year_to: Annotated[int | None, Query(ge=1900, le=2200)] = None,
    measure: MeasureFilter = None,
    format: Annotated[ResultFormat | None, Query()] = None,
    bom: BomParam = False,
) -> Response:
    return await _results_response(
        request,
        session,
        principal,
        run_id,
        fmt=negotiate(request, format, STREAMED_FORMATS),
        area=area,
        role=role,
        sector=sector,
        measure=measure,
        year_from=year_from,
        year_to=year_to,
        bom=bom,
    )


@router.get(
    "/{run_id}/explain",
    response_model=ProjectionExplainRead,
    summary="What changed the gap after sharing between two years (FTE by component)",
    responses=_run_derived(
        ExplanationNotFound, ExplanationByYearUnavailable, YearOutOfRange, RoleAndSector
    ),
)
async def get_explain(
    run_id: uuid.UUID,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: ReadKey,
    area: Annotated[str | None, Query(max_length=9)] = None,
    role: Annotated[str | None, Query(max_length=64, description="A role code, or 'all'")] = None,
    sector: Annotated[
        str | None, Query(max_length=20, description="Explain a sector's roles together")
    ] = None,
    year_from: Annotated[
        int | None, Query(alias="from", ge=1900, le=2200, description="Default: base year")
    ] = None,
    year_to: Annotated[
        int | None, Query(alias="to", ge=1900, le=2200, description="Default: horizon")
    ] = None,
) -> ProjectionExplainRead | Response:
    """Sequential switching of the drivers of change, so the gross contributions add up
    exactly to the change in gap after sharing; `net_fte` sums them into net demand, supply
    and sharing effects. A positive figure widens the gap (more shortfall)."""
    negotiate(request, None, ("json",))
    body = await service.explain(
        session,
        principal=principal,
        run_id=run_id,
        area=area,
        role=role,
        sector=sector,
        year_from=year_from,
        year_to=year_to,
    )
    etag = etag_of("explain", EXPORT_VERSION, body.model_dump(mode="json"))
    response.headers.update(_run_derived_headers(etag))
    if (cached := not_modified(request, etag)) is not None:
        cached.headers.update(_run_derived_headers(etag))
        return cached
    # Not rounded: the contributions are a decomposition that adds up exactly to the change.
    return body


@router.get(
    "/{run_id}/fingerprint",
    response_model=ProjectionFingerprintRead,
    responses=_run_derived(),
    summary="The inputs a run read: dataset, scenario version, each return's id and version",
)
async def get_fingerprint(
    run_id: uuid.UUID,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: ReadKey,
) -> ProjectionFingerprintRead | Response:
    run = await service.finished_run(session, principal=principal, run_id=run_id)
    etag = etag_of("fingerprint", run.id, run.fingerprint)
    response.headers.update(_run_derived_headers(etag))
    if (cached := not_modified(request, etag)) is not None:
        cached.headers.update(_run_derived_headers(etag))
        return cached
    return ProjectionFingerprintRead(
        run_id=run.id, fingerprint=run.fingerprint, parts=dict(run.fingerprint_parts)
    )


_LATEST_PARAMETERS = [
    {
        "name": "scenario",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "maxLength": 64, "default": "baseline"},
    },
    {
        "name": "measure",
        "in": "query",
        "required": False,
        "description": "Repeat for several",
        "schema": {"type": "array", "items": {"type": "string", "enum": list(get_args(Measure))}},
    },
    {
        "name": "role",
        "in": "query",
        "required": False,
        "description": "Role codes (repeat for several; 'all' is the total)",
        "schema": {"type": "array", "items": {"type": "string", "maxLength": 64}},
    },
    {
        "name": "sector",
        "in": "query",
        "required": False,
        "description": "Only roles of this sector",
        "schema": {"type": "string", "enum": [sector.value for sector in RoleSector]},
    },
    {
        "name": "format",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": ["json", "csv"]},
    },
    {
        "name": "bom",
        "in": "query",
        "required": False,
        "description": "CSV only: start with a UTF-8 byte order mark (for Excel)",
        "schema": {"type": "boolean", "default": False},
    },
]
_SECTORS = frozenset(sector.value for sector in RoleSector)
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


@dataclass(frozen=True)
class LatestQuery:
    """The latest route's parameters, checked by hand (the route skips dependency injection)."""

    scenario: str
    measures: tuple[str, ...]
    roles: tuple[str, ...]
    sector: str | None
    format: str
    bom: bool


def _query_problem(field: str, code: str, message: str) -> dict[str, str]:
    return {"field": field, "in": "query", "code": code, "message": message}


def _latest_query(request: Request) -> LatestQuery:
    return parse_latest_query(request.query_params, request.headers.get("accept"))


def parse_latest_query(params: QueryParams, accept: str | None) -> LatestQuery:
    """The latest route's parameters checked (422) and its representation chosen (406)."""
    scenario = params.get("scenario", "baseline")
    measures = tuple(params.getlist("measure"))
    roles = tuple(params.getlist("role"))
    sector = params.get("sector")
    bom_text = params.get("bom", "false").lower()
    problems = []
    if not 1 <= len(scenario) <= 64:
        problems.append(_query_problem("scenario", "string_too_long", "1 to 64 characters"))
    for measure in measures:
        if measure not in get_args(Measure):
            problems.append(
                _query_problem("measure", "literal_error", f"one of {', '.join(get_args(Measure))}")
            )
    for role in roles:
        if not 1 <= len(role) <= 64:
            problems.append(_query_problem("role", "string_too_long", "1 to 64 characters"))
    if sector is not None and sector not in _SECTORS:
        problems.append(_query_problem("sector", "enum", f"one of {', '.join(sorted(_SECTORS))}"))
    if bom_text not in _TRUE + _FALSE:
        problems.append(_query_problem("bom", "bool_parsing", "true or false"))
    format_param = params.get("format")
    if format_param is not None and format_param not in ("json", "csv"):
        problems.append(_query_problem("format", "literal_error", "json or csv"))
    if problems:
        raise ValidationFailed("The request has invalid fields.", errors=problems)
    return LatestQuery(
        scenario=scenario,
        measures=measures,
        roles=roles,
        sector=sector,
        format=negotiate_header(accept, format_param, ("json", "csv")),
        bom=bom_text in _TRUE,
    )


_ETAGS: dict[tuple[object, ...], str] = {}


def latest_etag(
    run_id: uuid.UUID,
    area_code: str,
    stale: bool,
    query: LatestQuery,
    *,
    refresh: ProjectionRefresh | None = None,
) -> str:
    """The latest body's version: the run, the area, staleness (and the fresh run on its way)
    and the parameters (memoised, so a revalidation does not hash anything)."""
    pending = (str(refresh.run_id), refresh.status) if refresh is not None else None
    key = (run_id, area_code, stale, pending, query)
    etag = _ETAGS.get(key)
    if etag is None:
        if len(_ETAGS) > 10_000:
            _ETAGS.clear()
        etag = _ETAGS[key] = etag_of(
            str(run_id), area_code, stale, *(pending or ()), EXPORT_VERSION, query.__dict__
        )
    return etag


def latest_headers(etag: str, *, gzipped: bool) -> dict[str, str]:
    return {
        "ETag": f"W/{etag}" if gzipped else etag,
        "Vary": "Accept, Accept-Encoding",
        "Cache-Control": REVALIDATE,
    }


# Integrations poll this one route far more than any other: it gets a router of its own that
# the app registers first, so matching a request to it is not a walk past every other route.
hot_router = APIRouter(prefix="/v1", tags=["projections"])


async def _known_roles(
    request: Request, roles: Sequence[str], session_once: Callable[[], Awaitable[AsyncSession]]
) -> None:
    """422 for a role filter naming a role not in the catalogue; the catalogue's codes are
    remembered for a while, and read again only when a code is not among them."""
    wanted = {role for role in roles if role != ALL_ROLES}
    if not wanted:
        return
    cache = request.app.state.areas_cache
    known = cache.get(("role-codes",))
    if not isinstance(known, frozenset) or not wanted <= known:
        session = await session_once()
        known = frozenset(await roles_repo.all_codes(session))
        cache.put(("role-codes",), known)
    missing = wanted - known
    if missing:
        await service.check_roles(await session_once(), roles=sorted(missing))


def _latest_body(
    query: LatestQuery,
    run: ProjectionRun,
    area_code: str,
    rows: Sequence[tuple[Any, ...]],
    *,
    stale: bool,
    refresh: ProjectionRefresh | None,
) -> bytes:
    if query.format == "csv":
        return csv_bytes(repo.RESULT_EXPORT_COLUMNS, rows, bom=query.bom)
    return (
        LatestProjection(
            run=ProjectionRunRead.model_validate(run),
            area_code=area_code,
            stale=stale,
            refresh=refresh,
            results=[
                ProjectionResultRead.model_validate(
                    dict(zip(repo.RESULT_EXPORT_COLUMNS, row, strict=True))
                )
                for row in rows
            ],
        )
        .model_dump_json()
        .encode()
    )


@hot_router.get(
    "/areas/{code}/projections/latest",
    response_model=LatestProjection,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
        304: {"description": "Not modified"},
        **raises(AreaNotFound, ProjectionNotFound, ValidationFailed, UnknownRole, NotAcceptable),
    },
    summary="The newest succeeded projection covering an area, with its results there",
    description=(
        "Results are FTE rounded to 2 decimals, each row with its role's name and sector. "
        "Filter by `role`, `sector` and `measure`; CSV by `format=csv` or `Accept: text/csv`. "
        "Poll with If-None-Match: a 304 costs only a version check."
    ),
    openapi_extra={"parameters": _LATEST_PARAMETERS},
)
@requires_scope(KeyScope.read)
async def latest_projection(code: str, request: Request) -> Response:
    """The integrations' hot path, kept thin: the key, the area and the latest run come from
    short-lived caches and a finished run's body is served as stored bytes, so a repeat read
    (or a 304) makes no database round trip. Parameters are checked here, by hand, with the
    same problem+json answers as elsewhere."""
    principal = await get_principal(request)
    query = _latest_query(request)
    opened: list[AsyncSession] = []

    async def session_once() -> AsyncSession:
        if not opened:
            opened.append(request.app.state.sessionmaker())
        return opened[0]

    try:
        await _known_roles(request, query.roles, session_once)
        found = await service.latest_for_area(
            session_once,
            principal=principal,
            area_code=code,
            scenario=query.scenario,
            areas_cache=request.app.state.areas_cache,
            latest_cache=request.app.state.latest_cache,
        )
        if found is None:
            raise ProjectionNotFound("No finished projection covers this area yet.")
        run_id, area_code, stale, scopes = found
        # A stale run says so, with the fresh run on its way (if any), which the ETag follows.
        refresh = (
            await service.pending_refresh(
                await session_once(), scopes=scopes, scenario=query.scenario
            )
            if stale
            else None
        )
        etag = latest_etag(run_id, area_code, stale, query, refresh=refresh)
        gzipped = "gzip" in request.headers.get("accept-encoding", "")
        headers = latest_headers(etag, gzipped=gzipped)
        cached = not_modified(request, etag)
        if cached is not None:
            cached.headers.update(headers)
            return cached
        # A succeeded run's results never change, so the serialised body is kept by its ETag
        # (and its gzip form beside it, made once: the bytes are the same on every read).
        body_cache: BodyCache = request.app.state.body_cache
        content = body_cache.get(etag + ":gz" if gzipped else etag)
        if content is None:
            plain = body_cache.get(etag)
            if plain is None:
                session = await session_once()
                run = await service.visible_run(session, principal=principal, run_id=run_id)
                rows = await repo.list_results(
                    session,
                    repo.ResultFilter(
                        run_id=run_id,
                        area_codes=[area_code],
                        role_codes=query.roles or None,
                        sector=query.sector,
                        measures=query.measures or None,
                    ),
                )
                plain = _latest_body(query, run, area_code, rows, stale=stale, refresh=refresh)
                body_cache.put(etag, plain)
            content = plain
            if gzipped:
                content = gzip.compress(plain, compresslevel=6, mtime=0)
                body_cache.put(etag + ":gz", content)
    finally:
        for session in opened:
            await session.close()
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    if query.format == "csv":
        headers["Content-Disposition"] = f'attachment; filename="projection-{area_code}.csv"'
        return Response(content, media_type="text/csv; charset=utf-8", headers=headers)
    return Response(content, media_type="application/json", headers=headers)
