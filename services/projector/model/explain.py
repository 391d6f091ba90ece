"""Explain the change in gap (after sharing) between any two years of a projection.

Method: sequential one-at-a-time switching. Starting from a projection with every driver of
change off (demand and supply stay at the base year), the components are switched on one
after another in the fixed order of COMPONENTS; each component's contribution is the change
in (gap in year `to` - gap in year `from`) that switching it on adds. The contributions
therefore add up exactly to the total change of the principal projection; interactions
between components are credited to the later one in the order. The residual column carries
only rounding. Principal run only.

The gap of every switch state is kept for every year, so any pair of years can be explained
after the run (`between()`), and sums over groups (a sector's roles) explain the sum.

Sign convention: FTE of gap after sharing. A positive contribution widens the gap (more
shortfall); a negative one narrows it. So demand growth is positive and joiners negative.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from services.projector.model.inputs import FloatArray

COMPONENTS: tuple[str, ...] = (
    "demography",
    "productivity",
    "substitution",
    "leavers",
    "retirement",
    "joiners",
    "cross_sector_flows",
    "sharing",
)
EXPLAIN_COLUMNS: tuple[str, ...] = (*COMPONENTS, "residual")
# Net effects: sums of the gross components above, so that two large gross figures of
# opposite sign (leavers and joiners) are also read as the one net change they make.
NET_EFFECTS: dict[str, tuple[str, ...]] = {
    "demand": ("demography", "productivity", "substitution"),
    "supply": ("leavers", "retirement", "joiners", "cross_sector_flows"),
    "sharing": ("sharing",),
}


@dataclass(frozen=True)
class Switches:
    """Which drivers of change are on. productivity covers non-demographic growth and
    prevention; joiners cover base starters, recruitment change, international recruitment,
    the training pipeline and agency conversion."""

    demography: bool = True
    productivity: bool = True
    substitution: bool = True
    leavers: bool = True
    retirement: bool = True
    joiners: bool = True
    cross_sector_flows: bool = True
    sharing: bool = True


def switch_sequence() -> list[Switches]:
    """States 0..len(COMPONENTS): state k has the first k components on."""
    names = [f.name for f in fields(Switches)]
    assert tuple(names) == COMPONENTS
    return [
        Switches(**{name: i < k for i, name in enumerate(names)}) for k in range(len(names) + 1)
    ]


@dataclass(frozen=True, eq=False)
class Explanation:
    """contributions_fte[g, k] is column k's share of total_change_fte[g] (base to horizon).

    state_gaps_fte (S+1, G, T) is the gap after sharing of each switch state in every year
    and gap_after_sharing_fte (G, T) the principal's, from which between() explains any
    pair of years. The base-year gap (before sharing) is split into vacancies and sickness
    absence: base_gap_fte = base_vacancies_fte + base_sickness_absence_fte.
    """

    columns: tuple[str, ...]
    contributions_fte: FloatArray  # (G, len(columns))
    total_change_fte: FloatArray  # (G,)
    state_gaps_fte: FloatArray  # (S+1, G, T)
    gap_after_sharing_fte: FloatArray  # (G, T)
    base_gap_fte: FloatArray  # (G,)
    base_vacancies_fte: FloatArray  # (G,)
    base_sickness_absence_fte: FloatArray  # (G,)

    def as_dict(self, group: int) -> dict[str, float]:
        return {
            name: float(self.contributions_fte[group, k]) for k, name in enumerate(self.columns)
        }


def between(
    state_gaps: FloatArray, gap_after_sharing: FloatArray, first: int, last: int
) -> tuple[FloatArray, FloatArray]:
    """Contributions (..., len(EXPLAIN_COLUMNS)) and total change (...) from year index
    `first` to `last`, for state gaps (S+1, ..., T) and the principal's gaps (..., T)."""
    change = state_gaps[..., last] - state_gaps[..., first]  # (S+1, ...)
    steps = np.moveaxis(np.diff(change, axis=0), 0, -1)  # (..., S)
    total = gap_after_sharing[..., last] - gap_after_sharing[..., first]
    residual = total - change[0] - steps.sum(axis=-1)
    return np.concatenate([steps, residual[..., None]], axis=-1), total


def net_effects(contributions: dict[str, float]) -> dict[str, float]:
    """Net demand, supply and sharing effects from gross contributions (same sign rule)."""
    return {
        name: sum(contributions.get(part, 0.0) for part in parts)
        for name, parts in NET_EFFECTS.items()
    }


def decompose(
    state_gaps: FloatArray,
    gap_after_sharing: FloatArray,
    *,
    base_gap_fte: FloatArray,
    base_vacancies_fte: FloatArray,
    base_sickness_absence_fte: FloatArray,
) -> Explanation:
    """From the gap of each switch state (S+1, G, T) and the principal's gap (G, T)."""
    contributions, total = between(state_gaps, gap_after_sharing, 0, state_gaps.shape[-1] - 1)
    return Explanation(
        columns=EXPLAIN_COLUMNS,
        contributions_fte=contributions,
        total_change_fte=total,
        state_gaps_fte=np.asarray(state_gaps, dtype=np.float64),
        gap_after_sharing_fte=np.asarray(gap_after_sharing, dtype=np.float64),
        base_gap_fte=np.asarray(base_gap_fte, dtype=np.float64),
        base_vacancies_fte=np.asarray(base_vacancies_fte, dtype=np.float64),
        base_sickness_absence_fte=np.asarray(base_sickness_absence_fte, dtype=np.float64),
    )
