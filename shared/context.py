"""Per-request (and per-job) context shared by logging, errors and the audit log."""

from contextvars import ContextVar
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
# While a job runs: its id, name and try, and the run (and ICB) it works on; every log line
# written meanwhile carries them.
job_context_var: ContextVar[dict[str, Any] | None] = ContextVar("job_context", default=None)
