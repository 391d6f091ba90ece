"""The job functions with their limits, shared by the arq worker and the in-process runner."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from services.projector import jobs
from shared.jobs import JobName

JobFunction = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class JobSpec:
    name: str
    coroutine: JobFunction
    max_tries: int
    timeout_s: float


JOBS: tuple[JobSpec, ...] = (
    JobSpec(JobName.ping, jobs.ping, max_tries=3, timeout_s=60),
    JobSpec(JobName.import_returns, jobs.import_returns, max_tries=3, timeout_s=3600),
    JobSpec(JobName.run_projection, jobs.run_projection, max_tries=3, timeout_s=3600),
    JobSpec(JobName.project_ics, jobs.project_ics, max_tries=3, timeout_s=3600),
    JobSpec(JobName.combine_projection, jobs.combine_projection, max_tries=3, timeout_s=600),
    # Attempts are counted against WEBHOOK_MAX_ATTEMPTS (at most 20) by the job itself.
    JobSpec(JobName.deliver_webhook, jobs.deliver_webhook, max_tries=20, timeout_s=120),
)
