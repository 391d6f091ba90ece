"""Paired comparison of two projection runs of one scope, years, seed and iteration count.

Draws depend only on the seed and the draw's number (uncertainty.standard_normals), never on
the scenario, the cells or the roles, so draw i of a scenario and draw i of the baseline
share their random numbers (common random numbers). The difference other - base is then
taken draw by draw: its principal is run 0's difference, its p10/p50/p90 are percentiles of
the N paired differences, and share_better is the share of those draws in which the other
run is better (more supply; less demand, gap or gap after sharing). Paired differences
spread far less than the difference of two independent runs, so "does this plan close the
gap?" has an answer. Units: FTE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.projector.model.inputs import FloatArray
from services.projector.model.uncertainty import run_percentiles

COMPARED_MEASURES: tuple[str, ...] = (
    "demand_fte",
    "supply_fte",
    "gap_fte",
    "gap_after_sharing_fte",
)
# +1: a higher value of the other run is better; -1: a lower one is.
BETTER_DIRECTION: dict[str, int] = {
    "demand_fte": -1,
    "supply_fte": 1,
    "gap_fte": -1,
    "gap_after_sharing_fte": -1,
}


@dataclass(frozen=True, eq=False)
class Comparison:
    """Every array (M, G, T) for measures COMPARED_MEASURES, groups and years."""

    groups: tuple[str, ...]
    base_principal: FloatArray
    other_principal: FloatArray
    difference_principal: FloatArray
    difference_p10: FloatArray
    difference_p50: FloatArray
    difference_p90: FloatArray
    share_better: FloatArray | None  # None without draws


def measures_from_draws(draws: FloatArray) -> FloatArray:
    """(4, N+1, R, T) compared measures from stored draws (demand, supply, gap after sharing)."""
    demand, supply, gap_after = draws[0], draws[1], draws[2]
    return np.stack([demand, supply, demand - supply, gap_after])


def align_roles(values: FloatArray, roles: list[str], all_roles: list[str]) -> FloatArray:
    """Place (M, N+1, R, T) on the axis all_roles; a role the run lacks counts as zero FTE."""
    out = np.zeros((*values.shape[:2], len(all_roles), values.shape[3]))
    index = {code: i for i, code in enumerate(all_roles)}
    out[:, :, [index[code] for code in roles], :] = values
    return out


def group_roles(values: FloatArray, membership: list[list[int]]) -> FloatArray:
    """(M, N+1, G, T): sums over each group's role indices, draw by draw (exact pairing)."""
    return np.stack([values[:, :, members, :].sum(axis=2) for members in membership], axis=2)


def compare(base: FloatArray, other: FloatArray, groups: tuple[str, ...]) -> Comparison:
    """Paired comparison of (M, N+1, G, T) values of two runs with the same draws."""
    if base.shape != other.shape:
        raise ValueError(f"runs are not paired: shapes {base.shape} and {other.shape}")
    difference = other - base
    draws = difference[:, 1:]
    if draws.shape[1]:
        p10, p50, p90 = run_percentiles(draws, axis=1)
        direction = np.asarray([BETTER_DIRECTION[m] for m in COMPARED_MEASURES])
        better = (draws * direction[:, None, None, None]) > 0.0
        share: FloatArray | None = better.mean(axis=1)
    else:
        p10 = p50 = p90 = difference[:, 0]
        share = None
    return Comparison(
        groups=groups,
        base_principal=base[:, 0],
        other_principal=other[:, 0],
        difference_principal=difference[:, 0],
        difference_p10=p10,
        difference_p50=p50,
        difference_p90=p90,
        share_better=share,
    )
