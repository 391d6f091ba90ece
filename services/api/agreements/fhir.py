"""An agreement as FHIR R4: a Bundle with one OrganizationAffiliation for each pair of parties.

https://hl7.org/fhir/R4/organizationaffiliation.html
"""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime
from typing import Any

from shared.models import Agreement, AgreementParty, Role
from shared.schemas.agreements import AgreementState

FHIR_JSON = "application/fhir+json"

ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
ORGANISATION_SYSTEM = "urn:oneworkforce:organisation"
AGREEMENT_SYSTEM = "urn:oneworkforce:agreement"
MODE_SYSTEM = "urn:oneworkforce:CodeSystem:agreement-mode"
ROLE_SYSTEM = "urn:oneworkforce:CodeSystem:role"

_MODE_DISPLAY = {
    "crisis": "Crisis staff sharing",
    "business_as_usual": "Business-as-usual staff sharing",
    "both": "Crisis and business-as-usual staff sharing",
}

# A fixed namespace so that a pair's resource id is the same on every read.
_AFFILIATION_NAMESPACE = uuid.UUID("6f1d9a36-2f0e-4c59-9f7e-2b8d3f3c5a11")


def _organisation_reference(party: AgreementParty) -> dict[str, Any]:
    organisation = party.organisation
    reference: dict[str, Any] = {
        "reference": f"Organization/{organisation.id}",
        "display": organisation.name,
    }
    if organisation.ods_code:
        reference["identifier"] = {"system": ODS_SYSTEM, "value": organisation.ods_code}
    else:
        reference["identifier"] = {"system": ORGANISATION_SYSTEM, "value": str(organisation.id)}
    return reference


def _affiliation(
    agreement: Agreement,
    first: AgreementParty,
    second: AgreementParty,
    *,
    active: bool,
    roles: dict[str, Role],
) -> dict[str, Any]:
    pair = {first.organisation_id, second.organisation_id}
    role_codes = sorted({e.role_code for e in agreement.scope if e.lending_organisation_id in pair})
    resource_id = uuid.uuid5(
        _AFFILIATION_NAMESPACE, f"{agreement.id}:{first.organisation_id}:{second.organisation_id}"
    )
    return {
        "resourceType": "OrganizationAffiliation",
        "id": str(resource_id),
        "meta": {"lastUpdated": agreement.updated_at.isoformat()},
        "identifier": [{"system": AGREEMENT_SYSTEM, "value": str(agreement.id)}],
        "active": active,
        "period": {
            "start": agreement.start_date.isoformat(),
            "end": agreement.end_date.isoformat(),
        },
        "organization": _organisation_reference(first),
        "participatingOrganization": _organisation_reference(second),
        "code": [
            {
                "coding": [
                    {
                        "system": MODE_SYSTEM,
                        "code": str(agreement.mode),
                        "display": _MODE_DISPLAY[str(agreement.mode)],
                    }
                ],
                "text": agreement.title,
            }
        ],
        "specialty": [
            {
                "coding": [
                    {
                        "system": ROLE_SYSTEM,
                        "code": code,
                        **({"display": roles[code].name} if code in roles else {}),
                    }
                ]
            }
            for code in role_codes
        ],
    }


def bundle(
    agreement: Agreement, *, state: AgreementState, roles: dict[str, Role], now: datetime
) -> dict[str, Any]:
    """A `collection` Bundle; `active` is true only while the agreement is in force."""
    active = state == AgreementState.active
    resources = [
        _affiliation(agreement, first, second, active=active, roles=roles)
        for first, second in itertools.combinations(agreement.parties, 2)
    ]
    return {
        "resourceType": "Bundle",
        "id": str(agreement.id),
        "type": "collection",
        "timestamp": now.isoformat(),
        "identifier": {"system": AGREEMENT_SYSTEM, "value": str(agreement.id)},
        "entry": [
            {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}
            for resource in resources
        ],
    }
