"""API keys: creation (the secret is shown once), authentication and revocation."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.areas.errors import UnknownIcs
from services.api.keys import errors
from services.api.organisations.errors import UnknownOrganisation
from shared.db.base import utcnow
from shared.errors import Unauthorized
from shared.models import ApiKey, AreaType, KeyScope
from shared.repositories import api_keys, areas, audit, organisations
from shared.repositories.base import PageWindow
from shared.schemas.keys import ApiKeyCreate, Principal

TOKEN_PREFIX = "owf"
_TOKEN = re.compile(r"^owf_([0-9a-f]{8})_([A-Za-z0-9_-]{20,100})$")
_WWW_AUTHENTICATE = 'Bearer realm="oneworkforce"'
_TOUCH_EVERY = timedelta(minutes=1)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _unauthorized(message: str, *, error: str = "invalid_token") -> Unauthorized:
    header = f'{_WWW_AUTHENTICATE}, error="{error}"' if error else _WWW_AUTHENTICATE
    return Unauthorized(message, headers={"WWW-Authenticate": header})


def missing_credentials() -> errors.MissingCredentials:
    return errors.MissingCredentials(
        "Send an API key as 'Authorization: Bearer <key>'.",
        headers={"WWW-Authenticate": _WWW_AUTHENTICATE},
    )


async def authenticate(session: AsyncSession, *, token: str) -> Principal:
    """Turn a bearer token into a principal; unknown and revoked keys are refused alike."""
    match = _TOKEN.match(token)
    if match is None:
        raise _unauthorized("The API key is not valid.")
    key = await api_keys.get_by_prefix(session, prefix=match.group(1))
    if key is None or not hmac.compare_digest(key.secret_sha256, _hash(token)):
        raise _unauthorized("The API key is not valid.")
    if key.revoked_at is not None:
        raise errors.KeyRevoked(
            "The API key has been revoked.",
            headers={"WWW-Authenticate": f'{_WWW_AUTHENTICATE}, error="invalid_token"'},
        )
    now = utcnow()
    last = key.last_used_at
    if last is None or now - last > _TOUCH_EVERY:
        await api_keys.touch(session, key_id=key.id, at=now)
    return Principal(
        key_id=key.id,
        name=key.name,
        scope=KeyScope(key.scope),
        organisation_id=key.organisation_id,
        ics_code=key.ics_code,
    )


def check_binding(data: ApiKeyCreate) -> None:
    if data.organisation_id is not None and data.ics_code is not None:
        raise errors.KeyBindingConflict(
            "Bind a key to an organisation or to an ICS, not both.", field="ics_code"
        )
    if data.scope == KeyScope.submit and data.organisation_id is None:
        raise errors.SubmitKeyNeedsOrganisation(
            "A submit key must be bound to one organisation.", field="organisation_id"
        )
    if data.scope == KeyScope.admin and data.organisation_id is not None:
        raise errors.AdminKeyBinding(
            "An admin key is global or bound to an ICS.", field="organisation_id"
        )


async def _check_binding_exists(session: AsyncSession, data: ApiKeyCreate) -> None:
    """A key bound to an ICS or organisation that does not exist would never work."""
    if data.ics_code is not None:
        area = await areas.get(session, code=data.ics_code)
        if area is None or area.type != AreaType.icb:
            raise UnknownIcs(f"{data.ics_code} is not an ICB.", field="ics_code")
    if (
        data.organisation_id is not None
        and await organisations.get(session, organisation_id=data.organisation_id) is None
    ):
        raise UnknownOrganisation("No such organisation.", field="organisation_id")


async def create_key(
    session: AsyncSession, data: ApiKeyCreate, *, actor: str, actor_key_id: uuid.UUID | None
) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret, which is never stored."""
    check_binding(data)
    await _check_binding_exists(session, data)
    prefix = secrets.token_hex(4)
    while await api_keys.get_by_prefix(session, prefix=prefix) is not None:
        prefix = secrets.token_hex(4)
    token = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = await api_keys.add(
        session,
        ApiKey(
            name=data.name,
            prefix=prefix,
            secret_sha256=_hash(token),
            scope=data.scope,
            organisation_id=data.organisation_id,
            ics_code=data.ics_code,
        ),
    )
    await audit.record(
        session,
        key_id=actor_key_id,
        actor=actor,
        action="api_key.create",
        resource_type="api_key",
        resource_id=str(key.id),
        detail={"scope": data.scope, "ics_code": data.ics_code, "name": data.name},
    )
    return key, token


async def create_key_as(
    session: AsyncSession, data: ApiKeyCreate, *, principal: Principal
) -> tuple[ApiKey, str]:
    if not principal.is_global:
        if data.organisation_id is not None:
            # A partner organisation of another ICS does not exist for this admin.
            organisation = await organisations.get_readable(
                session, principal=principal, organisation_id=data.organisation_id
            )
            if organisation is None:
                raise UnknownOrganisation("No such organisation.", field="organisation_id")
        elif data.ics_code != principal.ics_code:
            raise errors.KeyOutOfScope(
                "An ICS admin key may only create keys bound to its own ICS or to one of its "
                "partner organisations."
            )
    return await create_key(session, data, actor=principal.actor, actor_key_id=principal.key_id)


async def list_keys(
    session: AsyncSession, *, principal: Principal, page: PageWindow
) -> tuple[Sequence[ApiKey], int]:
    """The keys this admin key manages: all for a global admin; for an ICS admin, those bound to
    its ICS and to its partner organisations."""
    return await api_keys.list_readable(session, principal=principal, page=page)


async def revoke_key(
    session: AsyncSession,
    *,
    key_id: uuid.UUID,
    actor: str,
    actor_key_id: uuid.UUID | None,
    principal: Principal | None = None,
) -> ApiKey:
    key = (
        await api_keys.get(session, key_id=key_id)
        if principal is None
        else await api_keys.get_readable(session, principal=principal, key_id=key_id)
    )
    if key is None:
        raise errors.KeyNotFound("No such API key.")
    if key.revoked_at is not None:
        raise errors.KeyAlreadyRevoked("The API key is already revoked.")
    key.revoked_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        key_id=actor_key_id,
        actor=actor,
        action="api_key.revoke",
        resource_type="api_key",
        resource_id=str(key.id),
    )
    return key
