"""Numbers of people with a need by area, year, sex and age band (POPPI / PANSI style)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.areas import service as areas_service
from services.api.areas.errors import UnknownIndicator
from services.domain.needs import INDICATORS, known_indicators
from shared.errors import FieldError, ValidationFailed, field_error
from shared.models import PrevalenceRate
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
    dataset = await population_repo.get_dataset_by_name(session, name=dataset_name)
    problems: list[FieldError] = []
    if dataset is None:
        problems.append(
            _problem("dataset", "unknown_dataset", f"no population dataset named {dataset_name!r}")
        )
    start, end, year_problems = areas_service.year_range(dataset, year_from, year_to)
    problems += year_problems
    if problems or dataset is None or start is None or end is None:
        raise ValidationFailed("The needs request has invalid parameters.", errors=problems)
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
    with_interval = chosen.interval is not None
    cells, totals = need_figures(cells_by_key, rates, sex=sex, with_interval=with_interval)
    return AreaNeeds(
        area=AreaRead.model_validate(area),
        indicator=chosen.name,
        title=chosen.title,
        population=chosen.population,
        interval=chosen.interval,
        dataset=dataset.name,
        source=chosen.source,
        licence=chosen.licence,
        totals=totals,
        cells=cells,
    )


def need_figures(
    cells_by_key: Iterable[tuple[int, str, str, int]],
    rates: dict[tuple[str, str], PrevalenceRate],
    *,
    sex: str,
    with_interval: bool,
) -> tuple[list[NeedCell], list[NeedTotal]]:
    """Persons with the need in each year, sex and band that has a rate (one sex, or both),
    and their totals by year for each sex and both (pure)."""
    cells: list[NeedCell] = []
    totals: dict[tuple[int, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
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
    return cells, [
        NeedTotal(
            year=year,
            sex=total_sex,
            persons=value[0],
            persons_lower=value[1] if with_interval else None,
            persons_upper=value[2] if with_interval else None,
        )
        for (year, total_sex), value in sorted(totals.items())
        if total_sex in wanted
    ]
