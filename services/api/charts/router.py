"""Projection charts as API resources: the same parameters as the results, drawn as SVG/PNG."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from services.api.charts import draw, service
from services.api.charts.errors import ResultsNotFound
from services.api.deps import ReadKey, SessionDep
from services.api.openapi import raises
from services.api.projections.errors import ProjectionNotFound, RunNotFinished
from shared.errors import ValidationFailed
from shared.vocab.measures import Measure

router = APIRouter(prefix="/v1/projections", tags=["projections"])

_DESCRIPTION = (
    "Fan charts of a succeeded run for one area and role: the p10-p90 band of the uncertain "
    "runs, the p50 (dashed) and the principal projection (solid), in FTE by year, with the "
    "scenario, run and source on the chart. Without `measure`, demand, supply and gap are "
    "drawn as three panels. The area defaults to the run's scope (or, for an ICS key reading "
    "an England run, its own ICB); the role to all roles. A run still computing is 409 "
    "`run_not_finished`; an area or role without results 404 `results_not_found`."
)


def _responses(media_type: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"content": {media_type: {"schema": {"type": "string", "format": "binary"}}}},
        **raises(ProjectionNotFound, ResultsNotFound, RunNotFinished, ValidationFailed),
    }


async def _chart(
    fmt: draw.ImageFormat,
    run_id: uuid.UUID,
    session: SessionDep,
    principal: ReadKey,
    area: str | None,
    role: str | None,
    year_from: int | None,
    year_to: int | None,
    measure: str | None,
) -> Response:
    data = await service.fan_data(
        session,
        principal=principal,
        run_id=run_id,
        area=area,
        role=role,
        measures=[measure] if measure else list(service.DEFAULT_MEASURES),
        year_from=year_from,
        year_to=year_to,
    )
    # Drawing is CPU work: off the event loop.
    body = await asyncio.to_thread(service.fan_chart, data, fmt)
    filename = f"projection-{run_id}-{data.area_code}-{data.role_code}.{fmt}"
    return Response(
        body,
        media_type=draw.MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'inline; filename="{filename}"',
            # A succeeded run never changes; a stale one is replaced by a new run, not changed.
            "Cache-Control": "private, max-age=300",
        },
    )


AreaQuery = Annotated[str | None, Query(max_length=9, description="Area code (default: scope)")]
RoleQuery = Annotated[str | None, Query(max_length=64, description="Role code (default: all)")]
YearQuery = Annotated[int | None, Query(ge=1900, le=2200)]
MeasureQuery = Annotated[
    Measure | None, Query(description="One measure (default: demand, supply and gap)")
]


@router.get(
    "/{run_id}/chart.svg",
    response_class=Response,
    responses=_responses("image/svg+xml"),
    summary="A run's fan chart as SVG",
    description=_DESCRIPTION,
)
async def chart_svg(
    run_id: uuid.UUID,
    session: SessionDep,
    principal: ReadKey,
    area: AreaQuery = None,
    role: RoleQuery = None,
    year_from: YearQuery = None,
    year_to: YearQuery = None,
    measure: MeasureQuery = None,
) -> Response:
    return await _chart("svg", run_id, session, principal, area, role, year_from, year_to, measure)


@router.get(
    "/{run_id}/chart.png",
    response_class=Response,
    responses=_responses("image/png"),
    summary="A run's fan chart as PNG",
    description=_DESCRIPTION,
)
async def chart_png(
    run_id: uuid.UUID,
    session: SessionDep,
    principal: ReadKey,
    area: AreaQuery = None,
    role: RoleQuery = None,
    year_from: YearQuery = None,
    year_to: YearQuery = None,
    measure: MeasureQuery = None,
) -> Response:
    return await _chart("png", run_id, session, principal, area, role, year_from, year_to, measure)
