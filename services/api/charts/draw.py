"""Charts drawn with matplotlib (Agg for PNG, the SVG backend for SVG), no pyplot state.

Every chart carries its axes with units, a title naming the scenario, and a source line.
Lines are drawn point for point (no path simplification) and tagged with ids such as
`principal-demand_fte`, so the SVG can be checked against the numbers it was drawn from.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import matplotlib

matplotlib.use("Agg")

from matplotlib import rc_context
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


def _fte(value: float, _position: object = None) -> str:
    if abs(value) >= 10_000:
        return f"{value / 1000:,.0f}k"
    if abs(value) >= 1000:
        return f"{value / 1000:,.1f}k"
    return f"{value:,.0f}"


FOOTER_INCHES = 0.3


def _figure(
    width: float,
    height: float,
    *,
    left: float = 0.85,
    bottom: float = 0.85,
    top: float = 0.75,
    hspace: float = 0.35,
) -> Figure:
    """A figure with fixed margins in inches: a title strip at the top and, at the bottom,
    the x axis label and a strip for the source line. (Fixed margins draw several times
    faster than a constrained layout.)"""
    fig = Figure(figsize=(width, height), dpi=100)
    fig.subplots_adjust(
        left=left / width,
        right=1 - 0.2 / width,
        bottom=(bottom + FOOTER_INCHES) / height,
        top=1 - top / height,
        hspace=hspace,
    )
    return fig


def _frame(fig: Figure, text: ChartText) -> None:
    text = ChartText(
        title=textwrap.shorten(text.title, 100, placeholder="..."),
        subtitle=text.subtitle,
        source=text.source,
        notes=text.notes,
    )
    fig.suptitle(
        f"{text.title}\n{text.subtitle}", fontsize=10, x=0.01, y=0.995, ha="left", va="top"
    )
    footer = "  ".join([*text.notes, f"Source: {text.source}"])
    fig.text(0.01, 0.005, footer, fontsize=7.5, color=MUTED, ha="left", va="bottom", wrap=True)


def _render(fig: Figure, fmt: ImageFormat) -> bytes:
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": "OneWorkforce"}
    fig.savefig(buffer, format=fmt, metadata=metadata, dpi=100 if fmt == "svg" else 150)
    return buffer.getvalue()


def _fan(ax: object, series: Series) -> None:
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    colour = series.colour or COLOURS.get(series.key, INK)
    years = list(series.years)
    if series.p10 is not None and series.p90 is not None:
        band = ax.fill_between(
            years,
            series.p10,
            series.p90,
            color=colour,
            alpha=0.18,
            linewidth=0,
            label=f"{series.label}: p10-p90",
        )
        band.set_gid(f"band-{series.key}")
    if series.p50 is not None:
        (median,) = ax.plot(
            years,
            series.p50,
            color=colour,
            linestyle="--",
            linewidth=1.2,
            label=f"{series.label}: p50",
        )
        median.set_gid(f"p50-{series.key}")
    (principal,) = ax.plot(
        years,
        series.principal,
        color=colour,
        linewidth=2.2,
        marker="o",
        markersize=2.5,
        label=f"{series.label}: principal",
    )
    principal.set_gid(f"principal-{series.key}")


def fan_chart(panels: Sequence[Panel], text: ChartText, fmt: ImageFormat) -> bytes:
    """Fan charts: one panel per measure, p10-p90 band, p50 (dashed) and principal lines."""
    with rc_context(_RC):
        fig = _figure(8.0, 1.9 + 2.3 * len(panels), hspace=0.3)
        axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
        for ax, panel in zip(axes, panels, strict=True):
            for series in panel.series:
                _fan(ax, series)
            ax.set_title(panel.title, fontsize=10, loc="left")
            ax.set_ylabel(panel.y_label)
            ax.yaxis.set_major_formatter(FuncFormatter(_fte))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(axis="y", color="#DDDDDD", linewidth=0.6)
            ax.axhline(0, color=MUTED, linewidth=0.6)
            ax.legend(fontsize=7.5, loc="upper left", frameon=False, ncols=3)
        axes[-1].set_xlabel("Year (as at 31 March)")
        _frame(fig, text)
        return _render(fig, fmt)


def waterfall_chart(
    start: Step, steps: Sequence[Step], end: Step, text: ChartText, fmt: ImageFormat
) -> bytes:
    """A waterfall: the starting gap, each contribution up or down, the final gap."""
    with rc_context(_RC):
        fig = _figure(8.0, 5.4, bottom=1.25, top=1.0)
        ax = fig.subplots()
        labels = [start.label, *(s.label for s in steps), end.label]
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
            ax.annotate(
                (f"{value:+,.0f}" if signed else f"{value:,.0f}"),
                (bar.get_x() + bar.get_width() / 2, bar.get_y() + bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=7.5,
                xytext=(0, 2),
                textcoords="offset points",
            )
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("Gap after sharing, FTE (positive = shortfall)")
        ax.yaxis.set_major_formatter(FuncFormatter(_fte))
        ax.axhline(0, color=MUTED, linewidth=0.6)
        ax.grid(axis="y", color="#DDDDDD", linewidth=0.6)
        ax.legend(
            handles=[
                Patch(color=UP, label="widens the gap"),
                Patch(color=DOWN, label="narrows the gap"),
                Patch(color=TOTAL, label="gap"),
            ],
            fontsize=7.5,
            frameon=False,
            loc="lower left",
            bbox_to_anchor=(0, 1.0),
            ncols=3,
        )
        _frame(fig, text)
        return _render(fig, fmt)


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    text: ChartText,
    fmt: ImageFormat,
    *,
    x_label: str,
) -> bytes:
    """Horizontal bars, largest first (for example the gap by local authority)."""
    with rc_context(_RC):
        fig = _figure(8.0, 2.2 + 0.3 * max(len(labels), 1), left=2.2, bottom=0.6)
        ax = fig.subplots()
        positions = list(range(len(labels)))[::-1]
        colours = [UP if value >= 0 else DOWN for value in values]
        bars = ax.barh(positions, values, color=colours, height=0.65)
        for index, bar in enumerate(bars):
            bar.set_gid(f"bar-{index}")
        ax.set_yticks(positions, labels, fontsize=8)
        ax.set_xlabel(x_label)
        ax.xaxis.set_major_formatter(FuncFormatter(_fte))
        ax.axvline(0, color=MUTED, linewidth=0.6)
        ax.grid(axis="x", color="#DDDDDD", linewidth=0.6)
        _frame(fig, text)
        return _render(fig, fmt)


def line_chart(panels: Sequence[Panel], text: ChartText, fmt: ImageFormat) -> bytes:
    """Plain lines (no bands), one panel each, for trends such as population."""
    with rc_context(_RC):
        fig = _figure(8.0, 1.9 + 2.2 * len(panels), hspace=0.3)
        axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
        for ax, panel in zip(axes, panels, strict=True):
            for series in panel.series:
                (line,) = ax.plot(
                    list(series.years),
                    series.principal,
                    linewidth=2,
                    color=series.colour or INK,
                    label=series.label,
                )
                line.set_gid(f"line-{series.key}")
            ax.set_title(panel.title, fontsize=10, loc="left")
            ax.set_ylabel(panel.y_label)
            ax.yaxis.set_major_formatter(FuncFormatter(_fte))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(axis="y", color="#DDDDDD", linewidth=0.6)
            ax.legend(fontsize=7.5, frameon=False, loc="upper left")
        axes[-1].set_xlabel("Year (mid-year)")
        _frame(fig, text)
        return _render(fig, fmt)
