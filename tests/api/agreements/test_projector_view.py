"""The projector's view of the agreements in force: `active_agreements_for_ics`, and the
peak-FTE arithmetic behind the cap."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.agreements.service import peak_fte
from shared.models import AgreementMode
from shared.repositories.agreements import active_agreements_for_ics
from shared.schemas.agreements import ActiveAgreement, LenderCap
from tests.api.agreements.conftest import CARE_WORKER, NURSE, TODAY, Api
from tests.factories import ICB_A, ICB_B


async def test_active_agreements_for_an_ics_on_a_date(
    api: Api, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    w = api.world
    in_force = await api.active()
    await api.create_ok(title="Still a draft")
    suspended = await api.active(title="Paused")
    await api.act(suspended["id"], "suspend")
    later = await api.active(
        title="Starts later", start_date=(TODAY - timedelta(days=1)).isoformat()
    )

    async with sessionmaker() as session:
        today = await active_agreements_for_ics(session, ics_code=ICB_A, on=TODAY)
        before = await active_agreements_for_ics(
            session, ics_code=ICB_A, on=TODAY - timedelta(days=5)
        )
        after_end = await active_agreements_for_ics(
            session, ics_code=ICB_A, on=TODAY + timedelta(days=366)
        )
        elsewhere = await active_agreements_for_ics(session, ics_code=ICB_B, on=TODAY)

    assert [a.id for a in today] == [uuid.UUID(in_force["id"]), uuid.UUID(later["id"])]
    assert [a.title for a in before] == ["Cheshire and Merseyside mutual aid"]
    assert after_end == []
    assert elsewhere == []

    agreement = today[0]
    assert isinstance(agreement, ActiveAgreement)
    assert agreement.mode == AgreementMode.both
    assert agreement.party_organisation_ids == (w.a1.id, w.a2.id)
    assert agreement.caps == (
        LenderCap(role_code=CARE_WORKER, lending_organisation_id=w.a1.id, fte_cap=2.0),
        LenderCap(role_code=NURSE, lending_organisation_id=w.a1.id, fte_cap=1.0),
        LenderCap(role_code=CARE_WORKER, lending_organisation_id=w.a2.id, fte_cap=1.0),
    )
    assert agreement.cap_for(role_code=CARE_WORKER, lending_organisation_id=w.a2.id) == 1.0
    assert agreement.cap_for(role_code=NURSE, lending_organisation_id=w.a2.id) == 0.0
    assert agreement.role_codes == {CARE_WORKER, NURSE}
    with pytest.raises(dataclasses.FrozenInstanceError):
        agreement.title = "changed"  # type: ignore[misc]


D = date(2027, 1, 1)


def _d(days: int) -> date:
    return D + timedelta(days=days)


@pytest.mark.parametrize(
    ("spans", "window", "expected"),
    [
        ([], (0, 10), 0.0),
        ([(0, 9, 1.0), (20, 29, 1.0)], (5, 25), 1.0),  # never out together
        ([(0, 9, 1.0), (9, 29, 0.5)], (0, 29), 1.5),  # both out on day 9 (inclusive ends)
        ([(0, 9, 1.0), (10, 29, 0.5)], (0, 29), 1.0),  # handed over on day 10
        ([(0, 30, 1.0), (5, 6, 0.5), (6, 8, 0.25)], (0, 30), 1.75),
        ([(0, 30, 1.0), (5, 6, 0.5)], (7, 30), 1.0),  # outside the window
        ([(5, 4, 1.0)], (0, 10), 0.0),  # withdrawn before it began
    ],
)
def test_peak_fte(
    spans: list[tuple[int, int, float]], window: tuple[int, int], expected: float
) -> None:
    intervals = [(_d(start), _d(end), fte) for start, end, fte in spans]
    assert peak_fte(intervals, first=_d(window[0]), last=_d(window[1])) == expected
