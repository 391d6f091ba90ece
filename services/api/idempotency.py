"""Idempotency-Key for creating requests: same key and body, same answer; other body, 409.

The key is reserved at the start of the request, in the request's own transaction, so two
concurrent requests with one key cannot both do the work: on PostgreSQL the second waits for
the first to commit and then replays its answer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.errors import (
    IdempotencyKeyInProgress,
    IdempotencyKeyInvalid,
    IdempotencyKeyReused,
)
from shared.models import IdempotencyRecord
from shared.repositories import returns as repo
from shared.schemas.keys import Principal

_IN_PROGRESS = 0


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: dict[str, Any]


@dataclass(frozen=True)
class IdempotencyContext:
    key: str
    request_sha256: str


def context_for(request: Request, body: bytes) -> IdempotencyContext | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not 1 <= len(key) <= 200:
        raise IdempotencyKeyInvalid(
            "Idempotency-Key must be 1 to 200 characters.",
            errors=[
                {
                    "field": "Idempotency-Key",
                    "in": "header",
                    "code": "idempotency_key_invalid",
                    "message": "1 to 200 characters",
                }
            ],
        )
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.url.path}?{request.url.query}\n".encode())
    digest.update(request.headers.get("content-type", "").encode() + b"\n")
    digest.update(body)
    return IdempotencyContext(key=key, request_sha256=digest.hexdigest())


def _check(record: IdempotencyRecord, context: IdempotencyContext) -> Replay:
    if record.request_sha256 != context.request_sha256:
        raise IdempotencyKeyReused("This Idempotency-Key was used with a different request.")
    if record.status_code == _IN_PROGRESS:
        raise IdempotencyKeyInProgress(
            "A request with this Idempotency-Key is still being processed."
        )
    return Replay(status_code=record.status_code, body=dict(record.response))


async def reserve(
    session: AsyncSession, *, principal: Principal, context: IdempotencyContext
) -> Replay | None:
    """Claim the key for this request, or return the answer already given for it."""
    claimed = await repo.claim_idempotency(
        session,
        api_key_id=principal.key_id,
        key=context.key,
        request_sha256=context.request_sha256,
        in_progress=_IN_PROGRESS,
    )
    if claimed:
        return None
    # The key was used before (on PostgreSQL the claim waited for a concurrent holder).
    earlier = await repo.get_idempotency(session, api_key_id=principal.key_id, key=context.key)
    if earlier is None:
        raise IdempotencyKeyInProgress(
            "A concurrent request with this Idempotency-Key failed; retry."
        )
    return _check(earlier, context)


async def complete(
    session: AsyncSession,
    *,
    principal: Principal,
    context: IdempotencyContext,
    status_code: int,
    body: dict[str, Any],
) -> None:
    record = await repo.get_idempotency(session, api_key_id=principal.key_id, key=context.key)
    assert record is not None
    record.status_code = status_code
    record.response = body
    await session.flush()
