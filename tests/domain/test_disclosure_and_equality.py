"""Small-number suppression (no hidden count recoverable by subtraction) and the equality
indicators' statistics, by hand and as properties."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.domain.insights.disclosure import TOTAL, suppress
from services.domain.insights.equality import representation_ratio, wilson


def recoverable(
    hidden: frozenset[tuple[str, str]], rows: list[str], columns: list[str]
) -> set[tuple[str, str]]:
    """Hidden counts an attacker who knows every row total and the grand total (hidden or not)
    can work out from one relation by subtracting its visible members."""
    found: set[tuple[str, str]] = set()
    equations = [[(r, c) for c in columns] for r in rows]  # = the row's total
    equations += [[(r, c) for r in rows] + [(TOTAL, c)] for c in columns]  # = 0
    equations.append([(TOTAL, c) for c in columns])  # = the grand total
    for relation in equations:
        inside = [cell for cell in relation if cell in hidden]
        if len(inside) == 1:
            found.add(inside[0])
    return found


def test_a_lone_small_count_takes_a_partner_in_its_row_and_column() -> None:
    rows, columns = ["a", "b"], ["x", "y", "z"]
    counts = {("a", "x"): 40, ("a", "y"): 3, ("a", "z"): 20, ("b", "x"): 30, ("b", "y"): 12,
              ("b", "z"): 25}  # fmt: skip
    full, result = suppress(rows, columns, counts)
    assert ("a", "y") in result.hidden
    # Row a's total (63) is known, so a second count of row a is hidden (the smallest, 20),
    # and column y's total (15) too, so b's 12 is hidden; then row b needs a second (25).
    assert ("a", "z") in result.hidden
    assert ("b", "y") in result.hidden
    assert not recoverable(result.hidden, rows, columns)
    assert ("b", "z") in result.hidden
    assert result.value(full, ("a", "x")) == 40
    assert result.value(full, ("a", TOTAL)) == 63


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 5),
    st.integers(2, 6),
    st.data(),
)
def test_no_count_under_the_threshold_gets_out(
    rows_n: int, cols_n: int, data: st.DataObject
) -> None:
    rows = [f"r{i}" for i in range(rows_n)]
    columns = [f"c{j}" for j in range(cols_n)]
    values = data.draw(st.lists(st.integers(0, 40), min_size=rows_n * cols_n,
                                max_size=rows_n * cols_n))  # fmt: skip
    counts = {cell: v for cell, v in zip(itertools.product(rows, columns), values, strict=True)}
    full, result = suppress(rows, columns, counts)
    for cell, value in full.items():
        if value < 5:
            assert cell in result.hidden, cell
    # Subtracting any published relation never gives a hidden count, small or not.
    assert not recoverable(result.hidden, rows, columns)


def test_wilson_interval_by_hand() -> None:
    interval = wilson(30, 100)
    assert interval is not None
    assert interval.share == pytest.approx(0.3)
    # Wilson 95% for 30 of 100: 0.2189 to 0.3958.
    assert interval.lower == pytest.approx(0.21886, abs=1e-4)
    assert interval.upper == pytest.approx(0.39578, abs=1e-4)
    assert wilson(0, 0) is None
    edge = wilson(0, 10)
    assert edge is not None
    assert edge.lower == 0.0
    assert representation_ratio(0.1, 0.2) == pytest.approx(0.5)
    assert representation_ratio(0.1, 0.0) is None
