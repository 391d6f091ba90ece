"""Projection runs: request (202 + job), status, results (JSON or CSV), explanation, latest."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.areas.errors import AreaNotFound
from services.api.cache import BodyCache
from services.api.deps import AdminKey, ReadKey, SessionDep, get_principal
from services.api.gate import requires_scope
from services.api.http import PageDep, csv_response, etag_of, not_modified, wants_csv
from services.api.openapi import raises
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
    RunsNotComparable,
    RunsNotPaired,
    UnknownGroup,
    YearOutOfRange,
)
from services.api.scenarios.errors import UnknownScenario
from shared.errors import ValidationFailed
from shared.models import ENGLAND_CODE, KeyScope
from shared.repositories import projections as repo
from shared.schemas.common import Page
from shared.schemas.projections import (
    LatestProjection,
    ProjectionComparison,
    ProjectionCreate,
    ProjectionExplainRead,
    ProjectionResultRead,
    ProjectionRunRead,
)
from shared.vocab.measures import Measure

router = APIRouter(tags=["projections"])

RESULT_HEADER = ("area_code", "role_code", "measure", "year", "principal", "p10", "p50", "p90")


@router.post(
    "/v1/projections",
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
    "/v1/projections",
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
    if principal.organisation_id is not None:
        items: list[ProjectionRunRead] = []
        return Page[ProjectionRunRead](items=items, total=0, page=page.page, limit=page.limit)
    runs, total = await repo.list_runs(
        session,
        ics_code=principal.ics_code,
        visible_england=True,
        scope=scope,
        status=status,
        scenario=scenario,
        offset=page.offset,
        limit=page.limit,
    )
    return Page[ProjectionRunRead](
        items=[ProjectionRunRead.model_validate(run) for run in runs],
        total=total,
        page=page.page,
        limit=page.limit,
    )


XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# Registered before /v1/projections/{run_id}, which would otherwise read "compare" as an id.
@router.get(
    "/v1/projections/compare",
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
            comparison_service.xlsx_bytes(comparison),
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
    "/v1/projections/{run_id}",
    response_model=ProjectionRunRead,
    summary="A run's status",
    responses=raises(ProjectionNotFound),
)
async def get_projection(
    run_id: uuid.UUID, session: SessionDep, principal: ReadKey
) -> ProjectionRunRead:
    run = await service.visible_run(session, principal=principal, run_id=run_id)
    return ProjectionRunRead.model_validate(run)


@router.get(
    "/v1/projections/{run_id}/results",
    response_model=Page[ProjectionResultRead],
    responses={200: {"content": {"text/csv": {}}}, **raises(ProjectionNotFound, ValidationFailed)},
    summary="A run's results in FTE: principal and p10/p50/p90 by area, role, measure and year",
)
async def get_results(
    run_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: ReadKey,
    page: PageDep,
    area: Annotated[str | None, Query(max_length=9)] = None,
    role: Annotated[str | None, Query(max_length=64)] = None,
    year_from: Annotated[int | None, Query(ge=1900, le=2200)] = None,
    year_to: Annotated[int | None, Query(ge=1900, le=2200)] = None,
    measure: Annotated[Measure | None, Query()] = None,
    format: Annotated[Literal["json", "csv"] | None, Query()] = None,
) -> Page[ProjectionResultRead] | Response:
    run = await service.visible_run(session, principal=principal, run_id=run_id)
    allowed = await service.allowed_areas(session, principal=principal, run=run)
    areas = service.restrict(area, allowed)
    csv_wanted = wants_csv(request, format)
    rows, total = (
        await repo.list_results(
            session,
            run_id=run_id,
            area_codes=areas,
            role_code=role,
            year_from=year_from,
            year_to=year_to,
            measure=measure,
            offset=0 if csv_wanted else page.offset,
            limit=None if csv_wanted else page.limit,
        )
        if areas != []
        else ([], 0)
    )
    if csv_wanted:
        return csv_response(
            RESULT_HEADER,
            (
                (r.area_code, r.role_code, r.measure, r.year, r.principal, r.p10, r.p50, r.p90)
                for r in rows
            ),
            filename=f"projection-{run_id}.csv",
        )
    return Page[ProjectionResultRead](
        items=[ProjectionResultRead.model_validate(r) for r in rows],
        total=total,
        page=page.page,
        limit=page.limit,
    )


@router.get(
    "/v1/projections/{run_id}/explain",
    response_model=ProjectionExplainRead,
    summary="What changed the gap after sharing between two years (FTE by component)",
    responses=raises(
        ProjectionNotFound,
        ExplanationNotFound,
        ExplanationByYearUnavailable,
        YearOutOfRange,
        RoleAndSector,
    ),
)
async def get_explain(
    run_id: uuid.UUID,
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
) -> ProjectionExplainRead:
    """Sequential switching of the drivers of change, so the gross contributions add up
    exactly to the change in gap after sharing; `net_fte` sums them into net demand, supply
    and sharing effects. A positive figure widens the gap (more shortfall)."""
    return await service.explain(
        session,
        principal=principal,
        run_id=run_id,
        area=area,
        role=role,
        sector=sector,
        year_from=year_from,
        year_to=year_to,
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
        "schema": {"type": "string", "enum": list(get_args(Measure))},
    },
]


# Integrations poll this one route far more than any other: it gets a router of its own that
# the app registers first, so matching a request to it is not a walk past every other route.
hot_router = APIRouter(tags=["projections"])


@hot_router.get(
    "/v1/areas/{code}/projections/latest",
    response_model=LatestProjection,
    responses={
        304: {"description": "Not modified"},
        **raises(AreaNotFound, ProjectionNotFound, ValidationFailed),
    },
    summary="The newest succeeded projection covering an area, with its results there",
    openapi_extra={"parameters": _LATEST_PARAMETERS},
)
@requires_scope(KeyScope.read)
async def latest_projection(code: str, request: Request) -> Response:
    """The integrations' hot path, kept thin: the key, the area and the latest run come from
    short-lived caches and a finished run's body is served as stored bytes, so a repeat read
    (or a 304) makes no database round trip. Parameters are checked here, by hand, with the
    same problem+json answers as elsewhere."""
    principal = await get_principal(request)
    scenario = request.query_params.get("scenario", "baseline")
    measure = request.query_params.get("measure")
    problems = []
    if not 1 <= len(scenario) <= 64:
        problems.append(
            {
                "field": "scenario",
                "in": "query",
                "code": "string_too_long",
                "message": "1 to 64 characters",
            }
        )
    if measure is not None and measure not in get_args(Measure):
        problems.append(
            {
                "field": "measure",
                "in": "query",
                "code": "literal_error",
                "message": f"one of {', '.join(get_args(Measure))}",
            }
        )
    if problems:
        raise ValidationFailed("The request has invalid fields.", errors=problems)
    opened: list[AsyncSession] = []

    async def session_once() -> AsyncSession:
        if not opened:
            opened.append(request.app.state.sessionmaker())
        return opened[0]

    try:
        found = await service.latest_for_area(
            session_once,
            principal=principal,
            area_code=code,
            scenario=scenario,
            areas_cache=request.app.state.areas_cache,
            latest_cache=request.app.state.latest_cache,
        )
        if found is None:
            raise ProjectionNotFound("No finished projection covers this area yet.")
        run_id, area_code, stale = found
        etag = etag_of(str(run_id), area_code, measure, stale)
        cached = not_modified(request, etag)
        if cached is not None:
            return cached
        # A succeeded run's results never change, so the serialised body is kept by its ETag.
        body_cache: BodyCache = request.app.state.body_cache
        content = body_cache.get(etag)
        if content is None:
            session = await session_once()
            run = await service.visible_run(session, principal=principal, run_id=run_id)
            rows, _ = await repo.list_results(
                session, run_id=run_id, area_codes=[area_code], measure=measure
            )
            content = (
                LatestProjection(
                    run=ProjectionRunRead.model_validate(run),
                    area_code=area_code,
                    results=[ProjectionResultRead.model_validate(r) for r in rows],
                )
                .model_dump_json()
                .encode()
            )
            body_cache.put(etag, content)
    finally:
        for session in opened:
            await session.close()
    return Response(content, media_type="application/json", headers={"ETag": etag})
