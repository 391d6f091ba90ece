"""Thin job functions: load by id, call the service, return a small summary."""

from __future__ import annotations

import uuid
from typing import Any

from services.projector.context import WorkerContext
from shared import returns_import
from shared.db.session import transaction
from shared.jobs import JobName
from shared.repositories import job_executions


async def ping(ctx: WorkerContext, *, token: str) -> dict[str, Any]:
    """Record that a worker ran this job: proves the path from outbox to worker to database."""
    async with transaction(ctx["sessionmaker"]) as session:
        await job_executions.add(
            session,
            job_id=ctx.get("job_id", f"ping:{token}"),
            job_name=JobName.ping,
            attempt=ctx.get("job_try", 1),
            runner=ctx.get("runner", "arq"),
        )
    return {"token": token}


async def import_returns(ctx: WorkerContext, *, import_id: str) -> dict[str, Any]:
    """Validate and load a staged bulk import of returns."""
    status = await returns_import.process(ctx["sessionmaker"], import_id=uuid.UUID(import_id))
    return {"import_id": import_id, "status": status}
