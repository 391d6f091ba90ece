"""The age-group arithmetic (pure): whole-band groups, and the 15-19 split behind 0-17."""

from __future__ import annotations

from shared.reference.bands import (
    AGE_BANDS,
    AgeGroup,
    band_figures,
    cells_from_rows,
    group_figures,
    share_15_17,
)

YEAR = 2030


def _cells(female: dict[str, int], male: dict[str, int]) -> dict[tuple[int, str, str], int]:
    rows = [(YEAR, "F", band, female.get(band, 0)) for band in AGE_BANDS]
    rows += [(YEAR, "M", band, male.get(band, 0)) for band in AGE_BANDS]
    return cells_from_rows(rows)


CELLS = _cells(
    {"0-4": 10, "5-9": 10, "10-14": 10, "15-19": 10, "20-24": 7, "65-69": 5, "80-84": 3, "90+": 1},
    {"0-4": 11, "5-9": 11, "10-14": 11, "15-19": 11, "60-64": 9, "75-79": 4, "85-89": 2},
)


def test_whole_band_groups_are_plain_sums() -> None:
    expected = {
        AgeGroup.all: (56, 59),
        AgeGroup.aged_65_plus: (9, 6),
        AgeGroup.aged_75_plus: (4, 6),
        AgeGroup.aged_85_plus: (1, 2),
    }
    for group, (female, male) in expected.items():
        [figure] = group_figures(CELLS, [YEAR], group)
        assert (figure.year, figure.female, figure.male) == (YEAR, female, male)
        assert figure.persons == female + male


def test_without_published_figures_15_17_is_three_fifths_of_15_19() -> None:
    [under_18] = group_figures(CELLS, [YEAR], AgeGroup.aged_0_17)
    # Females 30 + 6, males 33 + 6.6 = 75.6 persons, rounded; the parts add up.
    assert (under_18.persons, under_18.female, under_18.male) == (76, 36, 40)
    [adults] = group_figures(CELLS, [YEAR], AgeGroup.aged_18_64)
    [everyone] = group_figures(CELLS, [YEAR], AgeGroup.all)
    [older] = group_figures(CELLS, [YEAR], AgeGroup.aged_65_plus)
    assert under_18.persons + adults.persons + older.persons == everyone.persons
    assert adults.female + adults.male == adults.persons


def test_published_0_17_is_reproduced_and_split_by_the_same_share() -> None:
    # 63 under 15 and 21 aged 15-19: a published 0-17 of 70 means 7 of the 21 are 15-17.
    assert share_15_17(CELLS, YEAR, 70) == 7 / 21
    [under_18] = group_figures(CELLS, [YEAR], AgeGroup.aged_0_17, published_0_17={YEAR: 70})
    assert (under_18.persons, under_18.female, under_18.male) == (70, 33, 37)
    [adults] = group_figures(CELLS, [YEAR], AgeGroup.aged_18_64, published_0_17={YEAR: 70})
    assert adults.persons == (56 - 9) + (59 - 6) - 70
    # A year without a published figure falls back to 3/5.
    assert (
        group_figures(CELLS, [YEAR], AgeGroup.aged_0_17, published_0_17={2031: 70})[0].persons == 76
    )


def test_an_implausible_published_figure_does_not_make_negative_parts() -> None:
    assert share_15_17(CELLS, YEAR, 10) == 0.0
    assert share_15_17(CELLS, YEAR, 1000) == 1.0
    [figure] = group_figures(CELLS, [YEAR], AgeGroup.aged_0_17, published_0_17={YEAR: 10})
    assert figure.persons == 10
    assert 0 <= figure.female <= 10
    assert figure.male == 10 - figure.female


def test_one_band_and_missing_years_read_as_zero() -> None:
    assert [(f.persons, f.female, f.male) for f in band_figures(CELLS, [YEAR], "15-19")] == [
        (21, 10, 11)
    ]
    [empty] = group_figures(CELLS, [YEAR + 1], AgeGroup.all)
    assert (empty.persons, empty.female, empty.male) == (0, 0, 0)
