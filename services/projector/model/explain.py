"""Explain the change in gap (after sharing) from the base year to the horizon.

Method: sequential one-at-a-time switching. Starting from a projection with every driver of
change off (demand and supply stay at the base year), the components are switched on one
after another in the fixed order of COMPONENTS; each component's contribution is the change
in (gap at horizon - gap at base) that switching it on adds. The contributions therefore add
up exactly to the total change of the principal projection; interactions between components
are credited to the later one in the order. The residual column carries only rounding.
Principal run only.
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
    """contributions_fte[g, k] is column k's share of total_change_fte[g]."""

    columns: tuple[str, ...]
    contributions_fte: FloatArray  # (G, len(columns))
    total_change_fte: FloatArray  # (G,)

    def as_dict(self, group: int) -> dict[str, float]:
        return {
            name: float(self.contributions_fte[group, k]) for k, name in enumerate(self.columns)
        }


def decompose(state_changes: FloatArray, total_change: FloatArray) -> Explanation:
    """From the gap change of each switch state (S+1, G) and the principal's change (G,)."""
    steps = np.diff(state_changes, axis=0).T  # (G, S)
    residual = total_change - state_changes[0] - steps.sum(axis=1)
    contributions = np.concatenate([steps, residual[:, None]], axis=1)
    return Explanation(
        columns=EXPLAIN_COLUMNS,
        contributions_fte=contributions,
        total_change_fte=np.asarray(total_change, dtype=np.float64),
    )
