"""Explorer sign-in: the key is exchanged for an HttpOnly, SameSite session cookie that
expires; forms need their CSRF token; signing out, expiry and revocation end the session."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.base import utcnow
from shared.db.session import transaction
from shared.models import ApiKey, AuditEvent, WebSession
from tests.api.explorer.helpers import csrf_of, secret_of, sign_in
from tests.factories import ICB_A
from tests.helpers import KeyFactory


async def test_root_redirects_to_the_explorer_and_pages_need_a_session(
    client: httpx.AsyncClient,
) -> None:
    root = await client.get("/")
    assert root.status_code == 307
    assert root.headers["location"] == "/explorer"
    page = await client.get(f"/explorer/areas/{ICB_A}")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/explorer/sign-in?next=%2Fexplorer%2Fareas")
    form = await client.get(page.headers["location"])
    assert form.status_code == 200
    assert 'id="api_key"' in form.text
    assert '<label for="api_key"' in form.text


async def test_sign_in_sets_a_short_lived_httponly_samesite_cookie_without_the_key(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    key = await make_key("read", ics_code=ICB_A, name="lead")
    form = await client.get("/explorer/sign-in")
    response = await client.post(
        "/explorer/sign-in",
        data={"api_key": secret_of(key), "csrf_token": csrf_of(form.text), "next": "/explorer"},
    )
    assert response.status_code == 303
    cookie = next(
        value
        for name, value in response.headers.multi_items()
        if name == "set-cookie" and value.startswith("owf_session=")
    )
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    assert "max-age=3600" in attributes
    token = cookie.split(";")[0].removeprefix("owf_session=")
    assert secret_of(key) not in cookie
    assert token not in secret_of(key)
    async with sessionmaker() as session:
        row = (await session.execute(select(WebSession))).scalar_one()
        # Only the hash of the session token is stored, and the session expires in an hour.
        assert row.token_sha256 != token
        assert timedelta(minutes=59) < row.expires_at - utcnow() <= timedelta(hours=1)
        actions = (await session.execute(select(AuditEvent.action))).scalars().all()
        assert "explorer.sign_in" in actions
    home = await client.get("/explorer")
    assert home.status_code == 303
    assert home.headers["location"] == f"/explorer/areas/{ICB_A}"


async def test_a_wrong_or_revoked_key_is_refused_and_opens_no_session(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    form = await client.get("/explorer/sign-in")
    token = csrf_of(form.text)
    wrong = await client.post(
        "/explorer/sign-in",
        data={"api_key": "owf_00000000_notarealkeynotarealkeynotareal", "csrf_token": token},
    )
    assert wrong.status_code == 401
    assert "There is a problem" in wrong.text
    assert "owf_session" not in wrong.headers.get("set-cookie", "")
    key = await make_key("read", ics_code=ICB_A)
    async with transaction(sessionmaker) as session:
        await session.execute(update(ApiKey).values(revoked_at=utcnow()))
    revoked = await client.post(
        "/explorer/sign-in", data={"api_key": secret_of(key), "csrf_token": token}
    )
    assert revoked.status_code == 401
    assert "revoked" in revoked.text
    async with sessionmaker() as session:
        assert (await session.execute(select(WebSession))).first() is None


async def test_forms_without_their_csrf_token_are_refused(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    key = await make_key("read", ics_code=ICB_A)
    await client.get("/explorer/sign-in")
    # Sign-in: no token, and a token that is not the one the browser holds.
    for data in ({"api_key": secret_of(key)}, {"api_key": secret_of(key), "csrf_token": "x"}):
        refused = await client.post("/explorer/sign-in", data=data)
        assert refused.status_code == 403
        assert "did not come from this site" in refused.text
    async with sessionmaker() as session:
        assert (await session.execute(select(WebSession))).first() is None
    csrf = await sign_in(client, key)
    # Sign-out without the session's token leaves the session open.
    refused = await client.post("/explorer/sign-out", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    assert (await client.get(f"/explorer/areas/{ICB_A}")).status_code == 200
    out = await client.post("/explorer/sign-out", data={"csrf_token": csrf})
    assert out.status_code == 303


async def test_sign_out_expiry_and_revocation_end_the_session(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    key = await make_key("read", ics_code=ICB_A)
    csrf = await sign_in(client, key)
    stolen = client.cookies.get("owf_session")
    out = await client.post("/explorer/sign-out", data={"csrf_token": csrf})
    assert out.status_code == 303
    assert 'owf_session=""' in out.headers["set-cookie"]
    # The old cookie, replayed, no longer works: the session ended on the server.
    client.cookies.set("owf_session", stolen or "")
    page = await client.get(f"/explorer/areas/{ICB_A}")
    assert page.status_code == 303
    assert "/explorer/sign-in" in page.headers["location"]

    client.cookies.clear()
    await sign_in(client, key)
    async with transaction(sessionmaker) as session:
        await session.execute(update(WebSession).values(expires_at=utcnow() - timedelta(1)))
    expired = await client.get(f"/explorer/areas/{ICB_A}")
    assert expired.status_code == 303

    await sign_in(client, key)
    async with transaction(sessionmaker) as session:
        await session.execute(update(ApiKey).values(revoked_at=utcnow()))
    revoked = await client.get(f"/explorer/areas/{ICB_A}")
    assert revoked.status_code == 303
    assert "revoked" in revoked.headers["location"]


async def test_next_never_leaves_the_explorer(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    key = await make_key("read", ics_code=ICB_A)
    for target in ("https://evil.example/", "//evil.example/", "/v1/keys/me"):
        form = await client.get("/explorer/sign-in")
        response = await client.post(
            "/explorer/sign-in",
            data={"api_key": secret_of(key), "csrf_token": csrf_of(form.text), "next": target},
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/explorer"
