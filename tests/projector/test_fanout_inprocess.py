"""England fans out on PostgreSQL with the in-process runner taking four jobs at once: every
run succeeds with one complete result set and the numbers of a run done one job at a time."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.domain.reference.loader import ReferenceLoadSummary
from tests.helpers import KeyFactory
from tests.projector.england import (
    assert_one_complete_result_set,
    england_app,
    england_run,
    expected_rows,
    result_numbers,
    setup_england,
)

ICB_COUNT = 12
HORIZON = 5
ITERATIONS = 40
REPEATS = 5


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_england_with_four_inprocess_workers_succeeds_every_time(
    database_url: str,
    db: AsyncEngine,
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
) -> None:
    admin = await make_key("admin")
    async with england_app(database_url, workers=1) as (app, client):
        shape = await setup_england(client, app.state.sessionmaker, admin, icb_count=ICB_COUNT)
        one_at_a_time = await england_run(
            app, client, admin, horizon=HORIZON, iterations=ITERATIONS
        )
        expected = expected_rows(shape, HORIZON)
        await assert_one_complete_result_set(
            app.state.sessionmaker, one_at_a_time, expected=expected, icbs=shape.icbs
        )
        reference_numbers = await result_numbers(app.state.sessionmaker, one_at_a_time)

    async with england_app(database_url, workers=4) as (app, client):
        for _ in range(REPEATS):
            run_id = await england_run(app, client, admin, horizon=HORIZON, iterations=ITERATIONS)
            await assert_one_complete_result_set(
                app.state.sessionmaker, run_id, expected=expected, icbs=shape.icbs
            )
            assert await result_numbers(app.state.sessionmaker, run_id) == reference_numbers
