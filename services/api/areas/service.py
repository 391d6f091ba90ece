"""Areas and population reads: filters, the area tree, and age-group figures per year."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.areas.errors import AreaNotFound, PopulationNotFound
from services.api.http import PageParams
from shared.errors import FieldError, ValidationFailed, field_error
from shared.models import Area, AreaType, PopulationDataset
from shared.reference import bands
from shared.reference.bands import AGE_BANDS, AgeGroup, YearFigure
from shared.repositories import areas as areas_repo
from shared.repositories import population as population_repo
from shared.schemas.areas import (
    AreaDetail,
    AreaPopulation,
    AreaRead,
    AreaRef,
    PopulationDatasetRead,
    PopulationYear,
    Sex,
)
from shared.schemas.common import Page

_SPLIT_GROUPS = (AgeGroup.aged_0_17, AgeGroup.aged_18_64)


def _normalise_code(code: str) -> str:
    return code.strip().upper()


async def list_areas(
    session: AsyncSession,
    *,
    area_type: AreaType | None,
    parent: str | None,
    q: str | None,
    page: PageParams,
) -> Page[AreaRead]:
    """A page of areas by type, parent (e.g. an ICB's LADs) and name."""
    items, total = await areas_repo.list_areas(
        session,
        area_type=area_type,
        parent_code=_normalise_code(parent) if parent else None,
        name_contains=q.strip() if q and q.strip() else None,
        page=page,
    )
    return page.result([AreaRead.model_validate(item) for item in items], total)


async def get_area(session: AsyncSession, *, code: str) -> Area:
    """An area by ONS code (any case), or 404 area_not_found."""
    area = await areas_repo.get(session, code=_normalise_code(code))
    if area is None:
        raise AreaNotFound(f"No area with code {code!r}.")
    return area


async def area_detail(session: AsyncSession, *, code: str) -> AreaDetail:
    """An area with its parent and its children."""
    area = await get_area(session, code=code)
    parent = await areas_repo.get(session, code=area.parent_code) if area.parent_code else None
    children = await areas_repo.children(session, code=area.code)
    return AreaDetail.model_validate(
        {
            **AreaRead.model_validate(area).model_dump(),
            "parent": AreaRef.model_validate(parent) if parent else None,
            "children": [AreaRef.model_validate(child) for child in children],
        }
    )


async def list_datasets(session: AsyncSession, *, page: PageParams) -> Page[PopulationDatasetRead]:
    """The population datasets loaded, by name."""
    items, total = await population_repo.list_datasets(session, page=page)
    return page.result([PopulationDatasetRead.model_validate(item) for item in items], total)


@dataclass(frozen=True)
class PopulationQuery:
    """A checked population request: what to read and what identifies its version."""

    area: Area
    dataset: PopulationDataset
    year_from: int
    year_to: int
    sex: Sex
    age_group: AgeGroup | None
    age_band: str | None

    def version(self) -> tuple[Any, ...]:
        # Population rows change only when a dataset is (re)loaded, which moves loaded_at.
        return (
            self.area.code,
            self.area.name,
            str(self.dataset.id),
            self.dataset.loaded_at.isoformat(),
            self.year_from,
            self.year_to,
            self.sex,
            self.age_group,
            self.age_band,
        )


def _problem(field: str, code: str, message: str) -> FieldError:
    return field_error(field, code, message, **{"in": "query"})


def _normalise_band(age_band: str) -> str:
    band = age_band.strip()
    # An unencoded '+' in a query string arrives as a space and is stripped: 90 means 90+.
    return "90+" if band == "90" else band


async def population_query(
    session: AsyncSession,
    *,
    code: str,
    dataset_name: str,
    year_from: int | None,
    year_to: int | None,
    sex: Sex,
    age_band: str | None,
    age_group: AgeGroup | None,
) -> PopulationQuery:
    """Check a population request against the area and the dataset's years and bands."""
    area = await get_area(session, code=code)
    dataset = await population_repo.get_dataset_by_name(session, name=dataset_name)
    problems: list[FieldError] = []
    if dataset is None:
        problems.append(
            _problem("dataset", "unknown_dataset", f"no population dataset named {dataset_name!r}")
        )
    band = _normalise_band(age_band) if age_band is not None else None
    problems += _band_problems(band, age_group)
    start, end, year_problems = year_range(dataset, year_from, year_to)
    problems += year_problems
    if problems or dataset is None or start is None or end is None:
        raise ValidationFailed("The population request has invalid parameters.", errors=problems)
    return PopulationQuery(
        area=area,
        dataset=dataset,
        year_from=start,
        year_to=end,
        sex=sex,
        age_group=None if band is not None else (age_group or AgeGroup.all),
        age_band=band,
    )


def _band_problems(band: str | None, age_group: AgeGroup | None) -> list[FieldError]:
    """A known band, and a band or a group, not both."""
    problems = []
    if band is not None and band not in AGE_BANDS:
        problems.append(
            _problem(
                "age_band", "unknown_age_band", f"age_band must be one of {', '.join(AGE_BANDS)}"
            )
        )
    if band is not None and age_group is not None:
        problems.append(
            _problem("age_band", "conflicting_parameters", "give age_band or group, not both")
        )
    return problems


def year_range(
    dataset: PopulationDataset | None, year_from: int | None, year_to: int | None
) -> tuple[int | None, int | None, list[FieldError]]:
    """The years asked for (by default the dataset's), and what is wrong with them: outside
    the dataset's years, or in the wrong order."""
    problems = []
    first, last = (dataset.first_year, dataset.last_year) if dataset else (None, None)
    start = year_from if year_from is not None else first
    end = year_to if year_to is not None else last
    if dataset is not None and first is not None and last is not None:
        for field, value in (("year_from", year_from), ("year_to", year_to)):
            if value is not None and not first <= value <= last:
                problems.append(
                    _problem(
                        field,
                        "year_out_of_range",
                        f"{dataset.name} covers {first}-{last}; {field} {value} is outside it",
                    )
                )
    if start is not None and end is not None and start > end:
        problems.append(
            _problem("year_from", "bad_year_range", f"year_from {start} is after year_to {end}")
        )
    return start, end, problems


def _method(query: PopulationQuery, *, published: bool) -> str:
    if query.age_band is not None:
        return f"the {query.age_band} band as published in {query.dataset.name}"
    if query.age_group not in _SPLIT_GROUPS:
        return f"sum of the dataset's five-year bands ({query.dataset.name})"
    if published:
        return (
            "ONS's published 0-17 figures (18-64 is the rest of the under-65s); the female and "
            "male parts split the 15-19 band in the same proportion"
        )
    return (
        "15-17 estimated as 3/5 of the 15-19 band (the dataset has no published 0-17 figures; "
        "typically within 2% of ONS, more in university towns)"
    )


def _year(figure: YearFigure, sex: Sex) -> PopulationYear:
    if sex == "F":
        return PopulationYear(
            year=figure.year, persons=figure.female, female=figure.female, male=None
        )
    if sex == "M":
        return PopulationYear(year=figure.year, persons=figure.male, female=None, male=figure.male)
    return PopulationYear(
        year=figure.year, persons=figure.persons, female=figure.female, male=figure.male
    )


async def area_population(session: AsyncSession, query: PopulationQuery) -> AreaPopulation:
    """Persons per year for an area in an age group or band, as JSON-ready figures."""
    years = range(query.year_from, query.year_to + 1)
    rows = await population_repo.band_cells(
        session,
        dataset_id=query.dataset.id,
        area_code=query.area.code,
        year_from=query.year_from,
        year_to=query.year_to,
        age_bands=None
        if query.age_band is None and query.age_group in _SPLIT_GROUPS
        else (
            [query.age_band]
            if query.age_band is not None
            else list(bands.WHOLE_BAND_GROUPS[query.age_group or AgeGroup.all])
        ),
    )
    if not rows:
        raise PopulationNotFound(f"{query.dataset.name} has no figures for {query.area.code}.")
    cells = bands.cells_from_rows(rows)
    published: dict[int, int] = {}
    if query.age_band is not None:
        figures = bands.band_figures(cells, years, query.age_band)
    else:
        group = query.age_group or AgeGroup.all
        if group in _SPLIT_GROUPS:
            published = await population_repo.group_totals(
                session,
                dataset_id=query.dataset.id,
                area_code=query.area.code,
                age_group=AgeGroup.aged_0_17.value,
                year_from=query.year_from,
                year_to=query.year_to,
            )
        figures = bands.group_figures(cells, years, group, published_0_17=published)
    return AreaPopulation(
        area=AreaRef.model_validate(query.area),
        dataset=query.dataset.name,
        age_group=query.age_group,
        age_band=query.age_band,
        sex=query.sex,
        method=_method(query, published=bool(published)),
        years=[_year(figure, query.sex) for figure in figures],
    )
