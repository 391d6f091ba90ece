"""Queries behind the equality, pay-parity and data-gaps views: each organisation's latest
current return in an area, its lines, and who has reported."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import Organisation, ReturnLine, WorkforceReturn
from shared.models.workforce_return import ReturnStatus
from shared.repositories.returns import latest_dates


async def latest_lines(
    session: AsyncSession,
    *,
    organisation_filter: Any,
    on: date,
    columns: Sequence[str],
    role_codes: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """The lines of each organisation's latest current return at or before `on`, with the
    organisation's id, sector and kind, the return's date and the named line columns."""
    latest = latest_dates(organisation_filter=organisation_filter, on=on)
    query = (
        select(
            WorkforceReturn.organisation_id,
            WorkforceReturn.as_at,
            Organisation.sector,
            Organisation.kind,
            ReturnLine.role_code,
            *(getattr(ReturnLine, name) for name in columns),
        )
        .join(WorkforceReturn, WorkforceReturn.id == ReturnLine.return_id)
        .join(
            latest,
            and_(
                latest.c.organisation_id == WorkforceReturn.organisation_id,
                latest.c.as_at == WorkforceReturn.as_at,
            ),
        )
        .join(Organisation, Organisation.id == WorkforceReturn.organisation_id)
        .where(WorkforceReturn.status == ReturnStatus.current)
        .order_by(WorkforceReturn.organisation_id, ReturnLine.role_code)
    )
    if role_codes is not None:
        query = query.where(ReturnLine.role_code.in_(list(role_codes)))
    result = await session.execute(query)
    return [dict(row._mapping) for row in result]


@dataclass(frozen=True)
class OrganisationReporting:
    organisation_id: Any
    sector: str
    kind: str
    latest_as_at: date | None


async def organisations_reporting(
    session: AsyncSession, *, organisation_filter: Any, on: date
) -> list[OrganisationReporting]:
    """Every organisation registered (open) at `on` in the filter, with its latest current
    return date at or before `on` (None if it never reported)."""
    latest = latest_dates(organisation_filter=organisation_filter, on=on)
    query = (
        select(Organisation.id, Organisation.sector, Organisation.kind, latest.c.as_at)
        .outerjoin(latest, latest.c.organisation_id == Organisation.id)
        .where(organisation_filter)
        .where((Organisation.opened_on.is_(None)) | (Organisation.opened_on <= on))
        .order_by(Organisation.id)
    )
    rows = (await session.execute(query)).all()
    return [
        OrganisationReporting(
            organisation_id=row[0], sector=str(row[1]), kind=str(row[2]), latest_as_at=row[3]
        )
        for row in rows
    ]


async def organisation_names(session: AsyncSession, *, ids: Sequence[Any]) -> dict[str, str]:
    """Names of the organisations with these ids, by id as text."""
    if not ids:
        return {}
    query = select(Organisation.id, Organisation.name).where(Organisation.id.in_(list(ids)))
    return {str(row[0]): row[1] for row in (await session.execute(query)).all()}
