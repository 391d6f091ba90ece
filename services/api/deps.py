"""Request dependencies as Annotated aliases: the session (the edge owns the transaction) and
the caller's principal with scope checks."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import date
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.cache import KeyCache
from services.api.gate import ANY_KEY, requires_scope
from services.api.keys import service as keys
from services.domain.queue import OutboxRelay
from shared.config import Settings
from shared.db.base import utcnow
from shared.db.session import transaction
from shared.errors import InsufficientScope
from shared.models import KeyScope
from shared.repositories import outbox
from shared.schemas.keys import Principal

log = logging.getLogger("oneworkforce.api")


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: commit before the response, then send queued jobs."""
    sessionmaker = request.app.state.sessionmaker
    async with transaction(sessionmaker) as session:
        yield session
    pending = outbox.take_pending(session)
    if pending:
        relay: OutboxRelay = request.app.state.relay
        try:
            await relay.send(pending)
        except Exception:
            # The rows are committed; the relay's timer sends them later.
            log.exception("sending after commit failed; the relay will retry")


# scope="function" runs the commit before the response is sent, so a 2xx means committed.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def today() -> date:
    """Today's date (UTC), by which agreements start and expire and returns may not be dated
    after. One dependency for every route that needs it, so tests can set the day."""
    return utcnow().date()


Today = Annotated[date, Depends(today)]


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


@requires_scope(ANY_KEY)
async def get_principal(request: Request) -> Principal:
    """The caller's key. The access gate has usually authenticated it before the body was
    read; recently seen keys come from a short-lived cache, so a read that needs nothing else
    from the database costs no database round trip for authentication."""
    authenticated = request.scope.get("state", {}).get("principal")
    if isinstance(authenticated, Principal):
        return authenticated
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise keys.missing_credentials()
    token = token.strip()
    cache: KeyCache = request.app.state.key_cache
    principal = cache.get(token)
    if principal is None:
        async with transaction(request.app.state.sessionmaker) as session:
            principal = await keys.authenticate(session, token=token)
        cache.put(token, principal)
    return principal


CurrentKey = Annotated[Principal, Depends(get_principal)]


def require(scope: KeyScope) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    @requires_scope(scope)
    async def check(principal: CurrentKey) -> Principal:
        if not principal.has(scope):
            raise InsufficientScope(f"This needs a key with the '{scope}' scope.")
        return principal

    return check


ReadKey = Annotated[Principal, Depends(require(KeyScope.read))]
SubmitKey = Annotated[Principal, Depends(require(KeyScope.submit))]
AdminKey = Annotated[Principal, Depends(require(KeyScope.admin))]
