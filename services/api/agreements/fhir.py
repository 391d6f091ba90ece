"""An agreement as FHIR R4: a Bundle with an Organization for each party and one
OrganizationAffiliation for each pair of parties.

The parties carry their ODS code and, for care providers, their CQC location id as identifiers;
the roles shared are codes of the role CodeSystem the API serves (`GET /v1/fhir/CodeSystem/roles`,
whose `url` is their system). The bytes depend only on the stored agreement, its parties and
roles and its state on the day, never on the time of the read, so the ETag (a hash of the
bytes) is strong.

https://hl7.org/fhir/R4/organizationaffiliation.html
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from services.api.roles.service import FHIR_CANONICAL as ROLE_SYSTEM
from shared.models import Agreement, AgreementParty, Organisation, Role
from shared.schemas.agreements import AgreementState

FHIR_JSON = "application/fhir+json"

ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
# The CQC publishes each location at https://www.cqc.org.uk/location/{location id}.
CQC_LOCATION_SYSTEM = "https://www.cqc.org.uk/location"
ORGANISATION_SYSTEM = "urn:oneworkforce:organisation"
AGREEMENT_SYSTEM = "urn:oneworkforce:agreement"
MODE_SYSTEM = "urn:oneworkforce:CodeSystem:agreement-mode"

_MODE_DISPLAY = {
    "crisis": "Crisis staff sharing",
    "business_as_usual": "Business-as-usual staff sharing",
    "both": "Crisis and business-as-usual staff sharing",
}

# A fixed namespace so that a pair's resource id is the same on every read.
_AFFILIATION_NAMESPACE = uuid.UUID("6f1d9a36-2f0e-4c59-9f7e-2b8d3f3c5a11")


def _full_url(organisation: Organisation) -> str:
    return f"urn:uuid:{organisation.id}"


def identifiers(organisation: Organisation) -> list[dict[str, str]]:
    """ODS code, CQC location id (care providers) and the API's own id, in that order."""
    found = []
    if organisation.ods_code:
        found.append({"system": ODS_SYSTEM, "value": organisation.ods_code})
    if organisation.cqc_location_id:
        found.append({"system": CQC_LOCATION_SYSTEM, "value": organisation.cqc_location_id})
    found.append({"system": ORGANISATION_SYSTEM, "value": str(organisation.id)})
    return found


def _organisation(organisation: Organisation) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": str(organisation.id),
        "identifier": identifiers(organisation),
        "active": True,
        "name": organisation.name,
    }


def _organisation_reference(party: AgreementParty) -> dict[str, Any]:
    """A reference to the party's Organization in the Bundle, with its best identifier."""
    organisation = party.organisation
    return {
        "reference": _full_url(organisation),
        "identifier": identifiers(organisation)[0],
        "display": organisation.name,
    }


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
    agreement: Agreement, *, state: AgreementState, roles: dict[str, Role]
) -> dict[str, Any]:
    """A `collection` Bundle: the parties' Organizations, then the affiliations; `active` is
    true only while the agreement is in force."""
    active = state == AgreementState.active
    organisations = [
        {"fullUrl": _full_url(party.organisation), "resource": _organisation(party.organisation)}
        for party in agreement.parties
    ]
    affiliations = [
        _affiliation(agreement, first, second, active=active, roles=roles)
        for first, second in itertools.combinations(agreement.parties, 2)
    ]
    return {
        "resourceType": "Bundle",
        "id": str(agreement.id),
        "meta": {"lastUpdated": agreement.updated_at.isoformat()},
        "type": "collection",
        # When the agreement last changed: the same on every read of the same version.
        "timestamp": agreement.updated_at.isoformat(),
        "identifier": {"system": AGREEMENT_SYSTEM, "value": str(agreement.id)},
        "entry": [
            *organisations,
            *(
                {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}
                for resource in affiliations
            ),
        ],
    }
