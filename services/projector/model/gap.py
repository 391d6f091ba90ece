"""Gap (demand - effective supply, positive = shortfall) and gap after staff sharing.

Sharing, per agreement, role in scope, run and year: each party with a surplus (negative
gap) can lend up to its cap; the amount lent is the smaller of what lenders can lend in
total and the parties' total shortfall. Lenders give in proportion to what each can lend,
borrowers receive in proportion to their shortfall, so no party swings from shortfall to
surplus or back. Agreements are applied one after another in order of their key, each on
what the previous ones left. Units: FTE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.projector.model.inputs import FloatArray, IntArray, ProjectionInputs, find_cells


def gap_fte(demand_fte: FloatArray, effective_supply_fte: FloatArray) -> FloatArray:
    gap: FloatArray = demand_fte - effective_supply_fte
    return gap


@dataclass(frozen=True, eq=False)
class SharingStep:
    """One agreement: slots[p, s] indexes the sharing cell of party p and role s, or -1."""

    key: str
    slots: IntArray  # (P, S)
    cap_fte: FloatArray  # (P, S)


@dataclass(frozen=True, eq=False)
class SharingPlan:
    cells: IntArray  # (m,) cells in any agreement, ascending
    steps: tuple[SharingStep, ...]


def prepare_sharing(inputs: ProjectionInputs, *, enabled: bool = True) -> SharingPlan:
    """Index the agreements' party cells; parties without a cell for a role take no part."""
    empty = SharingPlan(cells=np.zeros(0, dtype=np.int64), steps=())
    if not enabled or not inputs.agreements:
        return empty
    code_index = {code: i for i, code in enumerate(inputs.role_codes)}
    raw: list[tuple[str, IntArray, FloatArray]] = []
    for agreement in sorted(inputs.agreements, key=lambda a: a.key):
        orgs = np.array(agreement.party_orgs, dtype=np.int64)
        roles = np.array([code_index.get(code, -1) for code in agreement.role_codes], np.int64)
        cells = find_cells(
            inputs,
            np.repeat(orgs, roles.size),
            np.tile(roles, orgs.size),
        ).reshape(orgs.size, roles.size)
        if np.count_nonzero(cells >= 0) < 2:
            continue
        raw.append((agreement.key, cells, np.asarray(agreement.lender_cap_fte, dtype=np.float64)))
    if not raw:
        return empty
    involved = np.unique(np.concatenate([cells[cells >= 0] for _, cells, _ in raw]))
    steps = tuple(
        SharingStep(
            key=key,
            slots=np.where(cells >= 0, np.searchsorted(involved, cells), -1).astype(np.int64),
            cap_fte=caps,
        )
        for key, cells, caps in raw
    )
    return SharingPlan(cells=involved.astype(np.int64), steps=steps)


def share_surplus(gap: FloatArray, plan: SharingPlan) -> FloatArray:
    """Gap after sharing for the plan's cells; gap is (..., m) with m = len(plan.cells)."""
    n_cells = plan.cells.shape[0]
    padded = np.zeros((*gap.shape[:-1], n_cells + 1))
    padded[..., :n_cells] = gap
    for step in plan.steps:
        slots = np.where(step.slots >= 0, step.slots, n_cells)
        before = padded[..., slots]  # (..., P, S)
        lendable = np.minimum(np.maximum(-before, 0.0), step.cap_fte)
        shortfall = np.maximum(before, 0.0)
        total_lendable = lendable.sum(axis=-2)
        total_shortfall = shortfall.sum(axis=-2)
        moved = np.minimum(total_lendable, total_shortfall)
        lend_share = np.divide(
            moved, total_lendable, out=np.zeros_like(moved), where=total_lendable > 0
        )
        borrow_share = np.divide(
            moved, total_shortfall, out=np.zeros_like(moved), where=total_shortfall > 0
        )
        after = (
            before + lendable * lend_share[..., None, :] - shortfall * borrow_share[..., None, :]
        )
        padded[..., slots] = after
        padded[..., n_cells] = 0.0
    result: FloatArray = padded[..., :n_cells]
    return result
