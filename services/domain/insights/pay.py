"""Pay parity across sectors: equivalent roles' hourly pay side by side.

Each line's pay is its median hourly pay where given, else its mean; a role's pay in an area
is those figures weighted by the lines' headcount, over each organisation's latest return.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from shared.reference.files import ROLE_EQUIVALENCES_FILE, bundled_path


@dataclass(frozen=True)
class Equivalence:
    nhs_role: str
    care_role: str
    basis: str
    source: str


@cache
def equivalences() -> tuple[Equivalence, ...]:
    """The shipped pairs of equivalent roles (NHS or primary care role, social care role)."""
    doc = json.loads(bundled_path(ROLE_EQUIVALENCES_FILE).read_text(encoding="utf-8"))
    return tuple(Equivalence(**pair) for pair in doc["pairs"])


@dataclass(frozen=True)
class RolePay:
    role_code: str
    returns: int
    headcount: int
    hourly_pay: float | None


def line_pay(line: Mapping[str, Any]) -> float | None:
    """A line's hourly pay: its median if given, else its mean."""
    for name in ("median_hourly_pay", "mean_hourly_pay"):
        value = line.get(name)
        if value is not None:
            return float(value)
    return None


def role_pay(role_code: str, lines: Iterable[Mapping[str, Any]]) -> RolePay:
    """Headcount-weighted pay of one role over lines (one per organisation's latest return)."""
    organisations: set[Any] = set()
    weight = 0
    total = 0.0
    for line in lines:
        pay = line_pay(line)
        headcount = int(line["headcount"])
        if pay is None or headcount <= 0:
            continue
        organisations.add(line["organisation_id"])
        weight += headcount
        total += pay * headcount
    return RolePay(
        role_code=role_code,
        returns=len(organisations),
        headcount=weight,
        hourly_pay=round(total / weight, 2) if weight else None,
    )


def difference(nhs: RolePay, care: RolePay) -> float | None:
    """NHS pay minus care pay (GBP an hour); None unless both are known."""
    if nhs.hourly_pay is None or care.hourly_pay is None:
        return None
    return round(nhs.hourly_pay - care.hourly_pay, 2)
