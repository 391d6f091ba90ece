"""arq worker settings, run by `oneworkforce worker`."""

from __future__ import annotations

import logging
from typing import Any, ClassVar, cast

from arq import cron, func
from arq.connections import RedisSettings

from services.domain.queue import ArqSender
from services.domain.queue import redis_settings as queue_redis_settings
from services.domain.returns.import_jobs import reaper_interval_s
from services.projector import jobs
from services.projector.context import WorkerContext
from services.projector.registry import JOBS
from shared.config import Settings, get_settings
from shared.db.session import make_engine, make_sessionmaker
from shared.logging import configure_logging

log = logging.getLogger("oneworkforce.projector")


async def startup(ctx: dict[str, Any]) -> None:
    typed = cast(WorkerContext, ctx)
    # Settings may be handed in (tests, embedding); otherwise they come from the environment.
    settings = typed.get("settings") or get_settings()
    configure_logging(settings)
    typed["settings"] = settings
    typed["engine"] = make_engine(settings.database_url)
    typed["sessionmaker"] = make_sessionmaker(typed["engine"], settings=settings)
    typed["runner"] = "arq"
    if settings.redis_url:
        typed["sender"] = ArqSender(settings.redis_url, settings.queue_name)
    log.info("projector worker started", extra={"queue": settings.queue_name})


async def shutdown(ctx: dict[str, Any]) -> None:
    typed = cast(WorkerContext, ctx)
    if "sender" in typed:
        await typed["sender"].close()
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
            max_tries=spec.max_tries,
            timeout=spec.timeout_s,
        )
        for spec in JOBS
    ]
    # The reapers: projection work every minute, imports at half their heartbeat timeout;
    # work whose worker died is re-queued.
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
    ]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = redis_settings()
    queue_name = get_settings().queue_name
    max_jobs = 4
    keep_result = 3600
    # Jobs whose worker died are re-run; the job functions are idempotent per run.
    allow_abort_jobs = True
