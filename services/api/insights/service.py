"""Who the workforce is, what it is paid and what the data miss, for one area."""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.areas.access import workforce_area
from services.api.areas.errors import AreaNotFound, AreaTypeNotSupported
from services.domain.insights import census, gaps, pay
from services.domain.insights.unpaid_care import unpaid_care
from shared.models import AreaType
from shared.repositories import areas as areas_repo
from shared.repositories import insights as repo
from shared.repositories import roles as roles_repo
from shared.schemas.insights import (
    AreaDataGaps,
    AreaPayParity,
    AreaUnpaidCare,
    CoverageRow,
    FieldGap,
    PayParityPair,
    PayRole,
    ProjectionFlag,
    ReturnAge,
    UnpaidCareBand,
)
from shared.schemas.keys import Principal
from shared.schemas.scenario_parameters import HOURS_PER_FTE_WEEK

UNPAID_METHOD = (
    "Census 2021 counts of residents aged 5+ by hours of unpaid care a week, added up over the "
    "area's LADs. Each band is valued at its assumed hours a week (the 50-or-more band is "
    "open-ended: 65 is an assumption) and 37.5 hours a week make one FTE. Unpaid care is "
    "context and a scenario lever, never counted as paid supply."
)
PAY_METHOD = (
    "Each organisation's latest current return at or before as_at; a line's pay is its median "
    "hourly pay, or its mean where no median was given; a role's pay is those figures weighted "
    "by the lines' headcount. Pairs are the catalogue's equivalent roles (GET "
    "/v1/role-equivalences)."
)
# The optional parts of a return line whose absence the data-gaps report counts.
OPTIONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "leavers_to_health_care_12m": ("leavers_to_health_care_12m",),
    "pay": ("mean_hourly_pay",),
}


async def area_unpaid_care(session: AsyncSession, *, area_code: str) -> AreaUnpaidCare:
    """Unpaid carers by hours band in a LAD, an ICB or England (public Census figures)."""
    area = await areas_repo.get(session, code=area_code.strip().upper())
    if area is None:
        raise AreaNotFound(f"No area {area_code}.")
    if area.type == AreaType.county:
        raise AreaTypeNotSupported(
            "Unpaid care is given for LADs, ICBs and England, not counties.", field="code"
        )
    lads = await areas_repo.lad_codes_in(session, area=area)
    figures = unpaid_care(census.sum_over(census.unpaid_care_by_lad(), lads))
    residents = figures.residents_5_plus
    return AreaUnpaidCare(
        area_code=area.code,
        area_name=area.name,
        residents_5_plus=residents,
        carers=figures.carers,
        carer_share=figures.carers / residents if residents else None,
        bands=[
            UnpaidCareBand(
                band=b.band,
                label=b.label,
                persons=b.persons,
                share_of_residents=b.persons / residents if residents else None,
                assumed_hours_per_week=b.assumed_hours_per_week,
                hours_per_week=b.hours_per_week,
            )
            for b in figures.bands
        ],
        hours_per_week=figures.hours_per_week,
        hours_per_fte_week=HOURS_PER_FTE_WEEK,
        fte_equivalent=round(figures.fte_equivalent, 2),
        method=UNPAID_METHOD,
        source=census.UNPAID_CARE_SOURCE,
    )


async def area_pay_parity(
    session: AsyncSession, *, principal: Principal, area_code: str, on: date
) -> AreaPayParity:
    """Hourly pay of each pair of equivalent roles in an area, and the difference."""
    area, area_filter = await workforce_area(session, principal=principal, area_code=area_code)
    pairs = pay.equivalences()
    codes = sorted({p.nhs_role for p in pairs} | {p.care_role for p in pairs})
    lines = await repo.latest_lines(
        session,
        organisation_filter=area_filter,
        on=on,
        columns=("headcount", "mean_hourly_pay"),
        role_codes=codes,
    )
    roles = {r.code: r for r in await roles_repo.all_roles(session)}

    def role(code: str) -> PayRole:
        figures = pay.role_pay(code, (line for line in lines if line["role_code"] == code))
        known = roles.get(code)
        return PayRole(
            role_code=code,
            role_name=known.name if known else code,
            sector=str(known.sector) if known else "",
            returns=figures.returns,
            headcount=figures.headcount,
            hourly_pay=figures.hourly_pay,
        )

    out = []
    for pair in pairs:
        nhs, care = role(pair.nhs_role), role(pair.care_role)
        known = roles.get(pair.nhs_role)
        out.append(
            PayParityPair(
                nhs=nhs,
                care=care,
                difference_per_hour=pay.difference(
                    pay.RolePay(nhs.role_code, nhs.returns, nhs.headcount, nhs.hourly_pay),
                    pay.RolePay(care.role_code, care.returns, care.headcount, care.hourly_pay),
                ),
                basis=pair.basis,
                nhs_pay_band=known.pay_band if known else None,
                source=pair.source,
            )
        )
    return AreaPayParity(area_code=area.code, as_at=on, pairs=out, method=PAY_METHOD)


def _coverage_rows(rows: list[gaps.Coverage]) -> list[CoverageRow]:
    return [
        CoverageRow(
            group=c.group,
            registered=c.registered,
            reporting=c.reporting,
            never_reported=c.never_reported,
            coverage=c.rate,
            thin=c.thin,
        )
        for c in rows
    ]


async def area_data_gaps(
    session: AsyncSession, *, principal: Principal, area_code: str, on: date
) -> AreaDataGaps:
    """Who has reported, what the returns leave out and how old they are, for an area."""
    area, area_filter = await workforce_area(session, principal=principal, area_code=area_code)
    found = await repo.organisations_reporting(session, organisation_filter=area_filter, on=on)
    reporters = [gaps.Reporter(r.sector, r.kind, r.latest_as_at) for r in found]
    by_sector = gaps.coverage(reporters, on=on, key=lambda r: r.sector)
    by_kind = gaps.coverage(reporters, on=on, key=lambda r: r.kind)
    columns = sorted({c for group in OPTIONAL_FIELDS.values() for c in group})
    lines = await repo.latest_lines(
        session, organisation_filter=area_filter, on=on, columns=columns
    )
    missing = gaps.missing_fields(lines, OPTIONAL_FIELDS)
    age = gaps.ages((r.latest_as_at for r in reporters if r.latest_as_at is not None), on=on)
    return AreaDataGaps(
        area_code=area.code,
        as_at=on,
        thin_coverage_below=gaps.THIN_COVERAGE,
        by_sector=_coverage_rows(by_sector),
        by_kind=_coverage_rows(by_kind),
        fields=[
            FieldGap(field=m.field, lines=m.lines, missing=m.missing, missing_share=m.share)
            for m in missing
        ],
        age=ReturnAge(
            returns=age.returns,
            median_age_days=age.median_days,
            oldest_as_at=age.oldest,
            older_than_12_months=age.older_than_year,
        ),
        projection_flags=[
            ProjectionFlag(
                sector=c.group,
                coverage=c.rate,
                message=(
                    f"Only {c.reporting} of {c.registered} {c.group} organisations have a return "
                    "in the last 12 months: projections for this sector rest on thin inputs."
                ),
            )
            for c in by_sector
            if c.thin
        ],
    )
