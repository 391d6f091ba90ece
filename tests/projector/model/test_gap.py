"""Gap after sharing: hand-computed cases, caps binding and not, several agreements."""

from __future__ import annotations

import numpy as np
import pytest

from services.projector.model.gap import (
    SharingPlan,
    SharingStep,
    gap_fte,
    prepare_sharing,
    share_surplus,
)
from services.projector.model.inputs import SharingAgreement
from tests.projector.model.factories import cell_inputs, flat_population


def plan(*steps: tuple[str, list[list[int]], list[list[float]]], cells: int) -> SharingPlan:
    return SharingPlan(
        cells=np.arange(cells, dtype=np.int64),
        steps=tuple(
            SharingStep(key=key, slots=np.array(slots), cap_fte=np.array(caps, dtype=float))
            for key, slots, caps in steps
        ),
    )


def test_gap_is_demand_minus_supply() -> None:
    np.testing.assert_allclose(gap_fte(np.array([10.0, 5.0]), np.array([8.0, 7.0])), [2.0, -2.0])


@pytest.mark.parametrize(
    ("gap", "caps", "expected"),
    [
        # Cap not binding: A lends all 10 of its surplus, B and C are made whole.
        ([-10.0, 4.0, 6.0], [20.0, 0.0, 0.0], [0.0, 0.0, 0.0]),
        # Cap binding: A lends 5; B gets 5 x 4/10 = 2, C gets 5 x 6/10 = 3.
        ([-10.0, 4.0, 6.0], [5.0, 0.0, 0.0], [-5.0, 2.0, 3.0]),
        # More surplus than shortfall: 5 lent, in proportion to what each may lend (10, 10).
        ([-10.0, 5.0, -30.0], [10.0, 0.0, 10.0], [-7.5, 0.0, -27.5]),
        # No surplus anywhere: nothing moves.
        ([1.0, 2.0, 3.0], [10.0, 10.0, 10.0], [1.0, 2.0, 3.0]),
        # A shortfall party cannot lend whatever its cap.
        ([-2.0, 4.0, 0.0], [10.0, 10.0, 10.0], [0.0, 2.0, 0.0]),
    ],
)
def test_one_agreement(gap: list[float], caps: list[float], expected: list[float]) -> None:
    sharing = plan(("a", [[0], [1], [2]], [[c] for c in caps]), cells=3)
    np.testing.assert_allclose(share_surplus(np.array(gap), sharing), expected)


def test_agreements_apply_in_key_order_on_what_is_left() -> None:
    # Agreement "a": A (cell 0) and B (cell 1), A may lend 4. Agreement "b": A and C (cell 2),
    # A may lend 10. "a" first: B 6 -> 2, A -10 -> -6. Then "b": C 3 -> 0, A -6 -> -3.
    sharing = plan(
        ("a", [[0], [1]], [[4.0], [0.0]]),
        ("b", [[0], [2]], [[10.0], [0.0]]),
        cells=3,
    )
    np.testing.assert_allclose(share_surplus(np.array([-10.0, 6.0, 3.0]), sharing), [-3, 2, 0])


def test_roles_are_shared_separately_and_missing_cells_take_no_part() -> None:
    # Two roles; party 2 has no cell for role 1 (slot -1).
    sharing = plan(("a", [[0, 1], [2, 3], [4, -1]], [[5.0, 5.0], [5.0, 5.0], [5.0, 5.0]]), cells=5)
    gap = np.array([-3.0, 2.0, 1.0, -1.0, 1.0])
    # Role 0: A has 3 spare, B and C short 1 each: both made whole, A -> -1.
    # Role 1: A short 2, B lends its 1: A -> 1, B -> 0.
    np.testing.assert_allclose(share_surplus(gap, sharing), [-1.0, 1.0, 0.0, 0.0, 0.0])


def test_vectorised_over_runs_and_years() -> None:
    sharing = plan(("a", [[0], [1]], [[2.0], [2.0]]), cells=2)
    gap = np.array([[[-5.0, 1.0], [3.0, -1.0]], [[0.0, 0.0], [-10.0, 10.0]]])  # (2 runs, 2 yrs, 2)
    expected = np.array([[[-4.0, 0.0], [2.0, 0.0]], [[0.0, 0.0], [-8.0, 8.0]]])
    np.testing.assert_allclose(share_surplus(gap, sharing), expected)


def test_prepare_sharing_finds_party_cells() -> None:
    by_age = np.ones((4, 6))
    inputs = cell_inputs(
        orgs=[0, 0, 1, 2],
        roles=[0, 1, 0, 1],
        areas=[0, 0, 0, 0],
        role_codes=["nurse", "hca"],
        population=flat_population(1, 2),
        headcount_by_age=by_age,
        agreements=(
            SharingAgreement("z", (0, 2), ("hca",), np.array([[1.0], [1.0]])),
            SharingAgreement("a", (0, 1, 2), ("nurse", "gp"), np.ones((3, 2))),
        ),
    )
    sharing = prepare_sharing(inputs)
    assert [s.key for s in sharing.steps] == ["a", "z"]
    np.testing.assert_array_equal(sharing.cells, [0, 1, 2, 3])
    # "a": nurse cells of orgs 0 and 1; org 2 has no nurse; nobody has "gp".
    np.testing.assert_array_equal(sharing.steps[0].slots, [[0, -1], [2, -1], [-1, -1]])
    np.testing.assert_array_equal(sharing.steps[1].slots, [[1], [3]])
