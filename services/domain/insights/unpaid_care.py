"""The unpaid workforce: Census 2021 carers by hours band, valued in hours and FTE.

Unpaid care is context and a scenario lever, never paid supply. Hours are valued per band at
the stated hours a week below (the 50-or-more band is open-ended: 65 is an assumption, since
ONS gives no mean) and 37.5 hours a week make one FTE.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.domain.insights.census import UNPAID_BANDS

HOURS_PER_FTE_WEEK = 37.5
ASSUMED_HOURS_PER_WEEK: dict[str, float] = {
    "9_or_less": 5.0,
    "10_to_19": 15.0,
    "20_to_34": 27.0,
    "35_to_49": 42.0,
    "50_or_more": 65.0,
}


@dataclass(frozen=True)
class UnpaidBand:
    band: str
    label: str
    persons: int
    assumed_hours_per_week: float

    @property
    def hours_per_week(self) -> float:
        return self.persons * self.assumed_hours_per_week


@dataclass(frozen=True)
class UnpaidCare:
    residents_5_plus: int
    no_unpaid_care: int
    bands: tuple[UnpaidBand, ...]

    @property
    def carers(self) -> int:
        return sum(b.persons for b in self.bands)

    @property
    def hours_per_week(self) -> float:
        return sum(b.hours_per_week for b in self.bands)

    @property
    def fte_equivalent(self) -> float:
        return self.hours_per_week / HOURS_PER_FTE_WEEK


def unpaid_care(counts: Mapping[str, int]) -> UnpaidCare:
    """Carers and hours from an area's Census counts (as `census.sum_over` adds them up)."""
    return UnpaidCare(
        residents_5_plus=counts.get("total", 0),
        no_unpaid_care=counts.get("none", 0),
        bands=tuple(
            UnpaidBand(
                band=band,
                label=label,
                persons=counts.get(band, 0),
                assumed_hours_per_week=ASSUMED_HOURS_PER_WEEK[band],
            )
            for band, label in UNPAID_BANDS.items()
        ),
    )


def formal_fte_for_change(hours_per_week: float, change: float, *, substitution: float) -> float:
    """Formal care FTE needed when unpaid care hours change by `change` (a fraction: -0.1 is
    10% fewer hours), of which `substitution` (a fraction) would have to be replaced by paid
    care. A rise in unpaid hours lowers the need, a fall raises it."""
    return -change * hours_per_week * substitution / HOURS_PER_FTE_WEEK
