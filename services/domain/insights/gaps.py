"""What the data miss: who has reported, which optional fields are left out, how old the
latest returns are, and which sectors' projections rest on thin inputs."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

THIN_COVERAGE = 0.5
YEAR = timedelta(days=365)


@dataclass(frozen=True)
class Reporter:
    sector: str
    kind: str
    latest_as_at: date | None


@dataclass(frozen=True)
class Coverage:
    group: str
    registered: int
    reporting: int
    never_reported: int

    @property
    def rate(self) -> float | None:
        return self.reporting / self.registered if self.registered else None

    @property
    def thin(self) -> bool:
        rate = self.rate
        return rate is not None and rate < THIN_COVERAGE


def coverage(
    reporters: Sequence[Reporter], *, on: date, key: Callable[[Reporter], str]
) -> list[Coverage]:
    """Registered, reporting in the last 12 months, and never reported, by group."""
    groups: dict[str, list[Reporter]] = {}
    for reporter in reporters:
        groups.setdefault(key(reporter), []).append(reporter)
    return [
        Coverage(
            group=group,
            registered=len(members),
            reporting=sum(
                1 for m in members if m.latest_as_at is not None and m.latest_as_at > on - YEAR
            ),
            never_reported=sum(1 for m in members if m.latest_as_at is None),
        )
        for group, members in sorted(groups.items())
    ]


@dataclass(frozen=True)
class FieldMissing:
    field: str
    lines: int
    missing: int

    @property
    def share(self) -> float | None:
        return self.missing / self.lines if self.lines else None


def missing_fields(
    lines: Sequence[Mapping[str, Any]], groups: Mapping[str, Sequence[str]]
) -> list[FieldMissing]:
    """For each named optional field (or group of columns given together), how many lines
    leave it out (every column of the group empty)."""
    return [
        FieldMissing(
            field=name,
            lines=len(lines),
            missing=sum(1 for line in lines if all(line.get(c) is None for c in columns)),
        )
        for name, columns in groups.items()
    ]


@dataclass(frozen=True)
class Ages:
    returns: int
    median_days: float | None
    oldest: date | None
    older_than_year: int


def ages(dates: Iterable[date], *, on: date) -> Ages:
    """How old each organisation's latest return is at `on`."""
    listed = list(dates)
    days = [(on - d).days for d in listed]
    return Ages(
        returns=len(listed),
        median_days=statistics.median(days) if days else None,
        oldest=min(listed) if listed else None,
        older_than_year=sum(1 for d in listed if d <= on - YEAR),
    )
