"""OpenAPI links: how the id in a created resource's answer feeds the operations on it.

Clients and generators follow them (a created organisation's `id` is the `organisation_id` of
its read, update and returns); stateful fuzzing follows them to reach deep operations with
real ids instead of random ones.
"""

from __future__ import annotations

from typing import Any

# (method, path, status) of the producing operation -> {link name: (method, path, parameters)}
Link = tuple[str, str, dict[str, str]]
LINKS: dict[tuple[str, str, str], dict[str, Link]] = {
    ("post", "/v1/organisations", "201"): {
        "GetOrganisation": ("get", "/v1/organisations/{organisation_id}", {}),
        "UpdateOrganisation": ("patch", "/v1/organisations/{organisation_id}", {}),
        "DeleteOrganisation": ("delete", "/v1/organisations/{organisation_id}", {}),
        "SubmitReturn": ("post", "/v1/organisations/{organisation_id}/returns", {}),
        "ListReturns": ("get", "/v1/organisations/{organisation_id}/returns", {}),
        "ListAgreements": ("get", "/v1/organisations/{organisation_id}/agreements", {}),
    },
    ("post", "/v1/organisations/{organisation_id}/returns", "201"): {
        "GetReturn": ("get", "/v1/returns/{return_id}", {}),
        "DiffReturn": ("get", "/v1/returns/{return_id}/diff", {}),
    },
    ("post", "/v1/agreements", "201"): {
        "GetAgreement": ("get", "/v1/agreements/{agreement_id}", {}),
        "UpdateAgreement": ("patch", "/v1/agreements/{agreement_id}", {}),
        "SignAgreement": ("post", "/v1/agreements/{agreement_id}/sign", {}),
        "ActivateAgreement": ("post", "/v1/agreements/{agreement_id}/activate", {}),
        "SuspendAgreement": ("post", "/v1/agreements/{agreement_id}/suspend", {}),
        "TerminateAgreement": ("post", "/v1/agreements/{agreement_id}/terminate", {}),
        "AgreementAsFhir": ("get", "/v1/agreements/{agreement_id}/fhir", {}),
        "CreateDeployment": ("post", "/v1/agreements/{agreement_id}/deployments", {}),
        "ListDeployments": ("get", "/v1/agreements/{agreement_id}/deployments", {}),
    },
    ("post", "/v1/scenarios", "201"): {
        "GetScenario": ("get", "/v1/scenarios/{name}", {"name": "$response.body#/name"}),
        "UpdateScenario": ("put", "/v1/scenarios/{name}", {"name": "$response.body#/name"}),
        "ScenarioVersions": (
            "get",
            "/v1/scenarios/{name}/versions",
            {"name": "$response.body#/name"},
        ),
    },
    ("post", "/v1/projections", "202"): {
        "GetProjection": ("get", "/v1/projections/{run_id}", {}),
        "ProjectionResults": ("get", "/v1/projections/{run_id}/results", {}),
        "ExplainProjection": ("get", "/v1/projections/{run_id}/explain", {}),
    },
    ("post", "/v1/keys", "201"): {
        "RevokeKey": ("delete", "/v1/keys/{key_id}", {}),
    },
    ("post", "/v1/imports/returns", "202"): {
        "GetImport": ("get", "/v1/imports/{import_id}", {}),
    },
    ("post", "/v1/roles", "201"): {
        "GetRole": ("get", "/v1/roles/{code}", {"code": "$response.body#/code"}),
        "UpdateRole": ("patch", "/v1/roles/{code}", {"code": "$response.body#/code"}),
        "DeleteRole": ("delete", "/v1/roles/{code}", {"code": "$response.body#/code"}),
    },
}


def _pointer(path: str, method: str) -> str:
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


def add_links(document: dict[str, Any]) -> dict[str, Any]:
    """Add the links whose operations both exist; an id parameter defaults to the body's id."""
    paths = document.get("paths", {})
    for (method, path, status), links in LINKS.items():
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            continue
        found: dict[str, Any] = {}
        for name, (target_method, target_path, parameters) in links.items():
            target = paths.get(target_path, {}).get(target_method)
            if target is None:
                continue
            names = [p["name"] for p in target.get("parameters", []) if p.get("in") == "path"]
            found[name] = {
                "operationRef": _pointer(target_path, target_method),
                "parameters": {
                    param: parameters.get(param, "$response.body#/id") for param in names
                },
            }
        if found:
            response.setdefault("links", {}).update(found)
    return document
