"""Helpers the test modules share: problem+json assertions, settings and key factories."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest

from shared.config import Settings

PROBLEM = "application/problem+json"
REPO_ROOT = Path(__file__).resolve().parents[1]

# The `make_key` fixture: a real API key's Authorization header for a scope and binding.
KeyFactory = Callable[..., Awaitable[dict[str, str]]]


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is a problem+json document with this status and code; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def unavailable(what: str, *, why: str) -> NoReturn:
    """A test needs something this machine lacks: a failure where services are required (CI
    sets REQUIRE_SERVICES=1, so nothing it needs is ever skipped there), a skip elsewhere."""
    if Settings(_env_file=None).require_services:
        pytest.fail(f"{what} is required (REQUIRE_SERVICES=1)")
    pytest.skip(why)


def settings_for(database_url: str, **overrides: object) -> Settings:
    """Settings for an app under test: this database, no Redis, JSON logs, no relay delay."""
    values: dict[str, object] = {
        "database_url": database_url,
        "redis_url": None,
        "log_json": True,
        "outbox_relay_interval_s": 60.0,
        # Tests sweep for calendar ends themselves, on the day they choose.
        "webhook_calendar_interval_s": 3600.0,
        "recompute_delay_s": 0.0,
        "load_demo_data": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]
