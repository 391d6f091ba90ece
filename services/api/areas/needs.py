"""Numbers of people with a need by area, year, sex and age band (POPPI / PANSI style)."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.areas import service as areas_service
from services.api.areas.errors import UnknownIndicator
from services.domain.needs import INDICATORS, known_indicators
from shared.errors import FieldError, ValidationFailed, field_error
from shared.repositories import population as population_repo
from shared.schemas.areas import AreaNeeds, AreaRead, NeedCell, NeedTotal


def _problem(field: str, code: str, message: str) -> FieldError:
    return field_error(field, code, message, **{"in": "query"})


async def area_needs(
    session: AsyncSession,
    *,
    code: str,
    indicator: str,
    dataset_name: str,
    year_from: int | None,
    year_to: int | None,
    sex: str,
) -> AreaNeeds:
    """Persons with the indicator's need = population x rate, per year, sex and band."""
    area = await areas_service.get_area(session, code=code)
    chosen = INDICATORS.get(indicator)
    if chosen is None:
        raise UnknownIndicator(
            f"Unknown indicator {indicator!r}; known: {', '.join(known_indicators())}.",
            field="indicator",
            known_indicators=known_indicators(),
        )
    problems: list[FieldError] = []
    dataset = await population_repo.get_dataset_by_name(session, name=dataset_name)
    if dataset is None:
        problems.append(
            _problem("dataset", "unknown_dataset", f"no population dataset named {dataset_name!r}")
        )
    start = year_from if year_from is not None else (dataset.first_year if dataset else None)
    end = year_to if year_to is not None else (dataset.last_year if dataset else None)
    if dataset is not None:
        for field, value in (("year_from", year_from), ("year_to", year_to)):
            if value is not None and not dataset.first_year <= value <= dataset.last_year:
                problems.append(
                    _problem(
                        field,
                        "year_out_of_range",
                        f"{dataset.name} covers {dataset.first_year}-{dataset.last_year}",
                    )
                )
    if start is not None and end is not None and start > end:
        problems.append(_problem("year_from", "bad_year_range", "year_from is after year_to"))
    if problems:
        raise ValidationFailed("The needs request has invalid parameters.", errors=problems)
    assert dataset is not None
    assert start is not None
    assert end is not None
    rates = {
        (rate.sex, rate.age_band): rate
        for rate in await population_repo.prevalence_rates(session, measure=chosen.measure)
    }
    cells_by_key = await population_repo.band_cells(
        session,
        dataset_id=dataset.id,
        area_code=area.code,
        year_from=start,
        year_to=end,
        age_bands=sorted({band for _, band in rates}),
    )
    cells: list[NeedCell] = []
    totals: dict[tuple[int, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    with_interval = chosen.interval is not None
    for year, cell_sex, band, persons in sorted(cells_by_key):
        rate = rates.get((cell_sex, band))
        if rate is None or (sex != "all" and cell_sex != sex):
            continue
        values = (persons * rate.rate, persons * rate.lower, persons * rate.upper)
        cells.append(
            NeedCell(
                year=year,
                sex=cell_sex,
                age_band=band,
                population=persons,
                rate=rate.rate,
                persons=values[0],
                persons_lower=values[1] if with_interval else None,
                persons_upper=values[2] if with_interval else None,
            )
        )
        for key in ((year, cell_sex), (year, "all")):
            for i, figure in enumerate(values):
                totals[key][i] += figure
    wanted = ("F", "M", "all") if sex == "all" else (sex,)
    return AreaNeeds(
        area=AreaRead.model_validate(area),
        indicator=chosen.name,
        title=chosen.title,
        population=chosen.population,
        interval=chosen.interval,
        dataset=dataset.name,
        source=chosen.source,
        licence=chosen.licence,
        totals=[
            NeedTotal(
                year=year,
                sex=total_sex,
                persons=value[0],
                persons_lower=value[1] if with_interval else None,
                persons_upper=value[2] if with_interval else None,
            )
            for (year, total_sex), value in sorted(totals.items())
            if total_sex in wanted
        ],
        cells=cells,
    )
