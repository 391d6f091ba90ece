"""The OpenAPI document is one client generators accept, and its promises hold."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from services.api.examples import EXAMPLES
from services.api.main import create_app
from shared.errors import DomainError
from shared.models.projection import RunStatus
from shared.models.role import RoleSector
from shared.vocab.measures import MEASURES
from tests.contract import DOCUMENT, undeclared
from tests.helpers import settings_for

METHODS = {"get", "put", "post", "patch", "delete"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DOCUMENT.read_text())
    return loaded


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"external or relative reference {ref}"
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), f"unresolved $ref {ref}"
        assert part in node, f"unresolved $ref {ref}"
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    refs = _refs(document)
    assert refs
    for ref in refs:
        _resolve(document, ref)
    assert "$defs" not in json.dumps(document)


def test_bearer_security_is_declared_on_every_versioned_operation(
    document: dict[str, Any],
) -> None:
    scheme = document["components"]["securitySchemes"]["HTTPBearer"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    for path, method, operation in _operations(document):
        if path.startswith("/v1/"):
            assert operation.get("security") == [{"HTTPBearer": []}], (method, path)
            assert "401" in operation["responses"], (method, path)


def test_operation_ids_are_short_unique_and_named(document: dict[str, Any]) -> None:
    ids = [operation.get("operationId") for _, _, operation in _operations(document)]
    assert all(isinstance(i, str) and 0 < len(i) <= 40 for i in ids), ids
    assert len(ids) == len(set(ids))
    assert {"submit_return", "list_roles", "get_results", "latest_projection"} <= set(ids)


def test_every_error_is_a_problem(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in document["components"]["schemas"]
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "code"} <= set(problem["required"])
    for path, method, operation in _operations(document):
        assert operation.get("summary"), (method, path)
        assert operation.get("tags"), (method, path)
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                assert response["content"] == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }, (method, path, status)
                assert "Codes: [`" in response["description"], (method, path, status)


def test_declared_codes_name_real_errors(document: dict[str, Any]) -> None:
    for _, _, operation in _operations(document):
        for status, response in operation["responses"].items():
            for code in response["description"].split("[`")[1:]:
                name = code.split("`")[0]
                assert DomainError.registry[name].status == int(status), (name, status)


def test_an_undeclared_status_is_reported(document: dict[str, Any]) -> None:
    seen = {("get", "/v1/roles/{code}", 404), ("get", "/v1/roles/{code}", 418)}
    assert undeclared(document, seen) == [
        "GET /v1/roles/{code} answered 418, which is not declared"
    ]


async def test_every_code_has_a_page_and_docs_work_offline() -> None:
    # No Redis, whatever REDIS_URL says: the pages and docs need nothing outside the process.
    # Served inside its lifespan, so whatever the app opens is closed before the next test.
    app = create_app(settings_for("sqlite+aiosqlite:///:memory:"))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        listed = (await client.get("/problems")).json()
        assert {doc["code"] for doc in listed} == set(DomainError.registry)
        page = await client.get("/problems/cap_exceeded")
        assert page.status_code == 200
        assert page.json()["status"] == 409
        assert page.json()["fix"]
        html = await client.get("/problems/cap_exceeded", headers={"Accept": "text/html"})
        assert html.headers["content-type"].startswith("text/html")
        assert "cap_exceeded" in html.text
        missing = await client.get("/problems/no_such_code")
        assert missing.status_code == 404
        assert missing.json()["type"] == "/problems/not_found"
        for docs in ("/docs", "/redoc"):
            body = (await client.get(docs)).text
            assert "cdn" not in body.lower()
            assert "googleapis" not in body
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
            response = await client.get(f"/docs/assets/{asset}")
            assert response.status_code == 200
            assert len(response.content) > 10_000
        live = (await client.get("/openapi.json")).json()
        assert live == json.loads(DOCUMENT.read_text())


def _is_numeric(member: dict[str, Any]) -> bool:
    if member.get("type") in ("integer", "number"):
        return True
    return any(_is_numeric(branch) for branch in member.get("anyOf", []))


def test_every_number_is_described_with_its_unit(document: dict[str, Any]) -> None:
    bare = [
        f"{name}.{member_name}"
        for name, schema in document["components"]["schemas"].items()
        for member_name, member in schema.get("properties", {}).items()
        if _is_numeric(member) and not member.get("description")
    ]
    assert bare == []
    line = document["components"]["schemas"]["ReturnLineIn"]["properties"]
    assert "(persons)" in line["headcount"]["description"]
    assert "(FTE)" in line["fte_in_post"]["description"]
    result = document["components"]["schemas"]["ProjectionResultRead"]["properties"]
    for percentile in ("principal", "p10", "p50", "p90"):
        assert "FTE" in result[percentile]["description"], percentile


def _example_of(document: dict[str, Any], media: dict[str, Any]) -> Any:
    if "example" in media or "examples" in media:
        return media.get("example", media.get("examples"))
    schema = media.get("schema", {})
    for branch in [schema, *schema.get("anyOf", [])]:
        ref = branch.get("$ref")
        if ref is not None and "example" in _resolve(document, ref):
            return _resolve(document, ref)["example"]
    return None


def test_every_request_body_and_main_answer_has_an_example(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        body = operation.get("requestBody")
        if body is not None:
            examples = [_example_of(document, media) for media in body["content"].values()]
            assert any(example is not None for example in examples), (method, path)
    schemas = document["components"]["schemas"]
    for name in ("ProjectionResultRead", "ProjectionRunRead", "AreaWorkforce", "Problem"):
        assert "example" in schemas[name], name


def test_examples_are_what_the_api_accepts_and_answers() -> None:
    for model, example in EXAMPLES.items():
        parsed = model.model_validate(example, by_name=True)
        answered = parsed.model_dump(mode="json", by_alias=True)
        assert set(example) <= set(answered), model.__name__


def test_closed_vocabularies_are_enums(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]

    def values(schema: str, member: str) -> set[str]:
        node = schemas[schema]["properties"][member]
        for branch in [node, *node.get("anyOf", [])]:
            if "$ref" in branch:
                branch = _resolve(document, branch["$ref"])
            if "enum" in branch:
                return set(branch["enum"])
        raise AssertionError(f"{schema}.{member} is not an enum")

    assert values("ProjectionResultRead", "measure") == set(MEASURES)
    assert values("WorkforceByRole", "sector") == {sector.value for sector in RoleSector}
    assert values("ProjectionRunRead", "status") == {status.value for status in RunStatus}
    assert "succeeded" in values("ImportRead", "status")
    assert "care_provider" in values("OrganisationRead", "kind")
    assert "read" in values("ApiKeyRead", "scope")
    assert "population_65_plus" in values("RoleCreate", "default_demand_driver")
    assert values("FieldProblem", "in") >= {"body", "query", "path", "header"}
    events = schemas["WebhookCreate"]["properties"]["event_types"]["items"]["enum"]
    assert "projection.succeeded" in events
