"""Age bands, sexes and the named age groups built from them. Pure: no database, no await.

Population datasets hold persons by five-year age band (0-4 ... 85-89, 90+). The named groups
the API and the demand drivers use are sums of whole bands, except that 0-17 and 18-64 split
the 15-19 band:

- When a dataset carries published 0-17 totals (the bundled ONS 2018-based projections do,
  from single years of age), 0-17 is that published figure and 18-64 is everything else under
  65, so both reproduce ONS exactly. The split of the published figure between females and
  males uses the same 15-17 share of the 15-19 band for both sexes.
- Otherwise 15-17 is taken as 3/5 of the 15-19 band (an even spread over the five single
  years). On the bundled data that is within 1.6% of ONS's 0-17 on average, but up to 17% off
  in university towns, where 18- and 19-year-olds swell the 15-19 band.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

AGE_BANDS: tuple[str, ...] = (
    "0-4",
    "5-9",
    "10-14",
    "15-19",
    "20-24",
    "25-29",
    "30-34",
    "35-39",
    "40-44",
    "45-49",
    "50-54",
    "55-59",
    "60-64",
    "65-69",
    "70-74",
    "75-79",
    "80-84",
    "85-89",
    "90+",
)
SEXES: tuple[str, ...] = ("F", "M")
SPLIT_BAND = "15-19"
# Share of the 15-19 band aged 15-17 when no published 0-17 figure exists: 3 of 5 single years.
DEFAULT_SHARE_15_17 = 3 / 5


class AgeGroup(StrEnum):
    all = "all"
    aged_0_17 = "0_17"
    aged_18_64 = "18_64"
    aged_65_plus = "65_plus"
    aged_75_plus = "75_plus"
    aged_85_plus = "85_plus"


# Groups made of whole bands.
WHOLE_BAND_GROUPS: dict[AgeGroup, tuple[str, ...]] = {
    AgeGroup.all: AGE_BANDS,
    AgeGroup.aged_65_plus: AGE_BANDS[13:],
    AgeGroup.aged_75_plus: AGE_BANDS[15:],
    AgeGroup.aged_85_plus: AGE_BANDS[17:],
}
UNDER_15_BANDS = AGE_BANDS[:3]
UNDER_65_BANDS = AGE_BANDS[:13]


@dataclass(frozen=True)
class YearFigure:
    """Persons in one year, with the female and male parts (female + male == persons)."""

    year: int
    persons: int
    female: int
    male: int


# (year, sex, age band) -> persons
Cells = Mapping[tuple[int, str, str], int]


def cells_from_rows(rows: Iterable[tuple[int, str, str, int]]) -> dict[tuple[int, str, str], int]:
    """Index (year, sex, band, persons) rows by (year, sex, band)."""
    return {(year, sex, band): persons for year, sex, band, persons in rows}


def _band_sum(cells: Cells, year: int, sex: str, bands: Iterable[str]) -> int:
    return sum(cells.get((year, sex, band), 0) for band in bands)


def share_15_17(cells: Cells, year: int, published_0_17: int | None) -> float:
    """The share of the 15-19 band aged 15-17 in a year: from the published 0-17 if any."""
    if published_0_17 is None:
        return DEFAULT_SHARE_15_17
    band_15_19 = sum(cells.get((year, sex, SPLIT_BAND), 0) for sex in SEXES)
    if band_15_19 <= 0:
        return DEFAULT_SHARE_15_17
    under_15 = sum(_band_sum(cells, year, sex, UNDER_15_BANDS) for sex in SEXES)
    return min(1.0, max(0.0, (published_0_17 - under_15) / band_15_19))


def _figure(year: int, female: float, male: float, persons: int | None = None) -> YearFigure:
    total = round(female + male) if persons is None else persons
    # Round one sex and give the other the remainder, so the parts always add up.
    female_rounded = min(total, max(0, round(female)))
    return YearFigure(year=year, persons=total, female=female_rounded, male=total - female_rounded)


def group_figures(
    cells: Cells,
    years: Iterable[int],
    group: AgeGroup,
    *,
    published_0_17: Mapping[int, int] | None = None,
) -> list[YearFigure]:
    """Persons in an age group for each year, from band cells and any published 0-17 totals."""
    published = published_0_17 or {}
    figures = []
    for year in years:
        if group in WHOLE_BAND_GROUPS:
            bands = WHOLE_BAND_GROUPS[group]
            female = _band_sum(cells, year, "F", bands)
            male = _band_sum(cells, year, "M", bands)
            figures.append(_figure(year, female, male))
            continue
        share = share_15_17(cells, year, published.get(year))
        female_0_17 = _band_sum(cells, year, "F", UNDER_15_BANDS) + share * cells.get(
            (year, "F", SPLIT_BAND), 0
        )
        male_0_17 = _band_sum(cells, year, "M", UNDER_15_BANDS) + share * cells.get(
            (year, "M", SPLIT_BAND), 0
        )
        if group == AgeGroup.aged_0_17:
            figures.append(_figure(year, female_0_17, male_0_17, published.get(year)))
            continue
        # 18-64 is what is left under 65, so 0-17 + 18-64 + 65+ is always everyone.
        female_under_65 = _band_sum(cells, year, "F", UNDER_65_BANDS)
        male_under_65 = _band_sum(cells, year, "M", UNDER_65_BANDS)
        persons = None
        if year in published:
            persons = female_under_65 + male_under_65 - published[year]
        figures.append(
            _figure(year, female_under_65 - female_0_17, male_under_65 - male_0_17, persons)
        )
    return figures


def band_figures(cells: Cells, years: Iterable[int], band: str) -> list[YearFigure]:
    """Persons in one five-year band for each year."""
    return [
        _figure(year, cells.get((year, "F", band), 0), cells.get((year, "M", band), 0))
        for year in years
    ]
