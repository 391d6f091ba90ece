"""Who the workforce is, what it is paid and what the data miss, per area; and the unpaid
workforce from Census 2021."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request, Response

from services.api.areas.errors import AreaNotFound, AreaTypeNotSupported
from services.api.deps import ReadKey, SessionDep, SettingsDep, Today
from services.api.http import XLSX_MEDIA_TYPE, csv_response, wants_csv
from services.api.insights import service, tables
from services.api.openapi import raises
from services.domain.insights import pay
from shared.schemas.insights import (
    AreaDataGaps,
    AreaEquality,
    AreaPayParity,
    AreaUnpaidCare,
    RoleEquivalence,
)

router = APIRouter(prefix="/v1", tags=["insights"])

_CSV: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}, XLSX_MEDIA_TYPE: {}}}}
_WORKFORCE_AREA = {**_CSV, **raises(AreaNotFound, AreaTypeNotSupported)}
AsAt = Annotated[date | None, Query(description="Default: today")]
Format = Annotated[str | None, Query(pattern="^(json|csv|xlsx)$")]


@router.get(
    "/role-equivalences",
    response_model=list[RoleEquivalence],
    summary="Roles the catalogue treats as equivalent across the NHS and social care",
)
async def list_role_equivalences(principal: ReadKey) -> list[RoleEquivalence]:
    return [
        RoleEquivalence(nhs_role=p.nhs_role, care_role=p.care_role, basis=p.basis, source=p.source)
        for p in pay.equivalences()
    ]


ATTRIBUTION = (
    "Contains public sector information licensed under the Open Government Licence v3.0. "
    "Source: Office for National Statistics / NHS Digital."
)


async def _download(
    request: Request,
    format: str | None,
    views: list[tables.Table],
    *,
    filename: str,
    about: list[tuple[str, str]],
) -> Response | None:
    """The CSV or xlsx form of a view when asked for (`format` or Accept), else None."""
    accept = request.headers.get("accept", "")
    if format == "xlsx" or (format is None and XLSX_MEDIA_TYPE in accept):
        # Building a workbook is CPU work: off the event loop, as every other xlsx.
        body = await anyio.to_thread.run_sync(
            tables.xlsx_bytes, views, [*about, ("licence", ATTRIBUTION)]
        )
        return Response(
            body,
            media_type=XLSX_MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{filename}.xlsx"'},
        )
    if wants_csv(request, format):
        header, rows = tables.csv_rows(views)
        return csv_response(header, rows, filename=f"{filename}.csv")
    return None


@router.get(
    "/areas/{code}/unpaid-care",
    response_model=AreaUnpaidCare,
    responses=_WORKFORCE_AREA,
    summary="Unpaid carers by hours a week (Census 2021): context, never paid supply",
)
async def area_unpaid_care(
    code: str, session: SessionDep, principal: ReadKey, request: Request, format: Format = None
) -> AreaUnpaidCare | Response:
    result = await service.area_unpaid_care(session, area_code=code)
    about = [
        ("method", result.method),
        ("source", result.source),
        ("units", "persons; hours a week"),
    ]
    download = await _download(
        request,
        format,
        tables.unpaid_care_tables(result),
        filename=f"unpaid-care-{result.area_code}",
        about=about,
    )
    return download or result


@router.get(
    "/areas/{code}/pay-parity",
    response_model=AreaPayParity,
    responses=_WORKFORCE_AREA,
    summary="Hourly pay of equivalent NHS and social care roles side by side",
)
async def area_pay_parity(
    code: str,
    session: SessionDep,
    principal: ReadKey,
    request: Request,
    today: Today,
    as_at: AsAt = None,
    format: Format = None,
) -> AreaPayParity | Response:
    result = await service.area_pay_parity(
        session, principal=principal, area_code=code, on=as_at or today
    )
    about = [("method", result.method), ("as_at", str(result.as_at)), ("units", "GBP an hour")]
    download = await _download(
        request,
        format,
        tables.pay_parity_tables(result),
        filename=f"pay-parity-{result.area_code}",
        about=about,
    )
    return download or result


@router.get(
    "/areas/{code}/data-gaps",
    response_model=AreaDataGaps,
    responses=_WORKFORCE_AREA,
    summary="What the data miss: who has not reported, fields left out, how old returns are",
)
async def area_data_gaps(
    code: str,
    session: SessionDep,
    principal: ReadKey,
    request: Request,
    today: Today,
    as_at: AsAt = None,
    format: Format = None,
) -> AreaDataGaps | Response:
    result = await service.area_data_gaps(
        session, principal=principal, area_code=code, on=as_at or today
    )
    about = [
        ("as_at", str(result.as_at)),
        ("thin coverage below", str(result.thin_coverage_below)),
        ("units", "organisations; lines; days"),
    ]
    download = await _download(
        request,
        format,
        tables.data_gaps_tables(result),
        filename=f"data-gaps-{result.area_code}",
        about=about,
    )
    return download or result


class Characteristic(StrEnum):
    ethnicity = "ethnicity"
    disability = "disability"
    sex = "sex"


class EqualityBy(StrEnum):
    sector = "sector"
    organisation = "organisation"
    role = "role"
    level = "level"


@router.get(
    "/areas/{code}/equality",
    response_model=AreaEquality,
    responses=_WORKFORCE_AREA,
    summary="Equality indicators: the workforce by ethnicity, disability or sex, small numbers "
    "suppressed",
)
async def area_equality(
    code: str,
    session: SessionDep,
    principal: ReadKey,
    settings: SettingsDep,
    request: Request,
    today: Today,
    characteristic: Characteristic = Characteristic.ethnicity,
    by: EqualityBy = EqualityBy.sector,
    as_at: AsAt = None,
    format: Format = None,
) -> AreaEquality | Response:
    result = await service.area_equality(
        session,
        principal=principal,
        area_code=code,
        on=as_at or today,
        characteristic=characteristic.value,
        by=by.value,
        threshold=settings.suppression_threshold,
    )
    about = [
        ("method", result.method),
        ("suppression threshold", str(result.suppression_threshold)),
        ("population source", result.population_source or ""),
        ("units", "persons; shares are fractions"),
    ]
    download = await _download(
        request,
        format,
        tables.equality_tables(result),
        filename=f"equality-{result.characteristic}-{result.by}-{result.area_code}",
        about=about,
    )
    return download or result
