"""Who the workforce is, what it is paid and what the data miss, for one area."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.areas.access import workforce_area
from services.api.areas.errors import AreaNotFound, AreaTypeNotSupported
from services.domain.insights import census, disclosure, equality, gaps, pay
from services.domain.insights.unpaid_care import unpaid_care
from shared.models import AreaType
from shared.repositories import areas as areas_repo
from shared.repositories import insights as repo
from shared.repositories import roles as roles_repo
from shared.schemas.insights import (
    AreaDataGaps,
    AreaEquality,
    AreaPayParity,
    AreaUnpaidCare,
    CategoryFigure,
    CoverageRow,
    EqualityCoverage,
    EqualityGroup,
    FieldGap,
    PayParityPair,
    PayRole,
    ProjectionFlag,
    ReturnAge,
    UnpaidCareBand,
)
from shared.schemas.keys import Principal
from shared.schemas.scenario_parameters import HOURS_PER_FTE_WEEK
from shared.vocab.characteristics import BREAKDOWNS, DISABILITY, ETHNICITY, SEX

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
    "pay": ("median_hourly_pay", "mean_hourly_pay"),
    **{name: columns for name, columns in BREAKDOWNS.items()},
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
        columns=("headcount", "median_hourly_pay", "mean_hourly_pay"),
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


EQUALITY_METHOD = (
    "Each organisation's latest current return at or before as_at; staff on lines that give "
    "the breakdown, by group. Shares are of staff who stated the characteristic, with 95% "
    "Wilson intervals, in the manner of WRES indicator 1 and its WDES equivalent (levels are "
    "the roles' career framework levels). Ethnicity and disability are set beside the area's "
    "residents in Census 2021 (TS021 and TS038; all ages: no local table of either by age was "
    "found, so the comparison is with the whole population, children and older people "
    "included), as a representation ratio. Counts "
    "under the threshold are suppressed, and further counts are hidden so that none can be "
    "recovered from totals; shares whose denominator would reveal a hidden count are hidden."
)
_LABELS = {"ethnicity": ETHNICITY, "disability": DISABILITY, "sex": SEX}
# The Census table each characteristic is set beside, and its source; sex has none.
_POPULATION: dict[str, tuple[Callable[[], Mapping[str, Mapping[str, int]]], str]] = {
    "ethnicity": (census.ethnic_group_by_lad, census.ETHNIC_GROUP_SOURCE),
    "disability": (census.disability_by_lad, census.DISABILITY_SOURCE),
}


async def area_equality(
    session: AsyncSession,
    *,
    principal: Principal,
    area_code: str,
    on: date,
    characteristic: str,
    by: str,
    threshold: int,
) -> AreaEquality:
    """Representation by ethnicity, disability or sex in an area's workforce, by group."""
    area, area_filter = await workforce_area(session, principal=principal, area_code=area_code)
    columns = BREAKDOWNS[characteristic]
    codes = list(_LABELS[characteristic])
    lines = await repo.latest_lines(
        session,
        organisation_filter=area_filter,
        on=on,
        columns=("headcount", *columns),
    )
    roles = {r.code: r for r in await roles_repo.all_roles(session)}
    names = await repo.organisation_names(
        session, ids=sorted({line["organisation_id"] for line in lines}, key=str)
    )

    def group_of(line: dict[str, object]) -> tuple[str, str]:
        role = roles.get(str(line["role_code"]))
        if by == "sector":
            return str(line["sector"]), str(line["sector"]).replace("_", " ")
        if by == "organisation":
            org = str(line["organisation_id"])
            return org, names.get(org, org)
        if by == "role":
            return str(line["role_code"]), role.name if role else str(line["role_code"])
        level = role.career_framework_level if role else None
        return (
            (f"level_{level}", f"Career framework level {level}")
            if level is not None
            else ("level_unknown", "Level not recorded")
        )

    counts: dict[tuple[str, str], int] = {}
    labels: dict[str, str] = {}
    with_breakdown = [line for line in lines if line[columns[0]] is not None]
    for line in with_breakdown:
        key, label = group_of(line)
        labels[key] = label
        for code, column in zip(codes, columns, strict=True):
            counts[(key, code)] = counts.get((key, code), 0) + int(line[column] or 0)
    rows = sorted(labels)
    full, hidden = disclosure.suppress(rows, codes, counts, threshold=threshold)
    population: dict[str, int] = {}
    comparator = _POPULATION.get(characteristic)
    if comparator is not None:
        lads = await areas_repo.lad_codes_in(session, area=area)
        population = census.sum_over(comparator[0](), lads)

    def group(key: str, label: str) -> EqualityGroup:
        staff = hidden.value(full, (key, disclosure.TOTAL))
        not_stated = (key, "not_stated")
        stated = full[(key, disclosure.TOTAL)] - full[not_stated]
        # A share reveals its denominator: only when "not stated" is shown.
        shares_shown = not_stated not in hidden.hidden
        figures = []
        for code in codes:
            count = hidden.value(full, (key, code))
            interval = (
                equality.wilson(full[(key, code)], stated)
                if shares_shown and count is not None and code != "not_stated"
                else None
            )
            population_share = (
                population[code] / population["total"]
                if population.get("total") and code in population
                else None
            )
            figures.append(
                CategoryFigure(
                    category=code,
                    label=_LABELS[characteristic][code],
                    count=count,
                    share_of_stated=interval.share if interval else None,
                    lower=interval.lower if interval else None,
                    upper=interval.upper if interval else None,
                    population_share=population_share,
                    representation_ratio=equality.representation_ratio(
                        interval.share if interval else None, population_share
                    ),
                    suppressed=count is None,
                )
            )
        return EqualityGroup(group=key, label=label, staff=staff, categories=figures)

    return AreaEquality(
        area_code=area.code,
        as_at=on,
        characteristic=characteristic,
        by=by,
        suppression_threshold=threshold,
        groups=[group(key, labels[key]) for key in rows],
        total=group(disclosure.TOTAL, "All staff"),
        coverage=EqualityCoverage(
            lines=len(lines),
            lines_with_breakdown=len(with_breakdown),
            headcount=sum(int(line["headcount"]) for line in lines),
            headcount_with_breakdown=sum(int(line["headcount"]) for line in with_breakdown),
        ),
        population_source=comparator[1] if comparator is not None else None,
        method=EQUALITY_METHOD,
    )
