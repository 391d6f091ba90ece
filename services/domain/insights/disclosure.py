"""Small-number suppression for tables of counts with totals.

Primary suppression hides every count under the threshold (zero included), totals too.
Secondary suppression then makes sure no hidden count can be worked out by subtraction. The
attacker is assumed to know every row total and the grand total, even when hidden here, since
staff numbers are published elsewhere (the workforce endpoint). Each row adds up to its known
total, each column to its column total, and the column totals to the known grand total: in
any such relation one unknown alone could be recovered, so the smallest other member of that
relation is hidden too, repeatedly until no relation has exactly one unknown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DEFAULT_THRESHOLD = 5
TOTAL = "__total__"

Cell = tuple[str, str]


@dataclass(frozen=True)
class Suppressed:
    """Which cells of a table are hidden: (row, column) pairs; a row's total is (row, TOTAL),
    a column's total (TOTAL, column) and the grand total (TOTAL, TOTAL)."""

    hidden: frozenset[Cell]

    def value(self, counts: Mapping[Cell, int], cell: Cell) -> int | None:
        return None if cell in self.hidden else counts[cell]


def table_cells(
    rows: Sequence[str], columns: Sequence[str], counts: Mapping[Cell, int]
) -> dict[Cell, int]:
    """The counts with their row, column and grand totals added."""
    full = {(r, c): counts.get((r, c), 0) for r in rows for c in columns}
    for r in rows:
        full[(r, TOTAL)] = sum(full[(r, c)] for c in columns)
    for c in columns:
        full[(TOTAL, c)] = sum(full[(r, c)] for r in rows)
    full[(TOTAL, TOTAL)] = sum(full[(r, TOTAL)] for r in rows)
    return full


def relations(rows: Sequence[str], columns: Sequence[str]) -> list[list[Cell]]:
    """The members of each relation whose other side is known: a row's counts (its total is
    known), a column's counts and its total, and the column totals (the grand total is
    known)."""
    found = [[(r, c) for c in columns] for r in rows]
    found += [[*((r, c) for r in rows), (TOTAL, c)] for c in columns]
    found.append([(TOTAL, c) for c in columns])
    return found


def suppress(
    rows: Sequence[str],
    columns: Sequence[str],
    counts: Mapping[Cell, int],
    *,
    threshold: int = DEFAULT_THRESHOLD,
) -> tuple[dict[Cell, int], Suppressed]:
    """The table with totals, and which of its cells to hide."""
    full = table_cells(rows, columns, counts)
    hidden = {cell for cell, value in full.items() if value < threshold}
    changed = True
    while changed:
        changed = False
        for relation in relations(rows, columns):
            inside = [cell for cell in relation if cell in hidden]
            others = [cell for cell in relation if cell not in hidden]
            if len(inside) == 1 and others:
                hidden.add(min(others, key=lambda cell: full[cell]))
                changed = True
    return full, Suppressed(frozenset(hidden))
