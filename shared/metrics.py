"""Prometheus metrics shared by the API and the projector workers.

Counters and histograms count what happens in the process that exposes them; the gauges of
runs by status and of the outbox are read from the database (and the queue depth from the
queue) when they are refreshed: at each scrape of the API's /metrics, and on a timer in a
worker, whose own /metrics listens on WORKER_METRICS_PORT.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.base import utcnow
from shared.models import RunStatus
from shared.repositories import outbox
from shared.repositories import projections as projections_repo

log = logging.getLogger("oneworkforce.metrics")

RUNS = Gauge(
    "oneworkforce_projection_runs", "Projection runs in the database, by status", ["status"]
)
RUN_DURATION = Histogram(
    "oneworkforce_projection_run_duration_seconds",
    "From a run's first start to its end, for runs this process ended",
    ["scope", "status"],
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 3600),
)
RUNS_ENDED = Counter(
    "oneworkforce_projection_runs_ended_total",
    "Runs this process ended, by status and whether they were automatic recomputes",
    ["status", "automatic"],
)
JOBS = Counter(
    "oneworkforce_jobs_total",
    "Jobs this process ran, by job and outcome (succeeded, retried, failed)",
    ["job", "outcome"],
)
QUEUE_DEPTH = Gauge(
    "oneworkforce_queue_depth", "Jobs waiting in the queue (queued or deferred), not yet running"
)
OUTBOX_BACKLOG = Gauge(
    "oneworkforce_outbox_unsent", "Jobs written to the outbox and not yet sent to the queue"
)
OUTBOX_OLDEST_AGE = Gauge(
    "oneworkforce_outbox_oldest_unsent_age_seconds",
    "Age of the oldest unsent outbox row (0 when none is waiting)",
)
SCRAPE_ERRORS = Counter(
    "oneworkforce_metrics_refresh_errors_total",
    "Refreshes of the database and queue gauges that failed (the gauges keep their last value)",
)

QueueDepth = Callable[[], Awaitable[int]]


def run_ended(*, scope: str, status: str, seconds: float | None, automatic: bool) -> None:
    """Record a run this process ended."""
    kind = "england" if scope == "E92000001" else "icb"
    if seconds is not None:
        RUN_DURATION.labels(scope=kind, status=status).observe(max(seconds, 0.0))
    RUNS_ENDED.labels(status=status, automatic=str(automatic).lower()).inc()


async def refresh(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    queue_depth: QueueDepth | None = None,
    timeout_s: float = 2.0,
) -> bool:
    """Read the gauges from the database and the queue; False (logged) if that failed."""
    try:
        async with asyncio.timeout(timeout_s):
            async with sessionmaker() as session:
                by_status = await projections_repo.count_by_status(session)
                unsent, oldest = await outbox.backlog(session)
            depth = await queue_depth() if queue_depth is not None else None
    except Exception as exc:
        SCRAPE_ERRORS.inc()
        log.warning("metrics refresh failed", extra={"error": f"{type(exc).__name__}: {exc}"})
        return False
    for status in RunStatus:
        RUNS.labels(status=status.value).set(by_status.get(status.value, 0))
    OUTBOX_BACKLOG.set(unsent)
    if oldest is not None and oldest.tzinfo is None:  # SQLite keeps no zone: times are UTC
        oldest = oldest.replace(tzinfo=UTC)
    OUTBOX_OLDEST_AGE.set(0.0 if oldest is None else (utcnow() - oldest).total_seconds())
    if depth is not None:
        QUEUE_DEPTH.set(depth)
    return True
