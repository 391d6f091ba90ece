"""Health, errors as problem+json, request ids, metrics, CORS and body limits."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from services.api.main import create_app
from shared.logging import JsonFormatter
from tests.helpers import KeyFactory, assert_problem, settings_for


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "queue": "in-process"}}


async def test_readyz_is_503_when_the_database_is_unreachable() -> None:
    settings = settings_for("postgresql://postgres@127.0.0.1:1/unreachable")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.get("/readyz")
            assert (await http.get("/healthz")).status_code == 200
    body = assert_problem(response, 503, "not_ready")
    assert str(body["checks"]).startswith("{'database': 'unreachable")


async def test_readyz_is_200_and_degraded_when_redis_is_unreachable(database_url: str) -> None:
    """Reads and writes work without Redis (new jobs wait in the outbox): a load balancer must
    keep the API in service."""
    app = create_app(settings_for(database_url, redis_url="redis://127.0.0.1:1/0"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["queue"].startswith("degraded: redis unreachable")


async def test_unknown_route_and_wrong_method_are_problems(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/nothing-here"), 404, "not_found")
    assert_problem(await client.put("/healthz"), 405, "method_not_allowed")


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-ID": "portal-req-42"})
    assert echoed.headers["x-request-id"] == "portal-req-42"
    generated = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert generated.headers["x-request-id"] != "bad id with spaces"
    assert len(generated.headers["x-request-id"]) == 32


async def test_500_hides_internals_and_carries_the_request_id(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings_for(database_url))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            with caplog.at_level(logging.ERROR):
                response = await http.get("/boom", headers={"X-Request-ID": "trace-500"})
    body = assert_problem(response, 500, "internal_error")
    assert "secret internal detail" not in response.text
    assert body["request_id"] == "trace-500"
    errors = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert errors, "the 500 must be logged"
    assert '"request_id": "trace-500"' in JsonFormatter().format(errors[0])


async def test_validation_errors_name_the_field(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    admin = await make_key("admin")
    response = await client.post("/v1/keys", json={"name": "", "scope": "root"}, headers=admin)
    body = assert_problem(response, 422, "validation_failed")
    fields = {error["field"] for error in body["errors"]}
    assert fields == {"name", "scope"}


async def test_malformed_json_is_a_problem(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    admin = await make_key("admin")
    response = await client.post(
        "/v1/keys",
        content=b"{not json",
        headers={**admin, "Content-Type": "application/json"},
    )
    assert_problem(response, 422, "validation_failed")


async def test_body_over_the_limit_is_413(
    database_url: str, db: object, make_key: KeyFactory
) -> None:
    app = create_app(settings_for(database_url, max_body_bytes=1024))
    admin = await make_key("admin")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            declared = await http.post("/v1/keys", content=b"x" * 2048, headers=admin)

            async def chunks() -> AsyncIterator[bytes]:
                for _ in range(4):
                    yield b"y" * 512

            streamed = await http.post("/v1/keys", content=chunks(), headers=admin)
    assert_problem(declared, 413, "payload_too_large")
    assert_problem(streamed, 413, "payload_too_large")


async def test_metrics_count_requests(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert 'oneworkforce_http_requests_total{method="GET",route="/healthz",status="200"}' in (
        metrics.text
    )


async def test_cors_allows_configured_origins_only(database_url: str) -> None:
    app: FastAPI = create_app(settings_for(database_url, cors_origins=["https://portal.example"]))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            headers = {"Access-Control-Request-Method": "GET"}
            allowed = await http.options(
                "/v1/keys", headers={"Origin": "https://portal.example", **headers}
            )
            refused = await http.options(
                "/v1/keys", headers={"Origin": "https://evil.example", **headers}
            )
            actual = await http.get("/healthz", headers={"Origin": "https://portal.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://portal.example"
    assert "access-control-allow-origin" not in refused.headers
    # What a portal's script may read from a response.
    exposed = {
        name.strip().lower() for name in actual.headers["access-control-expose-headers"].split(",")
    }
    assert {
        "content-disposition",
        "idempotency-replayed",
        "link",
        "x-total-count",
        "etag",
        "retry-after",
    } <= exposed


async def test_openapi_document_is_served(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert document["info"]["title"] == "OneWorkforce API"
    assert "/v1/keys" in document["paths"]
