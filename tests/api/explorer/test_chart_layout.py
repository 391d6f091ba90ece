"""Charts a reader can read: every word inside the picture, legends above the plot (never over
a line), bar labels apart, tick labels that say the tick's value, wide and on a phone."""

from __future__ import annotations

import itertools

import pytest
from matplotlib.backend_bases import RendererBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import BboxBase

from services.api.charts import draw

YEARS = list(range(2026, 2044))
LONG_AREA = "NHS Cheshire and Merseyside Integrated Care Board (E54000008)"
TEXT = draw.ChartText(
    title=f"What changed the gap after sharing, 2026 to 2043: {LONG_AREA}, adult social care roles",
    subtitle="Scenario 'baseline' v1; base year 2026; 200 uncertain runs; run f1d642d7",
    source="OneWorkforce projection f1d642d7-c946-47bc-a9d7-c70030e2e19a; workforce returns; "
    "ONS 2018-based subnational population projections (OGL v3.0)",
    notes=("Band: p10-p90 of the uncertain runs; dashed: p50; solid: principal.",),
)


def _rising(start: float, step: float) -> list[float]:
    return [start + step * i for i in range(len(YEARS))]


def _fan_panels() -> list[draw.Panel]:
    # The band reaches the top left of the plot, where a legend inside it would sit.
    return [
        draw.Panel(
            title=f"{label}, FTE",
            series=[
                draw.Series(
                    key=key,
                    label=label,
                    years=YEARS,
                    principal=_rising(100_000, 500),
                    p10=_rising(80_000, 0),
                    p50=_rising(100_000, 520),
                    p90=_rising(130_000, 900),
                )
            ],
        )
        for key, label in (("demand_fte", "Demand"), ("gap_fte", "Gap (demand - supply)"))
    ]


def _figures(narrow: bool) -> dict[str, Figure]:
    steps = [
        draw.Step(label, value)
        for label, value in (
            ("Demography", 27_039), ("Productivity", 0), ("Leavers", 85_104),
            ("Retirement", 6_355), ("Joiners", -96_887), ("Cross-sector flows", 0),
        )
    ]  # fmt: skip
    lads = ["Liverpool", "Cheshire West and Chester", "Wirral", "St. Helens", "Halton"]
    return {
        "fan": draw.fan_figure(_fan_panels(), TEXT, narrow=narrow),
        "line": draw.line_figure(
            [
                draw.Panel(
                    title="Older people and dementia, persons",
                    series=[
                        draw.Series("aged_65", "Aged 65+", YEARS, _rising(480_000, 11_000)),
                        draw.Series("aged_85", "Aged 85+", YEARS, _rising(60_000, 3_000)),
                        draw.Series(
                            "dementia",
                            "With dementia, 65+ (estimate)",
                            YEARS,
                            _rising(30_000, 1_100),
                        ),
                    ],
                    y_label="Persons",
                )
            ],
            TEXT,
            narrow=narrow,
        ),
        "waterfall": draw.waterfall_figure(
            draw.Step("Gap 2026", 14_471),
            steps,
            draw.Step("Gap 2043", 36_082),
            TEXT,
            narrow=narrow,
        ),
        "bars": draw.bar_figure(
            lads,
            [8_102.8, 5_385.8, 4_317.8, 1_539.0, 1_384.3],
            TEXT,
            x_label="Gap, FTE (positive = shortfall)",
            narrow=narrow,
        ),
    }


def _texts(figure: Figure) -> list[Text]:
    return [
        t
        for t in figure.findobj(Text)
        if isinstance(t, Text) and t.get_visible() and t.get_text().strip()
    ]


def _drawn(figure: Figure) -> RendererBase:
    """Lay the figure out as saving it would, and the renderer that measured it."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()  # type: ignore[no-untyped-call]
    renderer: RendererBase = canvas.get_renderer()  # type: ignore[no-untyped-call]
    return renderer


def _inside(inner: BboxBase | None, outer: BboxBase) -> bool:
    assert inner is not None
    return bool(
        inner.x0 >= outer.x0 - 1
        and inner.x1 <= outer.x1 + 1
        and inner.y0 >= outer.y0 - 1
        and inner.y1 <= outer.y1 + 1
    )


@pytest.mark.parametrize("narrow", [False, True], ids=["wide", "narrow"])
def test_every_word_is_inside_the_picture_and_legends_clear_the_data(narrow: bool) -> None:
    for name, figure in _figures(narrow).items():
        renderer = _drawn(figure)
        width = figure.get_figwidth()
        assert width == (draw.NARROW_INCHES if narrow else draw.WIDE_INCHES), name
        for text in figure.texts:
            box = text.get_window_extent(renderer)
            assert _inside(box, figure.bbox), f"{name}: {text.get_text()!r} is cut off"
        for ax in figure.axes:
            # Everything the axes draws: tick labels, axis labels, title, legend, bar labels.
            for artist in [*ax.texts, ax.title, ax.xaxis.label, ax.yaxis.label]:
                box = artist.get_window_extent(renderer)
                assert _inside(box, figure.bbox), f"{name}: {artist.get_text()!r} is cut off"
            assert _inside(ax.get_tightbbox(renderer), figure.bbox), f"{name}: cut off"
            legend = ax.get_legend()
            if legend is None:
                continue
            # Above the plot: its lowest edge is at or over the plot's top edge.
            plot = ax.get_window_extent(renderer)
            assert legend.get_window_extent(renderer).y0 >= plot.y1 - 1, name
            if ax.title.get_text():
                title = ax.title.get_window_extent(renderer)
                assert not title.overlaps(legend.get_window_extent(renderer)), name


@pytest.mark.parametrize("narrow", [False, True], ids=["wide", "narrow"])
def test_waterfall_labels_do_not_touch(narrow: bool) -> None:
    figure = _figures(narrow)["waterfall"]
    renderer = _drawn(figure)
    ax = figure.axes[0]
    labels = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(labels) == 8
    for a, b in itertools.combinations(labels, 2):
        assert not a.overlaps(b)


def test_the_title_wraps_instead_of_losing_its_end() -> None:
    figure = draw.fan_figure(_fan_panels(), TEXT)
    words = " ".join(t.get_text() for t in _texts(figure))
    assert "adult social care" in words
    assert "roles" in words
    assert "..." not in words


@pytest.mark.parametrize(
    ("ticks", "expected"),
    [
        # A step of 1,500 must not print 1.5k as "2k" (nor 4.5k as "4k").
        ([0, 1500, 3000, 4500, 6000], ["0", "1,500", "3,000", "4,500", "6,000"]),
        ([0, 15_000, 30_000, 45_000], ["0", "15k", "30k", "45k"]),
        ([0, 2500, 5000, 7500, 10_000, 12_500], ["0", "2.5k", "5.0k", "7.5k", "10.0k", "12.5k"]),
        ([0, 2000, 4000, 6000, 8000], ["0", "2,000", "4,000", "6,000", "8,000"]),
        ([0, 50_000, 100_000, 150_000], ["0", "50k", "100k", "150k"]),
        ([2_500_000, 2_550_000, 2_600_000], ["2.50m", "2.55m", "2.60m"]),
        ([-15_000, -10_000, -5_000, 0], ["-15k", "-10k", "-5k", "0"]),
    ],
)  # fmt: skip
def test_tick_labels_say_the_tick_value(ticks: list[float], expected: list[str]) -> None:
    formatter = draw._tick_formatter(ticks)
    assert [formatter(t, None) for t in ticks] == expected


def test_year_ticks_end_on_the_horizon() -> None:
    figure = draw.fan_figure(_fan_panels(), TEXT)
    ticks = [int(t) for t in figure.axes[-1].get_xticks()]
    assert ticks[-1] == YEARS[-1]
    assert len(ticks) <= 9
    narrow = draw.fan_figure(_fan_panels(), TEXT, narrow=True)
    assert len(narrow.axes[-1].get_xticks()) <= 5
