"""An area's workforce (LAD, ICB or England) from each organisation's latest return: by role,
with rates and how many organisations report."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.areas.access import workforce_area
from shared.repositories import returns as repo
from shared.schemas.keys import Principal
from shared.schemas.returns import AreaWorkforce, Completeness, WorkforceByRole

WORKING_DAYS_PER_YEAR = 225
FTE_PLACES, RATE_PLACES = 2, 4
ALL_ROLES_NAME = "All roles"


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, RATE_PLACES) if denominator else None


def _rates(
    role_code: str,
    role_name: str,
    sector: str | None,
    organisations_count: int,
    headcount: int,
    fte: float,
    vacant: float,
    leavers: int,
    sickness_days: float,
    agency: float,
    bank: float,
) -> WorkforceByRole:
    posts = fte + vacant
    staffing = fte + bank + agency
    return WorkforceByRole(
        role_code=role_code,
        role_name=role_name,
        sector=sector,
        organisations=organisations_count,
        headcount=headcount,
        fte_in_post=round(fte, FTE_PLACES),
        vacant_fte=round(vacant, FTE_PLACES),
        vacancy_rate=_ratio(vacant, posts),
        turnover_rate=_ratio(leavers, headcount),
        sickness_rate=_ratio(sickness_days, headcount * WORKING_DAYS_PER_YEAR),
        agency_share=_ratio(agency, staffing),
    )


async def area_workforce(
    session: AsyncSession,
    *,
    principal: Principal,
    area_code: str,
    on: date,
    sector: str | None = None,
) -> AreaWorkforce:
    """Latest returns in an area (LAD, ICB or England) by role, with completeness."""
    area, area_filter = await workforce_area(session, principal=principal, area_code=area_code)
    aggregates = await repo.aggregate_latest(
        session, organisation_filter=area_filter, on=on, sector=sector
    )
    registered = await repo.count_registered(session, organisation_filter=area_filter, on=on)
    reporting = await repo.count_reporting(
        session, organisation_filter=area_filter, on=on, since=on - timedelta(days=365)
    )
    roles = [
        _rates(
            a.role_code,
            a.role_name,
            a.sector,
            a.organisations,
            a.headcount,
            a.fte_in_post,
            a.vacant_fte,
            a.leavers_12m,
            a.sickness_days_12m,
            a.agency_fte,
            a.bank_fte,
        )
        for a in aggregates
    ]
    # Every organisation with a return counts once in the total, whatever roles it reported.
    reporting_any = await repo.count_reporting(session, organisation_filter=area_filter, on=on)
    total = _rates(
        "all",
        ALL_ROLES_NAME,
        None,
        reporting_any,
        sum(a.headcount for a in aggregates),
        sum(a.fte_in_post for a in aggregates),
        sum(a.vacant_fte for a in aggregates),
        sum(a.leavers_12m for a in aggregates),
        sum(a.sickness_days_12m for a in aggregates),
        sum(a.agency_fte for a in aggregates),
        sum(a.bank_fte for a in aggregates),
    )
    return AreaWorkforce(
        area_code=area.code,
        as_at=on,
        completeness=Completeness(
            organisations_registered=registered,
            organisations_reporting=reporting,
            rate=reporting / registered if registered else None,
        ),
        total=total,
        roles=roles,
    )
