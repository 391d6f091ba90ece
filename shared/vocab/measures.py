"""The measures a projection reports, each in FTE by area, role and year."""

from __future__ import annotations

from typing import Literal, get_args

Measure = Literal[
    "demand_fte",
    "supply_fte",
    "gap_fte",
    "gap_after_sharing_fte",
    "shortfall_fte",
    "shortfall_after_sharing_fte",
]
MEASURES: tuple[str, ...] = get_args(Measure)
