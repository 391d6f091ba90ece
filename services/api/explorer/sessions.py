"""Explorer sign-in: an API key is exchanged once for a short-lived browser session.

The browser keeps only a random session token in an HttpOnly, SameSite=Strict cookie; the
database keeps its SHA-256, the key it acts for and the CSRF token of the session's forms.
Every request re-reads the key, so a revoked key ends its sessions at once. Forms before
sign-in are protected by a double-submit token (a cookie and a hidden field that must match).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.explorer.errors import CsrfRejected, SignInRequired
from services.api.keys import service as keys
from shared.config import Settings
from shared.db.base import utcnow
from shared.models import KeyScope, WebSession
from shared.repositories import web_sessions
from shared.schemas.keys import Principal

SESSION_COOKIE = "owf_session"
LOGIN_CSRF_COOKIE = "owf_signin_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
COOKIE_PATH = "/"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class ExplorerSession:
    """A signed-in browser: the key's principal and the CSRF token of its forms."""

    principal: Principal
    csrf_token: str
    session_id: uuid.UUID


def cookie_secure(settings: Settings, request: Request) -> bool:
    if settings.explorer_cookie_secure is not None:
        return settings.explorer_cookie_secure
    return request.url.scheme == "https"


async def sign_in(
    session: AsyncSession, *, api_key: str, settings: Settings
) -> tuple[str, WebSession]:
    """Check the key (unknown and revoked keys are refused) and open a session for it.

    Returns the session token for the cookie; only its hash is stored.
    """
    principal = await keys.authenticate(session, token=api_key.strip())
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = await web_sessions.add(
        session,
        WebSession(
            token_sha256=_hash(token),
            key_id=principal.key_id,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=now + timedelta(seconds=settings.explorer_session_ttl_s),
        ),
    )
    # Old sessions are forgotten as new ones open, so the table stays small.
    await web_sessions.delete_expired(session, before=now - timedelta(days=1))
    return token, row


async def current(session: AsyncSession, *, request: Request) -> ExplorerSession:
    """The live session behind the request's cookie, or SignInRequired."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired("Sign in with an API key to continue.")
    found = await web_sessions.get_with_key(session, token_sha256=_hash(token))
    if found is None:
        raise SignInRequired("Your session has ended. Sign in again.")
    row, key = found
    if row.ended_at is not None or row.expires_at <= utcnow():
        raise SignInRequired("Your session has ended. Sign in again.")
    if key.revoked_at is not None:
        raise SignInRequired("The API key of this session has been revoked.")
    principal = Principal(
        key_id=key.id,
        name=key.name,
        scope=KeyScope(key.scope),
        organisation_id=key.organisation_id,
        ics_code=key.ics_code,
    )
    return ExplorerSession(principal=principal, csrf_token=row.csrf_token, session_id=row.id)


async def sign_out(session: AsyncSession, *, explorer: ExplorerSession) -> None:
    await web_sessions.end(session, session_id=explorer.session_id, at=utcnow())


def check_csrf(expected: str | None, given: str | None) -> None:
    """Refuse a form whose token is missing or differs (constant-time comparison)."""
    if not expected or not given or not hmac.compare_digest(expected, given):
        raise CsrfRejected(
            "The form has expired or did not come from this site. Reload the page and try again."
        )


def set_session_cookie(
    response: Response, *, token: str, settings: Settings, request: Request
) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.explorer_session_ttl_s,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=cookie_secure(settings, request),
    )


def clear_session_cookie(response: Response, *, settings: Settings, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=cookie_secure(settings, request),
    )


def login_csrf(request: Request) -> str:
    """The pre-sign-in CSRF token: the one the browser holds, or a new one."""
    return request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)


def set_login_csrf_cookie(
    response: Response, *, token: str, settings: Settings, request: Request
) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path="/explorer",
        httponly=True,
        samesite="strict",
        secure=cookie_secure(settings, request),
    )
