"""Sharing that changes in an ICS makes that ICS's runs, and England's, stale: an agreement
coming into force, being suspended, changing terms or ending. A draft changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.api.agreements.conftest import Api
from tests.api.projections.test_staleness import finished_run, stale_of
from tests.factories import ENGLAND, ICB_A, ICB_B


@pytest.fixture
def no_recompute(app: FastAPI) -> Iterator[None]:
    settings = app.state.settings
    before = settings.auto_recompute
    settings.auto_recompute = False
    yield
    settings.auto_recompute = before


@pytest.mark.usefixtures("no_recompute")
async def test_sharing_changes_mark_the_icbs_and_englands_runs_stale(
    app: FastAPI, api: Api, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async def runs() -> list[uuid.UUID]:
        return [
            await finished_run(sessionmaker, ICB_A),
            await finished_run(sessionmaker, ENGLAND),
            await finished_run(sessionmaker, ICB_B),
        ]

    first = await runs()
    draft = await api.create_ok()
    assert await stale_of(sessionmaker, *first) == [False, False, False]
    # The last signature brings it into force.
    response = await api.sign(draft["id"], api.world.a1)
    assert response.json()["status"] == "draft"
    assert await stale_of(sessionmaker, *first) == [False, False, False]
    response = await api.sign(draft["id"], api.world.a2)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "active"
    assert await stale_of(sessionmaker, *first) == [True, True, False]

    second = await runs()
    suspended = await api.act(draft["id"], "suspend", json={"reason": "Review"})
    assert suspended.status_code == 200, suspended.text
    assert await stale_of(sessionmaker, *second) == [True, True, False]

    third = await runs()
    ended = await api.act(draft["id"], "terminate", json={"reason": "Replaced"})
    assert ended.status_code == 200, ended.text
    assert await stale_of(sessionmaker, *third) == [True, True, False]
