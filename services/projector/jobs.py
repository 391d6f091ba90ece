"""Thin job functions: load by id, call the service, return a small summary."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable
from typing import Any

from arq import Retry

from services.domain.projections import runs as projection_runs
from services.domain.queue import OutboxRelay, discard_arq_jobs
from services.domain.returns import import_jobs
from services.domain.webhooks import calendar as webhook_calendar
from services.domain.webhooks import delivery as webhook_delivery
from services.projector import pipeline
from services.projector.context import WorkerContext
from shared.db.session import transaction
from shared.jobs import JobName
from shared.repositories import job_executions

log = logging.getLogger("oneworkforce.projector")


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


async def import_returns(ctx: WorkerContext, *, import_id: str, attempt: int = 1) -> dict[str, Any]:
    """Validate and load a staged bulk import of returns."""
    status = await import_jobs.process(
        ctx["sessionmaker"],
        import_id=uuid.UUID(import_id),
        settings=ctx["settings"],
        attempt=attempt,
        send_pending=_send_pending(ctx),
    )
    return {"import_id": import_id, "attempt": attempt, "status": status}


def _send_pending(ctx: WorkerContext) -> pipeline.SendPending | None:
    sender = ctx.get("sender")
    if sender is None:
        return None
    relay = OutboxRelay(ctx["sessionmaker"], sender)

    async def send_pending(ids: list[uuid.UUID]) -> int:
        return await relay.send(ids)

    return send_pending


def _env(ctx: WorkerContext) -> pipeline.JobEnv:
    return pipeline.JobEnv(
        sessionmaker=ctx["sessionmaker"],
        settings=ctx["settings"],
        send_pending=_send_pending(ctx),
        model_pool=ctx.get("model_pool"),
    )


async def _with_retry(
    ctx: WorkerContext, run_id: str, work: Awaitable[str], *, part: str | None = None
) -> str:
    """Unexpected failures are retried (arq Retry) until the last try, which fails the run."""
    try:
        return await work
    except Exception as exc:
        job_try = ctx.get("job_try", 1)
        reason = f"{type(exc).__name__}: {exc}"
        if job_try < ctx["settings"].job_max_tries:
            log.warning(
                "projection job failed; retrying",
                extra={"run_id": run_id, "ics_code": part, "try": job_try, "error": reason},
            )
            raise Retry(defer=min(30, 2**job_try)) from exc
        await projection_runs.fail_run(
            ctx["sessionmaker"],
            uuid.UUID(run_id),
            f"{part}: {reason}" if part else reason,
            failed_part=part,
        )
        raise


async def run_projection(ctx: WorkerContext, *, run_id: str, attempt: int = 1) -> dict[str, Any]:
    """Run an ICB projection, or fan an England run out into one job per ICB."""
    work = pipeline.run_projection(_env(ctx), run_id=uuid.UUID(run_id), attempt=attempt)
    return {"run_id": run_id, "outcome": await _with_retry(ctx, run_id, work)}


async def project_ics(
    ctx: WorkerContext, *, run_id: str, ics_code: str, attempt: int = 1
) -> dict[str, Any]:
    """One ICB's part of an England run."""
    work = pipeline.project_ics(
        _env(ctx), run_id=uuid.UUID(run_id), ics_code=ics_code, attempt=attempt
    )
    outcome = await _with_retry(ctx, run_id, work, part=ics_code)
    return {"run_id": run_id, "ics_code": ics_code, "outcome": outcome}


async def combine_projection(
    ctx: WorkerContext, *, run_id: str, attempt: int = 1
) -> dict[str, Any]:
    """England's results from its finished ICB parts."""
    work = pipeline.combine_projection(_env(ctx), run_id=uuid.UUID(run_id), attempt=attempt)
    return {"run_id": run_id, "outcome": await _with_retry(ctx, run_id, work)}


async def deliver_webhook(ctx: WorkerContext, *, delivery_id: str) -> dict[str, Any]:
    """POST one signed webhook; a failed attempt is retried with exponential backoff."""
    try:
        outcome = await webhook_delivery.deliver(
            ctx["sessionmaker"],
            ctx["settings"],
            delivery_id=uuid.UUID(delivery_id),
            job_try=ctx.get("job_try", 1),
            client=ctx.get("http"),
        )
    except webhook_delivery.RetryLater as later:
        raise Retry(defer=later.defer_s) from later
    return {"delivery_id": delivery_id, "outcome": outcome}


async def reap_projections(ctx: WorkerContext) -> dict[str, int]:
    """Cron: re-queue projection work whose worker stopped beating."""
    settings = ctx["settings"]

    async def discard(job_ids: list[str]) -> None:
        await discard_arq_jobs(ctx["redis"], settings.queue_name, job_ids)

    return await projection_runs.reap(ctx["sessionmaker"], settings=settings, discard=discard)


async def reap_imports(ctx: WorkerContext) -> dict[str, int]:
    """Cron: re-queue (or fail) bulk imports whose worker stopped beating."""
    settings = ctx["settings"]

    async def discard(job_ids: list[str]) -> None:
        await discard_arq_jobs(ctx["redis"], settings.queue_name, job_ids)

    return await import_jobs.reap(
        ctx["sessionmaker"], settings=settings, discard=discard, send_pending=_send_pending(ctx)
    )


async def reconcile_queue(ctx: WorkerContext) -> dict[str, int]:
    """Cron: send again the jobs of waiting work that the queue lost (a Redis restart)."""
    settings = ctx["settings"]
    relay = OutboxRelay(ctx["sessionmaker"], ctx["sender"], settings=settings)
    return {"resent": await relay.reconcile(after_s=settings.queue_reconcile_after_s)}


async def announce_calendar_ends(ctx: WorkerContext) -> dict[str, int]:
    """Cron: deployment.ended and agreement.terminated (expired) for end dates that passed."""
    return await webhook_calendar.sweep(ctx["sessionmaker"], send_pending=_send_pending(ctx))
