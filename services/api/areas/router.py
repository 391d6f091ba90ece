from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import StringConstraints

from services.api.areas import needs as needs_service
from services.api.areas import service
from services.api.areas import workforce as workforce_service
from services.api.areas.errors import (
    AreaNotFound,
    AreaTypeNotSupported,
    PopulationNotFound,
    UnknownIndicator,
)
from services.api.deps import ReadKey, SessionDep, Today
from services.api.export import csv_bytes, xlsx_bytes
from services.api.http import (
    REVALIDATE,
    XLSX_MEDIA_TYPE,
    PageDep,
    csv_response,
    etag_of,
    negotiate,
    not_modified,
    wants_csv,
)
from services.api.openapi import NOT_MODIFIED, raises
from services.domain import track_record
from services.domain.needs import known_indicators
from services.domain.track_record import errors as track_record_errors
from shared.errors import NotAcceptable, ValidationFailed
from shared.models import AreaType, RoleSector
from shared.reference.bands import AGE_BANDS, AgeGroup
from shared.reference.files import BUNDLED_DATASET_NAME
from shared.schemas.areas import (
    AreaDetail,
    AreaNeeds,
    AreaPopulation,
    AreaRead,
    PopulationDatasetRead,
    PopulationSeries,
    Sex,
)
from shared.schemas.common import Page
from shared.schemas.returns import AreaWorkforce
from shared.schemas.track_record import TrackRecordRead

router = APIRouter(prefix="/v1", tags=["areas"])

_NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified (If-None-Match named the current ETag)"}
}
_CSV_OR_NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
    **_NOT_MODIFIED,
}
CSV_HEADER = (
    "area_code",
    "area_name",
    "dataset",
    "age",
    "sex",
    "year",
    "persons",
    "female",
    "male",
)


def _cached(request: Request, response: Response, *parts: object) -> Response | None:
    etag = etag_of(*parts)
    response.headers["ETag"] = etag
    response.headers["Vary"] = "Accept"
    return not_modified(request, etag)


@router.get(
    "/areas",
    response_model=Page[AreaRead],
    responses=_NOT_MODIFIED,
    summary="Areas: England, the 42 ICBs, 21 counties and 296 LADs",
)
async def list_areas(
    session: SessionDep,
    principal: ReadKey,
    page: PageDep,
    request: Request,
    response: Response,
    type: Annotated[AreaType | None, Query(description="country, icb, county or lad")] = None,
    parent: Annotated[
        str | None, Query(description="Children of this area, e.g. an ICB's LADs (E54...)")
    ] = None,
    q: Annotated[
        str | None, Query(max_length=100, description="Name contains (case-insensitive)")
    ] = None,
) -> Page[AreaRead] | Response:
    result = await service.list_areas(session, area_type=type, parent=parent, q=q, page=page)
    if (cached := _cached(request, response, "areas", result.model_dump(mode="json"))) is not None:
        return cached
    return result


@router.get(
    "/areas/{code}",
    response_model=AreaDetail,
    responses={**_NOT_MODIFIED, **raises(AreaNotFound)},
    summary="One area, with its parent and children (an ICB lists its LADs)",
)
async def get_area(
    code: str, session: SessionDep, principal: ReadKey, request: Request, response: Response
) -> AreaDetail | Response:
    result = await service.area_detail(session, code=code)
    if (cached := _cached(request, response, "area", result.model_dump(mode="json"))) is not None:
        return cached
    return result


@router.get(
    "/areas/{code}/population",
    response_model=AreaPopulation,
    responses={
        **_CSV_OR_NOT_MODIFIED,
        **raises(AreaNotFound, PopulationNotFound, ValidationFailed),
    },
    summary="Population per year for an area: an age group or a five-year band, by sex",
    description=(
        "Persons per year from a population dataset (default: the bundled ONS 2018-based "
        "projections). With `sex=all` each year also gives the female and male parts. "
        "0-17 and 18-64 use ONS's published 0-17 figures where the dataset has them, and "
        "otherwise estimate 15-17 as 3/5 of the 15-19 band; `method` says which. "
        "JSON, or CSV with `?format=csv` or `Accept: text/csv`."
    ),
)
async def area_population(
    code: str,
    session: SessionDep,
    principal: ReadKey,
    request: Request,
    response: Response,
    dataset: Annotated[str, Query(max_length=100, description="Dataset name")] = (
        BUNDLED_DATASET_NAME
    ),
    year_from: Annotated[int | None, Query(description="Default: the dataset's first year")] = None,
    year_to: Annotated[int | None, Query(description="Default: the dataset's last year")] = None,
    sex: Annotated[Sex, Query(description="F, M or all (with the female/male parts)")] = "all",
    age_band: Annotated[
        list[Annotated[str, StringConstraints(max_length=5)]] | None,
        Query(
            max_length=20,
            description=f"Five-year bands: {', '.join(AGE_BANDS)} (send 90+ as 90%2B); "
            "repeat for several",
        ),
    ] = None,
    group: Annotated[
        list[AgeGroup] | None,
        Query(max_length=20, description="Named age groups (default all); repeat for several"),
    ] = None,
    format: Annotated[Literal["json", "csv"] | None, Query(description="json or csv")] = None,
) -> AreaPopulation | Response:
    queries = [
        await service.population_query(
            session,
            code=code,
            dataset_name=dataset,
            year_from=year_from,
            year_to=year_to,
            sex=sex,
            age_band=band,
            age_group=age_group,
        )
        for band, age_group in _wanted_series(group, age_band)
    ]
    as_csv = wants_csv(request, format)
    representation = "csv" if as_csv else "json"
    versions = [query.version() for query in queries]
    if cached := _cached(request, response, "population", representation, versions):
        return cached
    parts = [await service.area_population(session, query) for query in queries]
    if not as_csv:
        return _one_answer(parts)
    return _population_csv(parts, etag=response.headers["ETag"])


def _wanted_series(
    group: list[AgeGroup] | None, age_band: list[str] | None
) -> list[tuple[str | None, AgeGroup | None]]:
    """(band, group) per series: groups first, then bands, each in the order asked; none asked
    means the whole population."""
    if group and age_band:
        # Both kinds at once is refused (conflicting_parameters), as for one of each.
        return [(age_band[0], group[0])]
    wanted: list[tuple[str | None, AgeGroup | None]] = [(None, g) for g in group or []]
    wanted += [(band, None) for band in age_band or []]
    return wanted or [(None, None)]


def _one_answer(parts: list[AreaPopulation]) -> AreaPopulation:
    """The first series' answer, carrying every series."""
    return parts[0].model_copy(
        update={
            "series": [
                PopulationSeries(
                    age_group=part.age_group,
                    age_band=part.age_band,
                    method=part.method,
                    years=part.years,
                )
                for part in parts
            ]
        }
    )


def _population_csv(parts: list[AreaPopulation], *, etag: str) -> Response:
    """Every series as CSV rows, one per series and year."""
    rows = (
        (
            part.area.code,
            part.area.name,
            part.dataset,
            part.age_band or (part.age_group or AgeGroup.all).value,
            part.sex,
            year.year,
            year.persons,
            year.female,
            year.male,
        )
        for part in parts
        for year in part.years
    )
    ages = "+".join(part.age_band or (part.age_group or AgeGroup.all).value for part in parts)
    first = parts[0]
    return csv_response(
        CSV_HEADER,
        rows,
        filename=f"population-{first.area.code}-{first.dataset}-{ages}.csv",
        headers={"ETag": etag, "Vary": "Accept"},
    )


NEEDS_HEADER = (
    "area_code",
    "indicator",
    "year",
    "sex",
    "age_band",
    "population",
    "rate",
    "persons",
    "persons_lower",
    "persons_upper",
)


@router.get(
    "/areas/{code}/needs",
    response_model=AreaNeeds,
    responses={
        200: {"content": {"text/csv": {}}},
        **raises(AreaNotFound, UnknownIndicator, ValidationFailed),
    },
    summary="Numbers of people with a need (e.g. dementia 65+) by year, sex and age band",
    description=(
        "Persons = population x prevalence rate for each year, sex and five-year band, with "
        "the interval where the source gives one, and totals by year for F, M and all. "
        f"Indicators: {', '.join(known_indicators())}. An unknown indicator is 422 "
        "`unknown_indicator` listing the known ones. JSON, or CSV of the cells with "
        "`?format=csv`."
    ),
)
async def area_needs(
    code: str,
    session: SessionDep,
    principal: ReadKey,
    request: Request,
    indicator: Annotated[str, Query(max_length=64)] = "dementia_65_plus",
    dataset: Annotated[str, Query(max_length=100, description="Dataset name")] = (
        BUNDLED_DATASET_NAME
    ),
    year_from: Annotated[int | None, Query(description="Default: the dataset's first year")] = None,
    year_to: Annotated[int | None, Query(description="Default: the dataset's last year")] = None,
    sex: Annotated[Sex, Query(description="F, M or all")] = "all",
    format: Annotated[Literal["json", "csv"] | None, Query(description="json or csv")] = None,
) -> AreaNeeds | Response:
    result = await needs_service.area_needs(
        session,
        code=code,
        indicator=indicator,
        dataset_name=dataset,
        year_from=year_from,
        year_to=year_to,
        sex=sex,
    )
    if not wants_csv(request, format):
        return result
    return csv_response(
        NEEDS_HEADER,
        (
            (
                result.area.code,
                result.indicator,
                cell.year,
                cell.sex,
                cell.age_band,
                cell.population,
                cell.rate,
                cell.persons,
                cell.persons_lower,
                cell.persons_upper,
            )
            for cell in result.cells
        ),
        filename=f"needs-{result.area.code}-{result.indicator}.csv",
    )


@router.get(
    "/areas/{code}/track-record",
    response_model=TrackRecordRead,
    summary="How past baseline projections for an ICB matched the returns posted later",
    responses=raises(
        AreaNotFound,
        track_record_errors.NotAnIcb,
        track_record_errors.UnknownTrackRecordRole,
        track_record_errors.NoLaterReturns,
        track_record_errors.PopulationNotLoaded,
    ),
    description=(
        "Reruns the baseline from each earlier year with returns and compares each later "
        "year's FTE in post and vacant FTE with the returns posted for it, by role, sector "
        "and all roles: error, MAPE, bias (mean signed error) and p10-p90 coverage. Computed "
        "on request (the model runs once per pair of years)."
    ),
)
async def area_track_record(
    code: str,
    session: SessionDep,
    principal: ReadKey,
    roles: Annotated[
        str | None,
        Query(max_length=2000, description="Comma-separated role codes (default: every role)"),
    ] = None,
    iterations: Annotated[int, Query(ge=0, le=500, description="Monte Carlo draws")] = 100,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 1,
) -> TrackRecordRead:
    area = await service.get_area(session, code=code)
    icb = area.code if area.type == AreaType.icb else area.parent_code
    if principal.organisation_id is not None or (
        principal.ics_code is not None and principal.ics_code != icb
    ):
        raise AreaNotFound("No such area.")
    role_list = (
        [part.strip() for part in roles.split(",") if part.strip()] or None if roles else None
    )
    record = await track_record.track_record(
        session, area_code=area.code, roles=role_list, iterations=iterations, seed=seed
    )
    return TrackRecordRead.model_validate(record)


WORKFORCE_SOURCES = (
    "Each organisation's latest current workforce return dated at or before as_at; role "
    "names and sectors from the OneWorkforce role catalogue"
)


def _workforce_about(result: AreaWorkforce) -> list[tuple[str, str]]:
    return [
        ("Area", result.area_code),
        ("As at", result.as_at.isoformat()),
        ("Units", "headcount: people; *_fte: full-time equivalents (2 decimals); rates: "
                  "fractions (4 decimals)"),
        ("Sources", WORKFORCE_SOURCES),
        ("Organisations registered", str(result.completeness.organisations_registered)),
        ("Organisations reporting (12 months)", str(result.completeness.organisations_reporting)),
    ]  # fmt: skip


@router.get(
    "/areas/{code}/workforce",
    response_model=AreaWorkforce,
    responses={
        200: {
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            }
        },
        **NOT_MODIFIED,
        **raises(AreaNotFound, AreaTypeNotSupported, NotAcceptable, ValidationFailed),
    },
    summary="The workforce of an area (LAD, ICB, England) from each organisation's latest return",
    description=(
        "By role, with each role's name and sector, and the total. JSON, CSV (`format=csv` or "
        "`Accept: text/csv`; `bom=true` for Excel) or xlsx (with an About sheet stating units "
        "and sources). The ETag is a hash of the exact bytes, so a 304 is exact."
    ),
)
async def area_workforce(
    code: str,
    session: SessionDep,
    principal: ReadKey,
    request: Request,
    today: Today,
    as_at: Annotated[date | None, Query(description="Default: today")] = None,
    sector: Annotated[RoleSector | None, Query(description="Only roles of this sector")] = None,
    format: Annotated[Literal["json", "csv", "xlsx"] | None, Query()] = None,
    bom: Annotated[bool, Query(description="CSV only: UTF-8 byte order mark for Excel")] = False,
) -> Response:
    fmt = negotiate(request, format, ("json", "csv", "xlsx"))
    result = await workforce_service.area_workforce(
        session,
        principal=principal,
        area_code=code,
        on=as_at or today,
        sector=sector,
    )
    rows = [list(r.model_dump().values()) for r in [*result.roles, result.total]]
    header = list(result.total.model_dump().keys())
    filename = f"workforce-{result.area_code}-{result.as_at}"
    headers = {"Vary": "Accept", "Cache-Control": REVALIDATE}
    if fmt == "json":
        content = result.model_dump_json().encode()
        media_type = "application/json"
    elif fmt == "csv":
        content = csv_bytes(header, rows, bom=bom)
        media_type = "text/csv; charset=utf-8"
        headers["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    else:
        content = await xlsx_bytes(
            {"Workforce": (header, rows), "About": (("Item", "Value"), _workforce_about(result))}
        )
        media_type = XLSX_MEDIA_TYPE
        headers["Content-Disposition"] = f'attachment; filename="{filename}.xlsx"'
    # A hash of the bytes (xlsx zips carry a timestamp, so they get a weak one).
    etag = etag_of("workforce", content) if fmt != "xlsx" else "W/" + etag_of("workforce", rows)
    headers["ETag"] = etag
    if (cached := not_modified(request, etag)) is not None:
        cached.headers.update(headers)
        return cached
    return Response(content, media_type=media_type, headers=headers)


@router.get(
    "/population-datasets",
    response_model=Page[PopulationDatasetRead],
    summary="Population datasets loaded (name, source, years, rows, when loaded)",
)
async def list_population_datasets(
    session: SessionDep, principal: ReadKey, page: PageDep
) -> Page[PopulationDatasetRead]:
    return await service.list_datasets(session, page=page)
