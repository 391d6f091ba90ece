from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from services.api.errors import problem
from services.api.health.errors import NotReady
from services.api.openapi import raises
from shared import metrics as shared_metrics

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Ready to serve: 503 only when the database is unreachable",
    description="200 while the database answers. `checks.queue` is `ok` (Redis answers), "
    "`in-process` (embedded projector) or `degraded: ...` when Redis is unreachable: reads "
    "and writes still work and new jobs wait in the outbox until Redis is back, so the API "
    "stays in service and `status` says `degraded`. 503 `not_ready` when the database does "
    "not answer within 3 seconds.",
    responses={503: {"description": "The database is unreachable"}, **raises(NotReady)},
)
async def readyz(request: Request) -> Response:
    checks: dict[str, Any] = {}
    try:
        async with asyncio.timeout(3):
            async with request.app.state.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    degraded = False
    if request.app.state.settings.redis_url:
        try:
            async with asyncio.timeout(3):
                await request.app.state.sender.ping()
            checks["queue"] = "ok"
        except Exception as exc:
            degraded = True
            checks["queue"] = (
                f"degraded: redis unreachable ({type(exc).__name__}); "
                "new jobs wait in the outbox until it is back"
            )
    else:
        checks["queue"] = "in-process"
    if checks["database"] != "ok":
        # Answered, not raised: the failed check's traceback is not kept alive past the request.
        return problem(
            503, code=NotReady.code, detail="The database is unreachable.", checks=checks
        )
    return JSONResponse({"status": "degraded" if degraded else "ready", "checks": checks})


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Process counters, and the run, outbox and queue gauges read now from the database and
    the queue (if that fails they keep their last values and an error counter goes up)."""
    sender = request.app.state.sender
    depth = getattr(sender, "depth", None)
    await shared_metrics.refresh(request.app.state.sessionmaker, queue_depth=depth)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
