"""Revision 0019 counts the ends that came before it as announced (early ends and terminations
were sent when they happened; ends the calendar brought earlier are not sent late) and leaves
every end still to come for the calendar sweep."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

from shared.db import migrate

TODAY = datetime.now(UTC).date()
ENDED_AT = "2020-05-01 10:00:00.000000"


def _day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


def test_ends_before_the_revision_count_as_announced(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url, "0018")
    engine = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    agreements = {
        "expired": ("active", _day(-1), None),
        "suspended_expired": ("suspended", _day(-3), None),
        "in_force": ("active", _day(0), None),
        "terminated": ("terminated", _day(100), ENDED_AT),
        "draft_past": ("draft", _day(-5), None),
    }
    deployments = {
        "ended_by_date": ("active", _day(-2), None),
        "last_day_today": ("active", _day(0), None),
        "ended_early": ("ended", _day(30), ENDED_AT),
    }
    ids = {name: uuid.uuid4().hex for name in [*agreements, *deployments]}
    with engine.begin() as connection:
        for name, (status, end, terminated_at) in agreements.items():
            connection.execute(
                text(
                    "INSERT INTO agreements (id, title, ics_code, mode, status, start_date, "
                    "end_date, version, terminated_at) VALUES (:id, :title, 'E54000008', 'both', "
                    ":status, '2020-01-01', :end, 1, :terminated_at)"
                ),
                {
                    "id": ids[name],
                    "title": name,
                    "status": status,
                    "end": end,
                    "terminated_at": terminated_at,
                },
            )
        for name, (status, end, ended_at) in deployments.items():
            connection.execute(
                text(
                    "INSERT INTO deployments (id, agreement_id, from_organisation_id, "
                    "to_organisation_id, role_code, fte, start_date, end_date, reason, status, "
                    "ended_at) VALUES (:id, :agreement, :lender, :borrower, 'care-worker', 1, "
                    "'2020-01-01', :end, 'cover', :status, :ended_at)"
                ),
                {
                    "id": ids[name],
                    "agreement": ids["in_force"],
                    "lender": uuid.uuid4().hex,
                    "borrower": uuid.uuid4().hex,
                    "end": end,
                    "status": status,
                    "ended_at": ended_at,
                },
            )
    before = datetime.now(UTC).replace(tzinfo=None)
    migrate.upgrade(url)
    announced: dict[str, str | None] = {}
    with engine.connect() as connection:
        for table in ("agreements", "deployments"):
            for row_id, at in connection.execute(text(f"SELECT id, end_announced_at FROM {table}")):
                name = next(n for n, i in ids.items() if i == row_id)
                announced[name] = at
    engine.dispose()

    # Their own time of ending; the rest, the time of the upgrade.
    assert announced["terminated"] == announced["ended_early"] == ENDED_AT
    for name in ("expired", "suspended_expired", "ended_by_date"):
        at = announced[name]
        assert at is not None, name
        assert datetime.fromisoformat(at) >= before.replace(microsecond=0), name
    # Still to come (the last day is today), or never in force: left for the sweep.
    for name in ("in_force", "draft_past", "last_day_today"):
        assert announced[name] is None, name
