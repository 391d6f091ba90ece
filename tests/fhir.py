"""FHIR output checked by a FHIR library: every resource the API serves must parse as FHIR R4.

`fhir.resources` keeps R4B (4.3, the R4 resources with technical corrections) under
`fhir.resources.R4B`; Bundle, CodeSystem, Organization and OrganizationAffiliation are the same
there as in R4 4.0.1."""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import BaseModel


def valid_r4(resource: dict[str, Any]) -> BaseModel:
    """The resource parsed by its FHIR model; a validation error fails the test."""
    kind = str(resource["resourceType"])
    module = importlib.import_module(f"fhir.resources.R4B.{kind.lower()}")
    model: type[BaseModel] = getattr(module, kind)
    return model.model_validate(resource)
