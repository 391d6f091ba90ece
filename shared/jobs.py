"""Job names, deterministic job ids and payload shapes shared by the API and the projector.

The API enqueues by name with these payloads and never imports projector code.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class JobName(StrEnum):
    ping = "ping"
    run_projection = "run_projection"
    project_ics = "project_ics"
    combine_projection = "combine_projection"
    import_returns = "import_returns"
    deliver_webhook = "deliver_webhook"


# How long each job may run before the worker cancels it (seconds).
JOB_TIMEOUT_S: dict[JobName, float] = {
    JobName.ping: 60.0,
    JobName.import_returns: 3600.0,
    JobName.run_projection: 3600.0,
    JobName.project_ics: 3600.0,
    JobName.combine_projection: 600.0,
    JobName.deliver_webhook: 120.0,
}
# arq marks a job it has started "in progress" for the longest job timeout plus 10 s; a worker
# that dies leaves the mark until then. The reconciler reads the mark's age from its TTL.
IN_PROGRESS_TIMEOUT_S = max(JOB_TIMEOUT_S.values()) + 10.0


class JobPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # The request that caused the job (filled in by the outbox from the request's context, and
    # carried on to the jobs a job queues), so the worker's log lines can name it.
    request_id: str | None = None


class PingPayload(JobPayload):
    token: str


class RunProjectionPayload(JobPayload):
    run_id: uuid.UUID
    attempt: int = 1


class ProjectIcsPayload(JobPayload):
    run_id: uuid.UUID
    ics_code: str
    attempt: int = 1


class ImportReturnsPayload(JobPayload):
    import_id: uuid.UUID
    attempt: int = 1


def ping_job_id(token: str) -> str:
    return f"ping:{token}"


def run_projection_job_id(run_id: uuid.UUID, attempt: int = 1) -> str:
    # arq refuses an id whose earlier result is still kept, so the attempt is part of it.
    return f"run_projection:{run_id}:{attempt}"


def project_ics_job_id(run_id: uuid.UUID, ics_code: str, attempt: int = 1) -> str:
    return f"project_ics:{run_id}:{ics_code}:{attempt}"


def combine_projection_job_id(run_id: uuid.UUID, attempt: int = 1) -> str:
    return f"combine_projection:{run_id}:{attempt}"


def import_returns_job_id(import_id: uuid.UUID, attempt: int = 1) -> str:
    return f"import_returns:{import_id}:{attempt}"


class DeliverWebhookPayload(JobPayload):
    delivery_id: uuid.UUID


def deliver_webhook_job_id(delivery_id: uuid.UUID, redelivery: int = 0) -> str:
    # A redelivery is a new job: arq keeps the earlier one's result under the old id.
    return f"deliver_webhook:{delivery_id}:{redelivery}"
