"""The API application: `create_app()` wires settings, database, queue and routers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from services.api import openapi
from services.api.agreements.router import router as agreements_router
from services.api.areas.router import router as areas_router
from services.api.audit.router import router as audit_router
from services.api.cache import BodyCache, KeyCache, TtlCache
from services.api.charts.router import router as charts_router
from services.api.docs.router import ASSETS_PATH, assets
from services.api.docs.router import router as docs_router
from services.api.errors import install_error_handlers
from services.api.explorer.pages import STATIC_DIR as EXPLORER_STATIC
from services.api.explorer.router import root_router as explorer_root_router
from services.api.explorer.router import router as explorer_router
from services.api.gate import AccessGate
from services.api.health.router import router as health_router
from services.api.insights.router import router as insights_router
from services.api.keys.router import router as keys_router
from services.api.links import add_links
from services.api.middleware import (
    AcceptMiddleware,
    GZipMiddleware,
    RequestContextMiddleware,
)
from services.api.organisations.router import router as organisations_router
from services.api.projections.fastpath import LatestNotModifiedMiddleware
from services.api.projections.router import hot_router as projections_hot_router
from services.api.projections.router import router as projections_router
from services.api.ratelimit import RateLimiter
from services.api.returns.router import router as returns_router
from services.api.roles.router import router as roles_router
from services.api.scenarios.router import router as scenarios_router
from services.api.webhooks.router import router as webhooks_router
from services.domain.projections import runs as projection_runs
from services.domain.queue import ArqSender, JobSender, OutboxRelay
from services.domain.returns import import_jobs
from services.domain.webhooks import calendar as webhook_calendar
from shared.config import Settings, get_settings
from shared.db.session import make_engine, make_sessionmaker
from shared.logging import configure_logging

log = logging.getLogger("oneworkforce.api")

API_DESCRIPTION = """
OneWorkforce joins up health and social care workforce planning for England's Integrated Care
Systems: workforce returns, a shared role catalogue, organisations, staff-sharing agreements and
projections of demand, supply and gap.

Authenticate with `Authorization: Bearer <key>`. Errors are RFC 9457 `application/problem+json`
with a stable `code`.
"""


def _make_sender(settings: Settings, app: FastAPI) -> JobSender:
    if settings.redis_url:
        return ArqSender(settings.redis_url, settings.queue_name)
    # Embedded mode: the projector runs in this process, on the same job functions.
    from services.projector.inprocess import InProcessRunner

    runner = InProcessRunner(settings, app.state.engine)
    runner.start()
    return runner


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.engine = make_engine(settings.database_url)
    app.state.sessionmaker = make_sessionmaker(app.state.engine, settings=settings)
    app.state.sender = _make_sender(settings, app)
    app.state.relay = OutboxRelay(app.state.sessionmaker, app.state.sender, settings=settings)
    relay_task = asyncio.create_task(app.state.relay.run_forever(settings.outbox_relay_interval_s))
    sender = app.state.sender
    reaper_task = asyncio.create_task(
        projection_runs.reap_forever(
            app.state.sessionmaker,
            settings=settings,
            discard=sender.discard if isinstance(sender, ArqSender) else None,
        )
    )
    import_reaper_task = asyncio.create_task(
        import_jobs.reap_forever(
            app.state.sessionmaker,
            settings=settings,
            discard=getattr(sender, "discard", None),
            running_here=getattr(sender, "running_here", None),
            send_pending=app.state.relay.send,
        )
    )
    calendar_task = asyncio.create_task(
        webhook_calendar.sweep_forever(
            app.state.sessionmaker, settings=settings, send_pending=app.state.relay.send
        )
    )
    log.info(
        "api started",
        extra={
            "database": settings.database_url.split("://", 1)[0],
            "queue": "redis" if settings.redis_url else "in-process",
        },
    )
    try:
        yield
    finally:
        for task in (relay_task, reaper_task, import_reaper_task, calendar_task):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await app.state.sender.close()
        await app.state.engine.dispose()
        await app.state.rate_limiter.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)
    app = FastAPI(
        title="OneWorkforce API",
        version=version("oneworkforce"),
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=openapi.operation_id,
    )
    openapi.install(app)
    app.state.settings = settings
    app.state.key_cache = KeyCache()
    app.state.body_cache = BodyCache(max_bytes=settings.body_cache_mb * 1024 * 1024)
    app.state.areas_cache = TtlCache(ttl_s=300.0)
    # Integrations see a newly finished run within this many seconds.
    app.state.latest_cache = TtlCache(ttl_s=settings.latest_cache_s)
    # Explorer: a page's data and drawn charts, reused by its images and downloads.
    app.state.explorer_cache = TtlCache(ttl_s=120.0, max_entries=300)
    plain_openapi = app.openapi

    def openapi_with_links() -> dict[str, Any]:
        return add_links(plain_openapi())

    app.openapi = openapi_with_links  # type: ignore[method-assign]
    app.state.rate_limiter = RateLimiter(settings)
    install_error_handlers(app)
    # Added innermost first: the request-id middleware wraps everything else.
    app.add_middleware(
        AccessGate,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
        limiter=app.state.rate_limiter,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "If-None-Match",
                "Idempotency-Key",
                "X-Request-ID",
            ],
            expose_headers=[
                "Content-Disposition",
                "ETag",
                "Idempotency-Replayed",
                "Link",
                "Location",
                "Retry-After",
                "X-Request-ID",
                "X-Total-Count",
            ],
        )
    app.add_middleware(AcceptMiddleware)
    app.add_middleware(GZipMiddleware)
    # Polling integrations' 304s, answered from the caches before everything below.
    app.add_middleware(LatestNotModifiedMiddleware)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(projections_hot_router)
    app.include_router(health_router)
    app.include_router(docs_router)
    app.mount(ASSETS_PATH, assets(), name="docs-assets")
    app.include_router(keys_router)
    app.include_router(audit_router)
    app.include_router(organisations_router)
    app.include_router(returns_router)
    app.include_router(roles_router)
    app.include_router(agreements_router)
    app.include_router(scenarios_router)
    app.include_router(insights_router)
    app.include_router(areas_router)
    app.include_router(projections_router)
    app.include_router(charts_router)
    # The Explorer: web pages served by the API itself, with their own vendored scripts.
    app.include_router(explorer_root_router)
    app.include_router(explorer_router)
    app.mount("/explorer/static", StaticFiles(directory=EXPLORER_STATIC), name="explorer-static")
    app.include_router(webhooks_router)
    return app
