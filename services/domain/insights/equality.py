"""Equality indicators: who the workforce is, against the local population.

In the manner of the Workforce Race Equality Standard's indicator 1 (representation of each
ethnic group by pay band or role level) and the Workforce Disability Equality Standard's
equivalent: for each group of staff (a sector, an organisation, a role, a career level), the
share of each ethnic group among staff whose ethnicity is stated, with a 95% Wilson interval,
beside that group's share of the area's residents (Census 2021, all ages: no local table by
age was found), and their ratio (1 = represented as in the population). Disability is set
beside the residents disabled under the Equality Act in the same way (Census 2021 TS038, all
ages); sex is shares of staff who stated it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Interval:
    share: float
    lower: float
    upper: float


def wilson(count: int, total: int, z: float = Z95) -> Interval | None:
    """The share count / total with its Wilson score interval (None when total is 0)."""
    if total <= 0:
        return None
    p = count / total
    denominator = 1.0 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return Interval(share=p, lower=max(0.0, centre - half), upper=min(1.0, centre + half))


def representation_ratio(staff_share: float | None, population_share: float | None) -> float | None:
    """Staff share over population share: 1 = as in the population, below 1 = fewer."""
    if staff_share is None or not population_share:
        return None
    return staff_share / population_share
