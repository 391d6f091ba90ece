"""Errors of the health checks."""

from __future__ import annotations

from shared.errors import ServiceUnavailable


class NotReady(ServiceUnavailable):
    """A dependency (database or queue) is unreachable; `checks` says which."""

    code = "not_ready"
    fix = "Wait and retry; operators should look at the dependency named in checks."
