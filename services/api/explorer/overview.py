"""The area overview: workforce by sector and role, completeness and data gaps, need
indicators and the population trend. Every figure comes through the API's own services, so a
key sees here exactly what it could read through the API."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import ColumnElement, true
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.areas import service as areas
from services.api.areas import workforce as workforce_service
from shared.models import AreaType, Organisation, Role
from shared.reference import files as reference_files
from shared.repositories import data_gaps
from shared.repositories import population as population_repo
from shared.repositories import roles as roles_repo
from shared.schemas.areas import AreaDetail
from shared.schemas.keys import Principal
from shared.schemas.returns import AreaWorkforce, WorkforceByRole

SECTOR_LABELS = {
    "health": "Health (NHS)",
    "social_care": "Adult social care",
    "primary_care": "Primary care",
    "local_government": "Local government",
    "voluntary": "Voluntary sector",
    "integrated": "Integrated roles",
}


def sector_label(sector: str) -> str:
    """A sector as the pages name it ("Adult social care" for `social_care`)."""
    return SECTOR_LABELS.get(sector, sector.replace("_", " ").capitalize())


PREVALENCE_BANDS = ("65-69", "70-74", "75-79", "80-84", "85-89", "90+")
NOT_REPORTING_SHOWN = 50


@dataclass(frozen=True)
class RoleLine:
    code: str
    name: str
    sector: str
    figures: WorkforceByRole


@dataclass(frozen=True)
class SectorLine:
    sector: str
    label: str
    roles: int
    headcount: int
    fte_in_post: float
    vacant_fte: float

    @property
    def vacancy_rate(self) -> float | None:
        posts = self.fte_in_post + self.vacant_fte
        return self.vacant_fte / posts if posts else None


@dataclass(frozen=True)
class NeedYear:
    year: int
    persons: int
    aged_65_plus: int
    aged_85_plus: int
    dementia_65_plus: int | None


@dataclass(frozen=True)
class NotReporting:
    organisation: Organisation
    last_as_at: date | None


@dataclass(frozen=True)
class Overview:
    area: AreaDetail
    workforce: AreaWorkforce
    roles: list[RoleLine]
    sectors: list[SectorLine]
    not_reporting: list[NotReporting]
    not_reporting_total: int
    need: list[NeedYear]
    trend: list[NeedYear]
    dataset: str
    prevalence_source: str | None


def _area_filter(area: AreaDetail) -> ColumnElement[bool]:
    if area.type == AreaType.lad:
        return Organisation.home_lad_code == area.code
    if area.type == AreaType.icb:
        return Organisation.ics_code == area.code
    return true()


def by_sector(lines: list[RoleLine]) -> list[SectorLine]:
    grouped: dict[str, list[RoleLine]] = defaultdict(list)
    for line in lines:
        grouped[line.sector].append(line)
    return [
        SectorLine(
            sector=sector,
            label=sector_label(sector),
            roles=len(members),
            headcount=sum(m.figures.headcount for m in members),
            fte_in_post=sum(m.figures.fte_in_post for m in members),
            vacant_fte=sum(m.figures.vacant_fte for m in members),
        )
        for sector, members in sorted(grouped.items())
    ]


async def role_catalogue(session: AsyncSession) -> dict[str, Role]:
    return {role.code: role for role in await roles_repo.all_roles(session)}


async def _need(session: AsyncSession, *, area_code: str) -> tuple[list[NeedYear], str, str | None]:
    """Persons, 65+, 85+ and people with dementia aged 65+ (prevalence x population)."""
    dataset = await population_repo.get_dataset_by_name(
        session, name=reference_files.BUNDLED_DATASET_NAME
    )
    if dataset is None or dataset.first_year is None or dataset.last_year is None:
        return [], reference_files.BUNDLED_DATASET_NAME, None
    rows = await population_repo.band_cells(
        session,
        dataset_id=dataset.id,
        area_code=area_code,
        year_from=dataset.first_year,
        year_to=dataset.last_year,
    )
    rates = await population_repo.prevalence_rates(
        session, measure=reference_files.DEMENTIA_MEASURE
    )
    rate_of = {(r.sex[:1].upper(), r.age_band): r.rate for r in rates}
    totals: dict[int, list[float]] = defaultdict(lambda: [0, 0, 0, 0.0])
    for year, sex, band, persons in rows:
        figures = totals[year]
        figures[0] += persons
        if band in PREVALENCE_BANDS:
            figures[1] += persons
            figures[3] += persons * rate_of.get((sex, band), 0.0)
        if band in ("85-89", "90+"):
            figures[2] += persons
    years = [
        NeedYear(
            year=year,
            persons=int(f[0]),
            aged_65_plus=int(f[1]),
            aged_85_plus=int(f[2]),
            dementia_65_plus=round(f[3]) if rate_of else None,
        )
        for year, f in sorted(totals.items())
    ]
    source = rates[0].source if rates else None
    return years, dataset.name, source


async def overview(
    session: AsyncSession, *, principal: Principal, area_code: str, on: date
) -> Overview:
    """Everything the overview page shows for an area this key may read (404 otherwise)."""
    workforce = await workforce_service.area_workforce(
        session, principal=principal, area_code=area_code, on=on
    )
    area = await areas.area_detail(session, code=workforce.area_code)
    catalogue = await role_catalogue(session)
    lines = [
        RoleLine(
            code=r.role_code,
            name=catalogue[r.role_code].name if r.role_code in catalogue else r.role_code,
            sector=str(catalogue[r.role_code].sector) if r.role_code in catalogue else "other",
            figures=r,
        )
        for r in workforce.roles
    ]
    lines.sort(key=lambda line: -line.figures.fte_in_post)
    gaps, gaps_total = await data_gaps.organisations_not_reporting(
        session,
        organisation_filter=_area_filter(area),
        on=on,
        since=on - timedelta(days=365),
        limit=NOT_REPORTING_SHOWN,
    )
    trend, dataset, prevalence_source = await _need(session, area_code=area.code)
    milestones = {on.year, on.year + 5, on.year + 10, on.year + 15}
    return Overview(
        area=area,
        workforce=workforce,
        roles=lines,
        sectors=by_sector(lines),
        not_reporting=[NotReporting(o, d) for o, d in gaps],
        not_reporting_total=gaps_total,
        need=[y for y in trend if y.year in milestones],
        trend=trend,
        dataset=dataset,
        prevalence_source=prevalence_source,
    )
