"""The job functions with their limits, shared by the arq worker and the in-process runner.

How many times a job is tried is one setting, JOB_MAX_TRIES, for both runners. Every job runs
inside `instrumented`: its log lines carry the job id, name and try, the run (and ICB) it works
on and the id of the request that caused it, and its outcome is counted in the metrics.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from arq import Retry

from services.projector import jobs
from shared import metrics
from shared.config import Settings
from shared.context import job_context_var, request_id_var
from shared.jobs import JOB_TIMEOUT_S, JobName

JobFunction = Callable[..., Awaitable[Any]]

log = logging.getLogger("oneworkforce.projector")

# Payload fields worth a place on every log line of the job.
_CONTEXT_FIELDS = ("run_id", "ics_code", "import_id", "delivery_id", "attempt")


@dataclass(frozen=True)
class JobSpec:
    name: str
    coroutine: JobFunction
    timeout_s: float
    # None: JOB_MAX_TRIES. Webhook deliveries count their attempts against
    # WEBHOOK_MAX_ATTEMPTS (at most 20) themselves.
    max_tries: int | None = None

    def tries(self, settings: Settings) -> int:
        return self.max_tries or settings.job_max_tries


def instrumented(name: str, function: JobFunction) -> JobFunction:
    """The job function with its context set for logging, and its outcome logged and counted."""

    @functools.wraps(function)
    async def job(ctx: Any, **payload: Any) -> Any:
        request_id = payload.pop("request_id", None)
        context = {
            "job_id": ctx.get("job_id"),
            "job_name": name,
            "job_try": ctx.get("job_try", 1),
            **{key: payload[key] for key in _CONTEXT_FIELDS if key in payload},
        }
        request_token = request_id_var.set(request_id)
        context_token = job_context_var.set(context)
        started = time.perf_counter()
        outcome = "failed"
        try:
            result = await function(ctx, **payload)
            outcome = "succeeded"
            summary = result.get("outcome") if isinstance(result, dict) else None
            log.info(
                "job finished",
                extra={"outcome": summary, "duration_s": round(time.perf_counter() - started, 3)},
            )
            return result
        except Retry:
            outcome = "retried"
            raise
        except Exception as exc:
            log.error(
                "job failed",
                extra={
                    "error": f"{type(exc).__name__}: {exc}",
                    "duration_s": round(time.perf_counter() - started, 3),
                },
            )
            raise
        finally:
            metrics.JOBS.labels(job=name, outcome=outcome).inc()
            job_context_var.reset(context_token)
            request_id_var.reset(request_token)

    return job


JOBS: tuple[JobSpec, ...] = tuple(
    JobSpec(name, instrumented(name, function), JOB_TIMEOUT_S[name], max_tries)
    for name, function, max_tries in (
        (JobName.ping, jobs.ping, None),
        (JobName.import_returns, jobs.import_returns, None),
        (JobName.run_projection, jobs.run_projection, None),
        (JobName.project_ics, jobs.project_ics, None),
        (JobName.combine_projection, jobs.combine_projection, None),
        (JobName.deliver_webhook, jobs.deliver_webhook, 20),
    )
)
