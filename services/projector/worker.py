"""arq worker settings, run by `oneworkforce worker`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, ClassVar, cast

from arq import cron, func
from arq.connections import RedisSettings
from prometheus_client import start_http_server

from services.domain.queue import ArqSender
from services.domain.queue import redis_settings as queue_redis_settings
from services.domain.returns.import_jobs import reaper_interval_s
from services.domain.webhooks import calendar as webhook_calendar
from services.domain.webhooks import delivery as webhook_delivery
from services.projector import jobs
from services.projector.context import WorkerContext
from services.projector.model_pool import ModelPool
from services.projector.registry import JOBS
from shared import metrics
from shared.config import Settings, get_settings
from shared.db.session import make_engine, make_sessionmaker
from shared.logging import configure_logging

log = logging.getLogger("oneworkforce.projector")

METRICS_REFRESH_S = 5.0


async def startup(ctx: dict[str, Any]) -> None:
    typed = cast(WorkerContext, ctx)
    # Settings may be handed in (tests, embedding); otherwise they come from the environment.
    settings = typed.get("settings") or get_settings()
    configure_logging(settings)
    typed["settings"] = settings
    typed["engine"] = make_engine(settings.database_url)
    typed["sessionmaker"] = make_sessionmaker(typed["engine"], settings=settings)
    typed["runner"] = "arq"
    typed["http"] = webhook_delivery.http_client()
    if settings.redis_url:
        typed["sender"] = ArqSender(settings.redis_url, settings.queue_name)
    processes = min(settings.model_processes, settings.worker_max_jobs)
    if processes:
        pool = ModelPool(processes)
        await pool.warm()
        typed["model_pool"] = pool
    ctx["metrics_server"] = _serve_metrics(settings)
    ctx["metrics_task"] = asyncio.create_task(_refresh_metrics(ctx))
    log.info(
        "projector worker started",
        extra={
            "queue": settings.queue_name,
            "max_jobs": settings.worker_max_jobs,
            "job_max_tries": settings.job_max_tries,
            "model_processes": processes,
            "metrics_port": settings.worker_metrics_port or None,
        },
    )


def _serve_metrics(settings: Settings) -> Any:
    """The worker's own /metrics (prometheus-client's server, on a thread); 0 turns it off."""
    if not settings.worker_metrics_port:
        return None
    try:
        server, _ = start_http_server(settings.worker_metrics_port, addr=settings.host)
    except OSError as exc:
        # Another worker on this host has the port: the jobs matter more than the metrics.
        log.warning(
            "worker metrics not served",
            extra={"port": settings.worker_metrics_port, "error": str(exc)},
        )
        return None
    return server


async def _refresh_metrics(ctx: dict[str, Any]) -> None:
    """The database and queue gauges, every few seconds."""
    sender = ctx.get("sender")
    depth = sender.depth if sender is not None else None
    while True:
        await metrics.refresh(ctx["sessionmaker"], queue_depth=depth)
        await asyncio.sleep(METRICS_REFRESH_S)


async def shutdown(ctx: dict[str, Any]) -> None:
    typed = cast(WorkerContext, ctx)
    task = ctx.pop("metrics_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    server = ctx.pop("metrics_server", None)
    if server is not None:
        server.shutdown()
        server.server_close()
    if "sender" in typed:
        await typed["sender"].close()
    if "http" in typed:
        await typed["http"].aclose()
    if "model_pool" in typed:
        typed.pop("model_pool").close()
    if "engine" in typed:
        await typed["engine"].dispose()


def reconcile_interval_s(settings: Settings) -> float:
    return max(1.0, min(60.0, settings.queue_reconcile_after_s / 2))


def redis_settings() -> RedisSettings:
    url = get_settings().redis_url or "redis://127.0.0.1:6379/0"
    settings: RedisSettings = queue_redis_settings(url)
    return settings


class WorkerSettings:
    functions: ClassVar[list[Any]] = [
        func(
            cast(Any, spec.coroutine),
            name=spec.name,
            max_tries=spec.tries(get_settings()),
            timeout=spec.timeout_s,
        )
        for spec in JOBS
    ]
    # The reapers: projection work every minute (the API's timer runs the same pass at half the
    # heartbeat timeout), imports at half their heartbeat timeout; work whose worker died is
    # re-queued.
    cron_jobs: ClassVar[list[Any]] = [
        cron(cast(Any, jobs.reap_projections), second={0}, run_at_startup=False, unique=True),
        cron(
            cast(Any, jobs.reap_imports),
            second=set(range(0, 60, int(reaper_interval_s(get_settings())))),
            run_at_startup=True,
            unique=True,
        ),
        # Work the queue lost (a Redis that restarted empty) is sent again.
        cron(
            cast(Any, jobs.reconcile_queue),
            second=set(range(0, 60, int(reconcile_interval_s(get_settings())))),
            run_at_startup=True,
            unique=True,
        ),
        # Ends that dates bring (a deployment's or an agreement's end date passing) are
        # announced; every worker and the API sweep, and each end is claimed once.
        cron(
            cast(Any, jobs.announce_calendar_ends),
            minute=webhook_calendar.cron_times(get_settings())[0],
            second=webhook_calendar.cron_times(get_settings())[1],
            run_at_startup=True,
            unique=True,
        ),
    ]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = redis_settings()
    queue_name = get_settings().queue_name
    max_jobs = get_settings().worker_max_jobs
    # arq looks for new jobs this often while it has a free slot (its default is 0.5 s): an
    # England run's parts take about a second each, so half a second per freed slot was a
    # third of the run.
    poll_delay = 0.05
    keep_result = 3600
    # Jobs whose worker died are re-run; the job functions are idempotent per run.
    allow_abort_jobs = True
