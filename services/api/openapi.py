"""The OpenAPI document: FastAPI's, completed so client generators take it as it is.

- every error an operation can answer is declared, as `application/problem+json` with the
  `Problem` schema, and its description lists the stable codes (each linking to its page);
  routers declare the domain error classes they raise with `raises(...)`, and the errors
  every authenticated operation can meet (401, 403 scope, 422 malformed or control
  characters, 413 body, 429 rate limit, 503 database unavailable) are added
  here once;
- the bearer security scheme, so Swagger UI's Authorize button works;
- operation ids are the handlers' names (`submit_return`, `list_roles`);
- schemas nested with `$defs` are lifted into `components`, so no reference dangles;
- an optional member has no `default: null` (generators would make it required).

`python -m services.api.openapi` prints it; `make openapi` commits it as docs/openapi.json.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel

from services.api import glossary
from services.api.errors import PROBLEM_JSON, problem_type
from services.api.examples import EXAMPLES
from services.api.keys.errors import KeyRevoked, MissingCredentials
from shared.errors import (
    TITLES,
    ControlCharacter,
    DatabaseUnavailable,
    DomainError,
    InsufficientScope,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    ValidationFailed,
)
from shared.schemas.problem import Problem

SECURITY_SCHEME = "HTTPBearer"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# Carries the declared codes from `raises()` to the document builder; never published.
_CODES = "x-oneworkforce-codes"
_SCHEMA_MODELS: dict[str, type[BaseModel]] = {}
_AUTH_ERRORS: tuple[type[DomainError], ...] = (MissingCredentials, Unauthorized, KeyRevoked)


def raises(*errors: type[DomainError]) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of an operation that can raise these domain errors."""
    responses: dict[int | str, dict[str, Any]] = {}
    for error in errors:
        entry = responses.setdefault(
            error.status,
            {
                "description": TITLES[error.status],
                "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}},
                _CODES: [],
            },
        )
        if error.code not in entry[_CODES]:
            entry[_CODES].append(error.code)
    return responses


def schema_ref(model: type[BaseModel]) -> dict[str, str]:
    """A reference to `model` in components, for hand-written request bodies."""
    _SCHEMA_MODELS[model.__name__] = model
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def operation_id(route: APIRoute) -> str:
    return route.name


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in {"get", "put", "post", "patch", "delete", "head", "options"}:
                yield path, method, operation


def _api_routes(routes: Iterable[Any], prefix: str) -> Iterator[tuple[str, APIRoute]]:
    """Every API route with its full path, through included routers."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path_format, route
        included = getattr(route, "original_router", None)
        if included is not None:
            context = getattr(route, "include_context", None)
            yield from _api_routes(included.routes, prefix + getattr(context, "prefix", ""))


def _depends_on_scope(route: APIRoute) -> bool:
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        call = dependency.call
        if call is not None and getattr(call, "__qualname__", "").startswith("require."):
            return True
        pending.extend(dependency.dependencies)
    return False


def _codes_description(status: int, codes: Iterable[str]) -> str:
    listed = ", ".join(f"[`{code}`]({problem_type(code)})" for code in codes)
    return f"{TITLES[status]}. Codes: {listed}." if listed else f"{TITLES[status]}."


def _add(operation: dict[str, Any], *errors: type[DomainError]) -> None:
    responses = operation.setdefault("responses", {})
    for status, entry in raises(*errors).items():
        current = responses.setdefault(str(status), entry)
        if current is not entry:
            codes = current.setdefault(_CODES, [])
            codes.extend(code for code in entry[_CODES] if code not in codes)


def _finish_errors(operation: dict[str, Any]) -> None:
    for status, response in operation.get("responses", {}).items():
        if not status.isdigit() or int(status) < 400:
            continue
        codes = response.pop(_CODES, [])
        response["description"] = _codes_description(int(status), codes)
        response["content"] = {PROBLEM_JSON: {"schema": PROBLEM_REF}}


def _lift_defs(node: Any, schemas: dict[str, Any]) -> Any:
    """Move nested `$defs` into components and point their references there."""
    if isinstance(node, dict):
        for name, schema in node.pop("$defs", {}).items():
            schemas.setdefault(name, _lift_defs(schema, schemas))
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            node["$ref"] = "#/components/schemas/" + ref.removeprefix("#/$defs/")
        for key, value in list(node.items()):
            node[key] = _lift_defs(value, schemas)
    elif isinstance(node, list):
        return [_lift_defs(item, schemas) for item in node]
    return node


def _model_schemas(models: Iterable[type[BaseModel]]) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, nested in schema.pop("$defs", {}).items():
            schemas.setdefault(name, nested)
        schemas[model.__name__] = schema
    return schemas


def build(app: FastAPI) -> dict[str, Any]:
    """The complete document for `app`."""
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
        servers=app.servers,
    )
    routes = {
        (path, method.lower()): route
        for path, route in _api_routes(app.routes, "")
        if route.include_in_schema
        for method in route.methods or ()
    }
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas.update(_model_schemas([Problem, *_SCHEMA_MODELS.values()]))
    components["securitySchemes"] = {
        SECURITY_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key: `Authorization: Bearer owf_...` "
            "(`oneworkforce keys create` prints one).",
        }
    }
    for path, method, operation in _operations(document):
        route = routes.get((path, method))
        if path.startswith("/v1/"):
            operation["security"] = [{SECURITY_SCHEME: []}]
            _add(operation, *_AUTH_ERRORS, RateLimited, DatabaseUnavailable)
            if route is not None and _depends_on_scope(route):
                _add(operation, InsufficientScope)
        if operation.get("parameters") or operation.get("requestBody"):
            _add(operation, ValidationFailed, ControlCharacter)
        if operation.get("requestBody"):
            _add(operation, PayloadTooLarge)
        _finish_errors(operation)
        operation["responses"] = dict(
            sorted(operation["responses"].items(), key=lambda item: item[0])
        )
    _lift_defs(document, schemas)
    _drop_null_defaults(schemas)
    _apply_glossary(schemas)
    for model, example in EXAMPLES.items():
        if model.__name__ in schemas:
            schemas[model.__name__].setdefault("example", example)
    return document


def _is_numeric(member: dict[str, Any]) -> bool:
    if member.get("type") in ("integer", "number"):
        return True
    return any(_is_numeric(branch) for branch in member.get("anyOf", []))


def _apply_glossary(schemas: dict[str, Any]) -> None:
    """Descriptions with units for bare numbers, and enums for closed vocabularies."""
    for name, schema in schemas.items():
        for member_name, member in schema.get("properties", {}).items():
            if not isinstance(member, dict):
                continue
            if _is_numeric(member) and not member.get("description"):
                described = [
                    b["description"] for b in member.get("anyOf", []) if "description" in b
                ]
                text = described[0] if described else glossary.DESCRIPTIONS.get(member_name)
                if text:
                    member["description"] = text
            values = glossary.ENUMS.get((name, member_name))
            if values:
                for branch in [member, *member.get("anyOf", [])]:
                    if branch.get("type") == "string":
                        branch["enum"] = list(values)


def _drop_null_defaults(schemas: dict[str, Any]) -> None:
    """An optional member's `default: null` says no more than leaving it out of `required`, and
    generators (openapi-typescript) would make the member required."""
    for schema in schemas.values():
        for member in schema.get("properties", {}).values():
            if isinstance(member, dict) and "default" in member and member["default"] is None:
                del member["default"]


def install(app: FastAPI) -> None:
    """Serve the completed document at /openapi.json (built once)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document() -> str:
    from services.api.main import create_app
    from shared.config import Settings

    app = create_app(Settings(_env_file=None))
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(document())


NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: If-None-Match names the current ETag."}
}
