"""The API with local (http, loopback) webhook targets allowed and fast retries."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.main import create_app
from tests.helpers import settings_for


@pytest.fixture
async def hook_app(database_url: str, db: AsyncEngine) -> AsyncIterator[FastAPI]:
    settings = settings_for(
        database_url,
        webhook_allow_private_addresses=True,
        webhook_allow_http=True,
        webhook_retry_base_s=0.05,
        webhook_retry_max_s=0.2,
        webhook_max_attempts=4,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def hook_client(hook_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=hook_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http
