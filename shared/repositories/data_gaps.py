"""Where the data are missing: organisations without a recent return."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import Organisation, ReturnStatus, WorkforceReturn


async def organisations_not_reporting(
    session: AsyncSession,
    *,
    organisation_filter: ColumnElement[bool],
    on: date,
    since: date,
    limit: int,
) -> tuple[Sequence[tuple[Organisation, date | None]], int]:
    """Open organisations whose latest current return (at or before `on`) is not after
    `since`, or who never made one: (organisation, date of its latest return), and how many."""
    latest = (
        select(
            WorkforceReturn.organisation_id.label("organisation_id"),
            func.max(WorkforceReturn.as_at).label("as_at"),
        )
        .where(WorkforceReturn.status == ReturnStatus.current, WorkforceReturn.as_at <= on)
        .group_by(WorkforceReturn.organisation_id)
        .subquery()
    )
    conditions = [
        organisation_filter,
        (Organisation.opened_on.is_(None)) | (Organisation.opened_on <= on),
        (latest.c.as_at.is_(None)) | (latest.c.as_at <= since),
    ]
    base = (
        select(Organisation, latest.c.as_at)
        .outerjoin(latest, latest.c.organisation_id == Organisation.id)
        .where(*conditions)
    )
    total = int(
        (await session.execute(select(func.count()).select_from(base.subquery()))).scalar_one()
    )
    rows = (
        await session.execute(base.order_by(Organisation.name, Organisation.id).limit(limit))
    ).all()
    return [(row[0], row[1]) for row in rows], total
