"""Charts drawn with matplotlib (Agg for PNG, the SVG backend for SVG), no pyplot state.

Every chart carries its axes with units, a title naming the scenario, and a source line.
Lines are drawn point for point (no path simplification) and tagged with ids such as
`principal-demand_fte`, so the SVG can be checked against the numbers it was drawn from.

Layout is in inches at 100 dpi (so 1 inch is 100 px of SVG): a title block that grows with
the wrapped title, each panel's title with its legend above the plot (never over the data),
and a source strip that grows with the wrapped source. `narrow=True` draws the same chart
4.2 inches wide for a phone screen, with the same text sizes.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import matplotlib

matplotlib.use("Agg")

from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

ImageFormat = Literal["svg", "png"]
MEDIA_TYPES: dict[str, str] = {"svg": "image/svg+xml", "png": "image/png"}

# Okabe-Ito colours: distinguishable with colour-blindness, dark enough for text contrast.
COLOURS = {
    "demand_fte": "#0072B2",
    "supply_fte": "#007A5E",
    "gap_fte": "#B84A00",
    "gap_after_sharing_fte": "#8E3A80",
    "shortfall_fte": "#B84A00",
    "shortfall_after_sharing_fte": "#8E3A80",
}
SCENARIO_COLOURS = ("#0072B2", "#B84A00")
INK = "#1F1F1F"
MUTED = "#505050"
GRID = "#DDDDDD"
UP = "#B84A00"
DOWN = "#007A5E"
TOTAL = "#3C3C3C"

_RC: dict[Any, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "oneworkforce",
    "path.simplify": False,
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.edgecolor": MUTED,
    "axes.labelcolor": INK,
    "xtick.color": INK,
    "ytick.color": INK,
    "text.color": INK,
}

WIDE_INCHES = 8.0
NARROW_INCHES = 4.2
RIGHT_INCHES = 0.25
# DejaVu Sans averages about 0.55 em a character: 10 pt is ~13 characters an inch, 8 pt ~16,
# 7.5 pt ~17. The counts below are a little under, so wrapped text never runs off the edge.
TITLE_CHARS_PER_INCH = 12.5
LEGEND_INCHES_PER_CHAR = 0.062
LEGEND_HANDLE_INCHES = 0.5
FOOTER_CHARS_PER_INCH = 16.0
TITLE_LINE_INCHES = 0.18
FOOTER_LINE_INCHES = 0.135
LEGEND_FONT = 8.0
LEGEND_ROW_INCHES = 0.19
# Tick steps of 1, 2, 2.5 and 5 (x a power of ten) read at a glance; 1.5 or 3 do not.
NICE_STEPS = [1, 2, 2.5, 5, 10]
FOOTER_FONT = 7.5


@dataclass(frozen=True)
class Series:
    """One measure over the years: the principal projection and the spread of the runs."""

    key: str
    label: str
    years: Sequence[int]
    principal: Sequence[float]
    p10: Sequence[float] | None = None
    p50: Sequence[float] | None = None
    p90: Sequence[float] | None = None
    colour: str | None = None


@dataclass(frozen=True)
class Panel:
    title: str
    series: Sequence[Series]
    y_label: str = "FTE"


@dataclass(frozen=True)
class Step:
    label: str
    value: float


@dataclass(frozen=True)
class ChartText:
    title: str
    subtitle: str
    source: str
    notes: Sequence[str] = field(default_factory=tuple)


def _decimals(values: Sequence[float]) -> int:
    """The fewest decimals (up to 3) that write every value exactly: 1.5 needs one."""
    for decimals in range(4):
        if all(abs(round(v, decimals) - v) < 1e-6 * max(1.0, abs(v)) for v in values):
            return decimals
    return 3


def _tick_formatter(ticks: Sequence[float]) -> FuncFormatter:
    """Tick labels in one unit for the whole axis (persons or FTE, in thousands or millions
    when large), with just enough decimals to write each tick exactly and alike."""
    biggest = max((abs(t) for t in ticks), default=0.0)
    unit, suffix = (1e6, "m") if biggest >= 1e6 else (1e3, "k") if biggest >= 1e4 else (1.0, "")
    decimals = _decimals([t / unit for t in ticks])

    def label(value: float, _position: object = None) -> str:
        if abs(value) < 1e-9 * unit:
            return "0"
        return f"{value / unit:,.{decimals}f}{suffix}"

    return FuncFormatter(label)


def _year_ticks(ax: Axes, panels: Sequence[Panel], *, narrow: bool) -> None:
    """Year ticks ending on the last year (the horizon), at most 9 of them (5 on a phone)."""
    years = sorted({year for panel in panels for series in panel.series for year in series.years})
    if not years:
        return
    first, last = years[0], years[-1]
    most = 5 if narrow else 9
    step = next((s for s in (1, 2, 3, 4, 5, 10, 20, 25) if (last - first) // s < most), 50)
    ax.set_xticks(list(range(last, first - 1, -step))[::-1])


def _units_on(ax: Axes, axis: Literal["x", "y"] = "y") -> None:
    if axis == "y":
        ax.yaxis.set_major_formatter(_tick_formatter(list(ax.get_yticks())))
    else:
        ax.xaxis.set_major_formatter(_tick_formatter(list(ax.get_xticks())))


def _compact(value: float, *, signed: bool) -> str:
    """A short label for a bar: 85,104 -> 85k, 6,355 -> 6.4k, 512 -> 512."""
    sign = ("+" if value >= 0 else "-") if signed else ("-" if value < 0 else "")
    size = abs(value)
    if size >= 10_000:
        return f"{sign}{size / 1000:,.0f}k"
    if size >= 1000:
        return f"{sign}{size / 1000:.1f}k"
    return f"{sign}{size:,.0f}"


def _wrap(text: str, width_inches: float, chars_per_inch: float) -> list[str]:
    return textwrap.wrap(text, max(20, int(width_inches * chars_per_inch))) or [""]


@dataclass(frozen=True)
class _Layout:
    """Where things go, in inches: the figure's width, the title block and the source strip
    (both sized to their wrapped text), the margins, and the strip above each panel for its
    title and legend."""

    width: float
    title: str
    footer: str
    title_inches: float
    footer_inches: float
    left: float
    bottom: float
    strip: float

    @classmethod
    def of(
        cls, text: ChartText, *, narrow: bool, left: float, bottom: float, strip: float
    ) -> _Layout:
        width = NARROW_INCHES if narrow else WIDE_INCHES
        usable = width - 0.2
        title = textwrap.shorten(text.title, 240, placeholder="...")
        title_lines = _wrap(title, usable, TITLE_CHARS_PER_INCH) + _wrap(
            text.subtitle, usable, TITLE_CHARS_PER_INCH
        )
        footer_lines = _wrap(
            "  ".join([*text.notes, f"Source: {text.source}"]), usable, FOOTER_CHARS_PER_INCH
        )
        return cls(
            width=width,
            title="\n".join(title_lines),
            footer="\n".join(footer_lines),
            title_inches=0.12 + TITLE_LINE_INCHES * len(title_lines),
            footer_inches=0.1 + FOOTER_LINE_INCHES * len(footer_lines),
            left=left,
            bottom=bottom,
            strip=strip,
        )

    @property
    def plot_width(self) -> float:
        return self.width - self.left - RIGHT_INCHES

    def figure(self, *, panel_height: float) -> Figure:
        """A figure with fixed margins (fixed margins draw several times faster than a
        constrained layout), its title at the top and its source at the bottom."""
        top = self.title_inches + self.strip
        height = top + panel_height + self.bottom + self.footer_inches
        fig = Figure(figsize=(self.width, height), dpi=100)
        fig.subplots_adjust(
            left=self.left / self.width,
            right=1 - RIGHT_INCHES / self.width,
            bottom=(self.bottom + self.footer_inches) / height,
            top=1 - top / height,
        )
        fig.text(0.1 / self.width, 1 - 0.08 / height, self.title, fontsize=10, va="top")
        fig.text(
            0.1 / self.width,
            0.06 / height,
            self.footer,
            fontsize=FOOTER_FONT,
            color=MUTED,
            va="bottom",
            linespacing=1.3,
        )
        return fig


def _render(fig: Figure, fmt: ImageFormat) -> bytes:
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": "OneWorkforce"}
    with rc_context(_RC):
        fig.savefig(buffer, format=fmt, metadata=metadata, dpi=100 if fmt == "svg" else 150)
    return buffer.getvalue()


def _legend_labels(series: Series, *, alone: bool) -> tuple[str, str, str]:
    """Legend entries of a fan (band, p50, principal): in a panel of its own the panel title
    names the measure, so the entries say only what each mark is."""
    if alone:
        return "p10-p90", "p50", "principal"
    if series.p10 is None and series.p50 is None:
        return "", "", series.label
    return f"{series.label} p10-p90", f"{series.label} p50", f"{series.label}"


def _fan(ax: Axes, series: Series, *, alone: bool) -> None:
    colour = series.colour or COLOURS.get(series.key, INK)
    band_label, p50_label, principal_label = _legend_labels(series, alone=alone)
    years = list(series.years)
    if series.p10 is not None and series.p90 is not None:
        band = ax.fill_between(
            years,
            series.p10,
            series.p90,
            color=colour,
            alpha=0.18,
            linewidth=0,
            label=band_label,
        )
        band.set_gid(f"band-{series.key}")
    if series.p50 is not None:
        (median,) = ax.plot(
            years, series.p50, color=colour, linestyle="--", linewidth=1.2, label=p50_label
        )
        median.set_gid(f"p50-{series.key}")
    (principal,) = ax.plot(
        years,
        series.principal,
        color=colour,
        linewidth=2.2,
        marker="o",
        markersize=2.5,
        label=principal_label,
    )
    principal.set_gid(f"principal-{series.key}")


def _legend_inches(labels: Sequence[str]) -> float:
    return sum(LEGEND_HANDLE_INCHES + LEGEND_INCHES_PER_CHAR * len(label) for label in labels)


def _panel_labels(panel: Panel, *, fan: bool) -> list[str]:
    """The legend entries a panel will have (none for a lone plain line: its title names
    it)."""
    if not fan:
        return [s.label for s in panel.series] if len(panel.series) > 1 else []
    alone = len(panel.series) == 1
    labels: list[str] = []
    for series in panel.series:
        band, p50, principal = _legend_labels(series, alone=alone)
        if series.p10 is not None and series.p90 is not None:
            labels.append(band)
        if series.p50 is not None:
            labels.append(p50)
        labels.append(principal)
    return labels


def _legend_columns(labels: Sequence[str], width: float) -> int:
    """The most legend columns whose entries fit across `width` inches (entries fill each
    column top to bottom)."""
    for columns in range(len(labels), 1, -1):
        rows = math.ceil(len(labels) / columns)
        widest = [
            max(len(label) for label in labels[i : i + rows]) for i in range(0, len(labels), rows)
        ]
        needed = sum(LEGEND_HANDLE_INCHES + LEGEND_INCHES_PER_CHAR * n for n in widest)
        if needed <= width:
            return columns
    return 1


@dataclass(frozen=True)
class _Headings:
    """How each panel's title and legend sit above its plot: side by side when every panel's
    fit, else the legend under the title, in as many rows as it needs."""

    stacked: bool
    columns: list[int]
    rows: list[int]

    @classmethod
    def plan(cls, panels: Sequence[Panel], plot_width: float, *, fan: bool) -> _Headings:
        labels = [_panel_labels(p, fan=fan) for p in panels]
        stacked = any(
            len(p.title) / TITLE_CHARS_PER_INCH + _legend_inches(entries) > plot_width - 0.2
            for p, entries in zip(panels, labels, strict=True)
        )
        if not stacked:
            return cls(False, [max(len(entries), 1) for entries in labels], [0] * len(panels))
        columns = [_legend_columns(entries, plot_width) for entries in labels]
        rows = [math.ceil(len(entries) / n) for entries, n in zip(labels, columns, strict=True)]
        return cls(True, columns, rows)

    def strip(self, index: int) -> float:
        """Inches above a panel's plot for its title and legend."""
        return 0.3 + LEGEND_ROW_INCHES * self.rows[index]

    def draw(self, ax: Axes, index: int, title: str) -> None:
        """The panel's title at the left above the plot and its legend beside or under it:
        above the plot, so it never hides a line."""
        handles, labels = ax.get_legend_handles_labels()
        pad = 5 + LEGEND_ROW_INCHES * 72 * self.rows[index] if labels else 5
        ax.set_title(title, fontsize=10, loc="left", pad=pad)
        if not labels:
            return
        ax.legend(
            handles,
            labels,
            fontsize=LEGEND_FONT,
            frameon=False,
            loc="lower left" if self.stacked else "lower right",
            bbox_to_anchor=(0.0, 1.0) if self.stacked else (1.0, 1.0),
            ncols=self.columns[index],
            borderaxespad=0.15,
            handlelength=1.8,
            columnspacing=1.2,
        )


def _panel_axes(
    panels: Sequence[Panel], text: ChartText, *, narrow: bool, fan: bool, x_label: str
) -> tuple[Figure, list[Axes], _Headings]:
    layout = _Layout.of(text, narrow=narrow, left=0.85, bottom=0.55, strip=0.0)
    headings = _Headings.plan(panels, layout.plot_width, fan=fan)
    panel_height = 1.7 if narrow else 2.0
    # Rows in inches: each panel's strip (its title and legend, as tall as they need) above
    # its plot, with a little air between one plot and the next strip.
    heights: list[float] = []
    for index in range(len(panels)):
        heights += [headings.strip(index) + (0.12 if index else 0.0), panel_height]
    fig = layout.figure(panel_height=sum(heights))
    grid = fig.add_gridspec(len(heights), 1, height_ratios=heights, hspace=0)
    first = fig.add_subplot(grid[1, 0])
    axes = [first] + [
        fig.add_subplot(grid[2 * index + 1, 0], sharex=first) for index in range(1, len(panels))
    ]
    for ax in axes:
        ax.set_axisbelow(True)
        ax.grid(axis="y", color=GRID, linewidth=0.6)
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    axes[-1].set_xlabel(x_label)
    return fig, axes, headings


def fan_figure(panels: Sequence[Panel], text: ChartText, *, narrow: bool = False) -> Figure:
    """Fan charts: one panel per measure, p10-p90 band, p50 (dashed) and principal lines."""
    with rc_context(_RC):
        fig, axes, headings = _panel_axes(
            panels, text, narrow=narrow, fan=True, x_label="Year (as at 31 March)"
        )
        for index, (ax, panel) in enumerate(zip(axes, panels, strict=True)):
            for series in panel.series:
                _fan(ax, series, alone=len(panel.series) == 1)
            ax.set_ylabel(panel.y_label)
            ax.axhline(0, color=MUTED, linewidth=0.6)
            _units_on(ax)
            headings.draw(ax, index, panel.title)
        _year_ticks(axes[-1], panels, narrow=narrow)
        return fig


def line_figure(panels: Sequence[Panel], text: ChartText, *, narrow: bool = False) -> Figure:
    """Plain lines (no bands), one panel each, for trends such as population."""
    with rc_context(_RC):
        fig, axes, headings = _panel_axes(
            panels, text, narrow=narrow, fan=False, x_label="Year (mid-year)"
        )
        for index, (ax, panel) in enumerate(zip(axes, panels, strict=True)):
            for series in panel.series:
                (line,) = ax.plot(
                    list(series.years),
                    series.principal,
                    linewidth=2,
                    color=series.colour or INK,
                    label=series.label,
                )
                line.set_gid(f"line-{series.key}")
            ax.set_ylabel(panel.y_label)
            _units_on(ax)
            if len(panel.series) == 1:
                # One line needs no legend: the panel's title names it.
                line.set_label("_" + series.label)
            headings.draw(ax, index, panel.title)
        _year_ticks(axes[-1], panels, narrow=narrow)
        return fig


def waterfall_figure(
    start: Step, steps: Sequence[Step], end: Step, text: ChartText, *, narrow: bool = False
) -> Figure:
    """A waterfall: the starting gap, each contribution up or down, the final gap."""
    labels = [start.label, *(s.label for s in steps), end.label]
    longest = max(len(label) for label in labels)
    # Tick labels at 45 degrees take about 0.7 x their length in height.
    bottom = 0.3 + 0.6 * longest * 0.062
    with rc_context(_RC):
        layout = _Layout.of(text, narrow=narrow, left=0.85, bottom=bottom, strip=0.3)
        fig = layout.figure(panel_height=2.6 if narrow else 3.2)
        ax = fig.subplots()
        ax.set_axisbelow(True)
        bottoms: list[float] = [0.0]
        heights: list[float] = [start.value]
        colours = [TOTAL]
        level = start.value
        for step in steps:
            bottoms.append(level if step.value >= 0 else level + step.value)
            heights.append(abs(step.value))
            colours.append(UP if step.value >= 0 else DOWN)
            level += step.value
        bottoms.append(0.0)
        heights.append(end.value)
        colours.append(TOTAL)
        bars = ax.bar(range(len(labels)), heights, bottom=bottoms, color=colours, width=0.65)
        for index, bar in enumerate(bars):
            bar.set_gid(f"step-{index}")
        values = [start.value, *(s.value for s in steps), end.value]
        for index, (bar, value) in enumerate(zip(bars, values, strict=True)):
            signed = index not in (0, len(values) - 1)
            exact = f"{value:+,.0f}" if signed else f"{value:,.0f}"
            # Each label sits where its bar ends: above a rise, below a fall, so labels of
            # neighbouring bars at the same level never meet.
            ends = (bar.get_y(), bar.get_y() + bar.get_height())
            ax.annotate(
                _compact(value, signed=signed) if narrow else exact,
                (bar.get_x() + bar.get_width() / 2, max(ends) if value >= 0 else min(ends)),
                ha="center",
                va="bottom" if value >= 0 else "top",
                fontsize=7.5,
                xytext=(0, 2 if value >= 0 else -2),
                textcoords="offset points",
            )
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
        ax.tick_params(axis="x", pad=1)
        ax.set_ylabel("Gap after sharing, FTE\n(positive = shortfall)" if narrow else
                      "Gap after sharing, FTE (positive = shortfall)")  # fmt: skip
        ax.margins(y=0.08)
        ax.axhline(0, color=MUTED, linewidth=0.6)
        ax.grid(axis="y", color=GRID, linewidth=0.6)
        _units_on(ax)
        ax.legend(
            handles=[
                Patch(color=UP, label="widens the gap"),
                Patch(color=DOWN, label="narrows the gap"),
                Patch(color=TOTAL, label="gap"),
            ],
            fontsize=LEGEND_FONT,
            frameon=False,
            loc="lower left",
            # From the figure's left edge: on a phone the legend is wider than the plot.
            bbox_to_anchor=(-(layout.left - 0.1) / layout.plot_width, 1.0),
            ncols=3,
            borderaxespad=0.15,
        )
        return fig


def bar_figure(
    labels: Sequence[str],
    values: Sequence[float],
    text: ChartText,
    *,
    x_label: str,
    narrow: bool = False,
) -> Figure:
    """Horizontal bars, largest first (for example the gap by local authority), each with
    its value at its end."""
    width = NARROW_INCHES if narrow else WIDE_INCHES
    longest = max((len(label) for label in labels), default=4)
    left = min(0.25 + 0.065 * longest, 0.45 * width)
    names = [
        label if len(label) * 0.065 <= left - 0.2 else textwrap.shorten(
            label, int((left - 0.2) / 0.065), placeholder="...")
        for label in labels
    ]  # fmt: skip
    with rc_context(_RC):
        layout = _Layout.of(text, narrow=narrow, left=left, bottom=0.55, strip=0.1)
        fig = layout.figure(panel_height=0.3 * max(len(labels), 1) + 0.2)
        ax = fig.subplots()
        ax.set_axisbelow(True)
        positions = list(range(len(labels)))[::-1]
        colours = [UP if value >= 0 else DOWN for value in values]
        bars = ax.barh(positions, values, color=colours, height=0.65)
        for index, bar in enumerate(bars):
            bar.set_gid(f"bar-{index}")
        for bar, value in zip(bars, values, strict=True):
            ax.annotate(
                _compact(value, signed=False),
                (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                ha="left" if value >= 0 else "right",
                va="center",
                fontsize=7.5,
                xytext=(3 if value >= 0 else -3, 0),
                textcoords="offset points",
            )
        ax.set_yticks(positions, names, fontsize=8)
        ax.set_ylim(-0.6, len(labels) - 0.4)
        ax.margins(x=0.2 if narrow else 0.12)
        ax.set_xlabel(x_label)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4 if narrow else "auto", steps=NICE_STEPS))
        ax.axvline(0, color=MUTED, linewidth=0.6)
        ax.grid(axis="x", color=GRID, linewidth=0.6)
        _units_on(ax, "x")
        return fig


def fan_chart(
    panels: Sequence[Panel], text: ChartText, fmt: ImageFormat, *, narrow: bool = False
) -> bytes:
    """Fan charts as SVG or PNG (see `fan_figure`)."""
    return _render(fan_figure(panels, text, narrow=narrow), fmt)


def line_chart(
    panels: Sequence[Panel], text: ChartText, fmt: ImageFormat, *, narrow: bool = False
) -> bytes:
    """Line charts as SVG or PNG (see `line_figure`)."""
    return _render(line_figure(panels, text, narrow=narrow), fmt)


def waterfall_chart(
    start: Step,
    steps: Sequence[Step],
    end: Step,
    text: ChartText,
    fmt: ImageFormat,
    *,
    narrow: bool = False,
) -> bytes:
    """A waterfall as SVG or PNG (see `waterfall_figure`)."""
    return _render(waterfall_figure(start, steps, end, text, narrow=narrow), fmt)


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    text: ChartText,
    fmt: ImageFormat,
    *,
    x_label: str,
    narrow: bool = False,
) -> bytes:
    """Horizontal bars as SVG or PNG (see `bar_figure`)."""
    return _render(bar_figure(labels, values, text, x_label=x_label, narrow=narrow), fmt)
