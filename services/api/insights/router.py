"""Who the workforce is, what it is paid and what the data miss, per area; and the unpaid
workforce from Census 2021."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from services.api.deps import ReadKey, SessionDep
from services.api.http import csv_response, wants_csv
from services.api.insights import service
from services.domain.insights import pay
from shared.db.base import utcnow
from shared.schemas.insights import (
    AreaDataGaps,
    AreaPayParity,
    AreaUnpaidCare,
    RoleEquivalence,
)

router = APIRouter(prefix="/v1", tags=["insights"])

_CSV: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}}}
AsAt = Annotated[date | None, Query(description="Default: today")]
Format = Annotated[str | None, Query(pattern="^(json|csv)$")]


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


@router.get(
    "/areas/{code}/unpaid-care",
    response_model=AreaUnpaidCare,
    responses=_CSV,
    summary="Unpaid carers by hours a week (Census 2021): context, never paid supply",
)
async def area_unpaid_care(
    code: str, session: SessionDep, principal: ReadKey, request: Request, format: Format = None
) -> AreaUnpaidCare | Response:
    result = await service.area_unpaid_care(session, area_code=code)
    if wants_csv(request, format):
        header = [
            "area_code",
            "band",
            "label",
            "persons",
            "assumed_hours_per_week",
            "hours_per_week",
        ]
        rows = [
            [
                result.area_code,
                b.band,
                b.label,
                b.persons,
                b.assumed_hours_per_week,
                b.hours_per_week,
            ]
            for b in result.bands
        ]
        return csv_response(header, rows, filename=f"unpaid-care-{result.area_code}.csv")
    return result


@router.get(
    "/areas/{code}/pay-parity",
    response_model=AreaPayParity,
    responses=_CSV,
    summary="Hourly pay of equivalent NHS and social care roles side by side",
)
async def area_pay_parity(
    code: str,
    session: SessionDep,
    principal: ReadKey,
    request: Request,
    as_at: AsAt = None,
    format: Format = None,
) -> AreaPayParity | Response:
    result = await service.area_pay_parity(
        session, principal=principal, area_code=code, on=as_at or utcnow().date()
    )
    if wants_csv(request, format):
        header = [
            "area_code",
            "nhs_role",
            "nhs_hourly_pay",
            "nhs_returns",
            "care_role",
            "care_hourly_pay",
            "care_returns",
            "difference_per_hour",
        ]
        rows = [
            [
                result.area_code,
                p.nhs.role_code,
                p.nhs.hourly_pay,
                p.nhs.returns,
                p.care.role_code,
                p.care.hourly_pay,
                p.care.returns,
                p.difference_per_hour,
            ]
            for p in result.pairs
        ]
        return csv_response(header, rows, filename=f"pay-parity-{result.area_code}.csv")
    return result


@router.get(
    "/areas/{code}/data-gaps",
    response_model=AreaDataGaps,
    responses=_CSV,
    summary="What the data miss: who has not reported, fields left out, how old returns are",
)
async def area_data_gaps(
    code: str,
    session: SessionDep,
    principal: ReadKey,
    request: Request,
    as_at: AsAt = None,
    format: Format = None,
) -> AreaDataGaps | Response:
    result = await service.area_data_gaps(
        session, principal=principal, area_code=code, on=as_at or utcnow().date()
    )
    if wants_csv(request, format):
        header = ["area_code", "section", "item", "registered_or_lines", "count", "share"]
        rows: list[list[Any]] = []
        for section, coverage_rows in (("sector", result.by_sector), ("kind", result.by_kind)):
            rows += [
                [
                    result.area_code,
                    f"coverage_{section}",
                    c.group,
                    c.registered,
                    c.reporting,
                    c.coverage,
                ]
                for c in coverage_rows
            ]
        rows += [
            [result.area_code, "missing_field", f.field, f.lines, f.missing, f.missing_share]
            for f in result.fields
        ]
        return csv_response(header, rows, filename=f"data-gaps-{result.area_code}.csv")
    return result
