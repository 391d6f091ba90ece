"""The unpaid workforce: Census 2021 carers by hours band, valued in hours and FTE.

Unpaid care is context and a scenario lever, never paid supply. Hours are valued per band at
the stated hours a week below (the 50-or-more band is open-ended: 65 is an assumption, since
ONS gives no mean) and 37.5 hours a week make one FTE.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from services.domain.insights.census import UNPAID_BANDS, sum_over, unpaid_care_by_lad
from shared.schemas.scenario_parameters import HOURS_PER_FTE_WEEK

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


def paid_fte_for_shift(hours_per_week: float, share_of_hours: float) -> float:
    """Paid care FTE when a share of unpaid care hours moves to paid care (the scenario lever
    unpaid_care_shift); negative when unpaid carers take hours back."""
    return share_of_hours * hours_per_week / HOURS_PER_FTE_WEEK


def unpaid_care_hours(lad_codes: Sequence[str]) -> NDArray[np.float64]:
    """Unpaid care hours a week given in each LAD (0 for a code the Census table lacks)."""
    table = unpaid_care_by_lad()
    return np.array(
        [unpaid_care(sum_over(table, [code])).hours_per_week for code in lad_codes],
        dtype=np.float64,
    )
