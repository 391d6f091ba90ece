"""Bulk imports are recovered like runs: a heartbeat, a reaper that re-queues or fails them, and
no staging rows left behind by any import that has finished, however it finished."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.keys import service as keys_service
from services.api.returns import imports as imports_service
from services.domain.returns import import_jobs
from shared.db.base import utcnow
from shared.db.session import transaction
from shared.jobs import import_returns_job_id
from shared.models import ImportStatus, KeyScope, OutboxMessage, ReturnImport
from shared.repositories import imports
from shared.schemas.keys import ApiKeyCreate, Principal
from tests.api.returns.helpers import counts, line
from tests.api.returns.test_imports import bulk_csv, orgs
from tests.helpers import KeyFactory, settings_for

__all__ = ["orgs"]

ROWS = [
    ("RBT", "2025-03-31", line()),
    ("RBT", "2025-03-31", line("registered-nurse")),
    ("1-101010101", "2025-03-31", line()),
]


async def _staged(sessionmaker: async_sessionmaker[AsyncSession], body: bytes) -> uuid.UUID:
    """An import as the API leaves it (staged, queued, its job in the outbox), not yet sent."""

    async def chunks() -> AsyncIterator[bytes]:
        yield body

    async with transaction(sessionmaker) as session:
        key, _ = await keys_service.create_key(
            session,
            ApiKeyCreate(name=f"importer-{uuid.uuid4().hex[:6]}", scope=KeyScope.admin),
            actor="test",
            actor_key_id=None,
        )
        principal = Principal(key_id=key.id, name=key.name, scope=KeyScope.admin)
        row = await imports_service.accept(session, chunks(), principal=principal)
        return row.id


async def _row(
    sessionmaker: async_sessionmaker[AsyncSession], import_id: uuid.UUID
) -> ReturnImport:
    async with sessionmaker() as session:
        row = await imports.get(session, import_id=import_id)
        assert row is not None
        return row


async def _worker_died(
    sessionmaker: async_sessionmaker[AsyncSession],
    import_id: uuid.UUID,
    *,
    attempts: int,
    silent_for: timedelta = timedelta(minutes=10),
) -> None:
    """What a worker killed mid-load leaves: the import running, its last beat long ago."""
    async with transaction(sessionmaker) as session:
        row = await imports.get(session, import_id=import_id, lock=True)
        assert row is not None
        await imports.update(
            session,
            row,
            status=ImportStatus.running,
            attempts=attempts,
            started_at=utcnow() - silent_for,
            heartbeat_at=utcnow() - silent_for,
        )


async def _outbox_job_ids(sessionmaker: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(OutboxMessage.job_id).order_by(OutboxMessage.created_at)
        )
        return [str(job_id) for job_id in rows.scalars()]


async def test_a_silent_import_is_requeued_and_its_next_attempt_loads_it_once(
    orgs: dict[str, uuid.UUID],
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
) -> None:
    settings = settings_for(database_url, run_heartbeat_timeout_s=60)
    import_id = await _staged(sessionmaker, bulk_csv(ROWS))
    await _worker_died(sessionmaker, import_id, attempts=1)
    discarded: list[str] = []

    async def discard(job_ids: list[str]) -> None:
        discarded.extend(job_ids)

    assert await import_jobs.reap(sessionmaker, settings=settings, discard=discard) == {
        "requeued": 1,
        "failed": 0,
    }
    # The dead attempt's job leaves the queue; attempt 2 is in the outbox.
    assert discarded == [import_returns_job_id(import_id, 1)]
    assert await _outbox_job_ids(sessionmaker) == [
        import_returns_job_id(import_id, 1),
        import_returns_job_id(import_id, 2),
    ]
    requeued = await _row(sessionmaker, import_id)
    assert (requeued.status, requeued.attempts, requeued.heartbeat_at) == ("queued", 1, None)
    # Nothing was loaded, and the staged lines wait for the retry.
    assert await counts(sessionmaker) == (0, 0, 3)
    # A second pass finds nothing more to do.
    assert await import_jobs.reap(sessionmaker, settings=settings) == {"requeued": 0, "failed": 0}

    # The dead attempt waking up late does nothing; attempt 2 loads the file.
    late = await import_jobs.process(sessionmaker, import_id=import_id, settings=settings)
    assert late == ImportStatus.queued
    assert await counts(sessionmaker) == (0, 0, 3)
    done = await import_jobs.process(
        sessionmaker, import_id=import_id, settings=settings, attempt=2
    )
    assert done == ImportStatus.succeeded
    row = await _row(sessionmaker, import_id)
    assert (row.status, row.attempts, row.return_count) == ("succeeded", 2, 2)
    assert row.heartbeat_at is not None
    assert await counts(sessionmaker) == (2, 3, 0)
    # Running either attempt again is a no-op: one load.
    for attempt in (2, 3):
        again = await import_jobs.process(
            sessionmaker, import_id=import_id, settings=settings, attempt=attempt
        )
        assert again == ImportStatus.succeeded
    assert await counts(sessionmaker) == (2, 3, 0)


async def test_an_import_silent_on_its_last_attempt_fails_with_a_reason_and_no_staging_rows(
    orgs: dict[str, uuid.UUID],
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
) -> None:
    settings = settings_for(database_url, run_heartbeat_timeout_s=60, job_max_tries=3)
    import_id = await _staged(sessionmaker, bulk_csv(ROWS))
    await _worker_died(sessionmaker, import_id, attempts=3)
    assert await import_jobs.reap(sessionmaker, settings=settings) == {"requeued": 0, "failed": 1}
    row = await _row(sessionmaker, import_id)
    assert row.status == ImportStatus.failed
    assert row.finished_at is not None
    assert row.error_count == 1
    assert row.errors[0]["code"] == "import_abandoned"
    assert "stopped responding on every attempt (3)" in row.errors[0]["message"]
    assert await counts(sessionmaker) == (0, 0, 0)
    # Only attempt 1's job is in the outbox: failing queued nothing.
    assert await _outbox_job_ids(sessionmaker) == [import_returns_job_id(import_id, 1)]
    late = await import_jobs.process(
        sessionmaker, import_id=import_id, settings=settings, attempt=4
    )
    assert late == ImportStatus.failed
    assert await counts(sessionmaker) == (0, 0, 0)


async def test_live_imports_are_left_alone(
    orgs: dict[str, uuid.UUID],
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
) -> None:
    settings = settings_for(database_url, run_heartbeat_timeout_s=60)
    beating = await _staged(sessionmaker, bulk_csv(ROWS[:1]))
    await _worker_died(sessionmaker, beating, attempts=1, silent_for=timedelta(seconds=5))
    queued = await _staged(sessionmaker, bulk_csv(ROWS[1:]))
    here = await _staged(sessionmaker, bulk_csv(ROWS[2:]))
    await _worker_died(sessionmaker, here, attempts=1)
    # A job this process is running is alive even without beats (SQLite's single writer).
    running_here = {import_returns_job_id(here, 1)}.__contains__
    counted = await import_jobs.reap(sessionmaker, settings=settings, running_here=running_here)
    assert counted == {"requeued": 0, "failed": 0}
    statuses = [(await _row(sessionmaker, i)).status for i in (beating, queued, here)]
    assert statuses == ["running", "queued", "running"]
    # The beat only lands for the import's current attempt.
    async with transaction(sessionmaker) as session:
        assert await imports.beat(session, import_id=beating, attempt=1)
        assert not await imports.beat(session, import_id=beating, attempt=2)
        assert not await imports.beat(session, import_id=queued, attempt=1)


async def test_out_of_range_numbers_fail_the_import_and_leave_no_staging_rows(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    orgs: dict[str, uuid.UUID],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    admin = await make_key("admin")
    for values in (
        {"headcount": 10**20},
        {"fte_in_post": "1e400"},
        # On PostgreSQL this one breaks the SQL checks themselves (a numeric overflow).
        {"sickness_days_12m": "1" + "0" * 400},
    ):
        body = bulk_csv(
            [
                ("RBT", "2025-03-31", line()),
                ("RBT", "2025-03-31", line("registered-nurse", **values)),
            ]
        )
        accepted = await client.post(
            "/v1/imports/returns", content=body, headers={**admin, "Content-Type": "text/csv"}
        )
        assert accepted.status_code == 202, accepted.text
        await app.state.sender.join()
        result = (await client.get(accepted.headers["location"], headers=admin)).json()
        assert result["status"] == "failed", (values, result)
        assert result["error_count"] >= 1
        assert result["errors"][0]["message"], result
        assert await counts(sessionmaker) == (0, 0, 0), values


async def test_state_changes_are_retried_while_the_database_is_away() -> None:
    calls: list[int] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("UPDATE return_imports", {}, ConnectionError("gone"))
        return "recorded"

    assert await import_jobs.with_backoff(flaky, deadline_s=5, first_delay_s=0.01) == "recorded"
    assert len(calls) == 3

    async def wrong() -> str:
        calls.append(1)
        raise IntegrityError("INSERT", {}, ValueError("duplicate"))

    calls.clear()
    with pytest.raises(IntegrityError):
        await import_jobs.with_backoff(wrong, deadline_s=5, first_delay_s=0.01)
    assert len(calls) == 1  # not a lost connection: no retry

    async def down() -> str:
        calls.append(1)
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))

    calls.clear()
    with pytest.raises(OperationalError):
        await import_jobs.with_backoff(down, deadline_s=0.1, first_delay_s=0.02)
    assert 2 <= len(calls) <= 5  # retried with growing delays, then given up
