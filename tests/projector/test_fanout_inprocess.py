"""England fans out on PostgreSQL with the in-process runner taking four jobs at once: every
run succeeds with one complete result set and the numbers of a run done one job at a time."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.main import create_app
from services.domain.reference.loader import ReferenceLoadSummary
from tests.helpers import KeyFactory, settings_for
from tests.projector.england import (
    ENGLAND,
    assert_one_complete_result_set,
    expected_rows,
    result_numbers,
    setup_england,
)

ICB_COUNT = 12
HORIZON = 5
ITERATIONS = 40
REPEATS = 5


@asynccontextmanager
async def _app(database_url: str, workers: int) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    application = create_app(
        settings_for(database_url, inprocess_workers=workers, auto_recompute=False)
    )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield application, client


async def _england_run(app: FastAPI, client: httpx.AsyncClient, key: dict[str, str]) -> uuid.UUID:
    body = {"scope": ENGLAND, "horizon": HORIZON, "iterations": ITERATIONS, "seed": 11}
    response = await client.post("/v1/projections", json=body, headers=key)
    assert response.status_code == 202, response.text
    await app.state.sender.join(timeout_s=120)
    return uuid.UUID(response.json()["id"])


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_england_with_four_inprocess_workers_succeeds_every_time(
    database_url: str,
    db: AsyncEngine,
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
) -> None:
    admin = await make_key("admin")
    async with _app(database_url, workers=1) as (app, client):
        shape = await setup_england(client, app.state.sessionmaker, admin, icb_count=ICB_COUNT)
        one_at_a_time = await _england_run(app, client, admin)
        expected = expected_rows(shape, HORIZON)
        await assert_one_complete_result_set(
            app.state.sessionmaker, one_at_a_time, expected=expected, icbs=shape.icbs
        )
        reference_numbers = await result_numbers(app.state.sessionmaker, one_at_a_time)

    async with _app(database_url, workers=4) as (app, client):
        for _ in range(REPEATS):
            run_id = await _england_run(app, client, admin)
            await assert_one_complete_result_set(
                app.state.sessionmaker, run_id, expected=expected, icbs=shape.icbs
            )
            assert await result_numbers(app.state.sessionmaker, run_id) == reference_numbers
