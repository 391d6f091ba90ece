"""The role catalogue: one national list of roles shared by every ICS and partner.

Rules:
- Any key may read the catalogue; it is the common language between partners, so it is not
  bound to an ICS or organisation.
- Only global admin keys change it (an ICS-bound admin gets 403 `catalogue_admin_only`), seeded
  roles included: a role renamed or re-mapped in one ICS would change it for every ICS.
- A role's `code` never changes; a role still referenced by another table cannot be deleted.
- The seed inserts the shipped roles that are missing and leaves existing rows alone, so an
  admin's edits survive a re-seed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.errors import EtagMismatch
from services.api.roles import errors
from services.domain.projections import runs as projection_runs
from shared.errors import InsufficientScope
from shared.models import KeyScope, Role
from shared.repositories import audit
from shared.repositories import roles as roles_repo
from shared.repositories.base import PageWindow
from shared.repositories.roles import CatalogueState
from shared.schemas.keys import Principal
from shared.schemas.roles import Role as RoleRead
from shared.schemas.roles import RoleCreate, RoleUpdate, SeedReport

CATALOGUE_RESOURCE = "roles.json"
RESOURCE_TYPE = "role"


def ensure_can_manage_catalogue(principal: Principal) -> None:
    """Only global admin keys write the national catalogue."""
    if not principal.has(KeyScope.admin):
        raise InsufficientScope(f"This needs a key with the '{KeyScope.admin}' scope.")
    if not principal.is_global:
        raise errors.CatalogueAdminOnly(
            "The role catalogue is shared by every ICS; only a global admin key may change it."
        )


def _not_found(code: str) -> errors.RoleNotFound:
    return errors.RoleNotFound(f"No role with code '{code}'.")


def _stale() -> EtagMismatch:
    return EtagMismatch("The role changed since you read it; read it again and retry.")


def _changed_concurrently(code: str) -> errors.RoleChangedConcurrently:
    return errors.RoleChangedConcurrently(
        f"The role '{code}' was changed by another request at the same time; retry."
    )


async def get_role(session: AsyncSession, *, code: str, for_update: bool = False) -> Role:
    """One role by code, or 404 `role_not_found`."""
    role = await roles_repo.get(session, code=code, for_update=for_update)
    if role is None:
        raise _not_found(code)
    return role


async def list_roles(
    session: AsyncSession,
    *,
    sector: str | None,
    staff_group: str | None,
    is_new_role: bool | None,
    registration_body: str | None,
    default_demand_driver: str | None,
    q: str | None,
    page: PageWindow,
) -> tuple[Sequence[Role], int]:
    """A filtered page of the catalogue and the number of roles that match."""
    return await roles_repo.list_roles(
        session,
        sector=sector,
        staff_group=staff_group,
        is_new_role=is_new_role,
        registration_body=registration_body,
        default_demand_driver=default_demand_driver,
        q=q.strip() if q else None,
        page=page,
    )


async def catalogue_state(session: AsyncSession) -> CatalogueState:
    """The catalogue's fingerprint inputs, from one aggregate query."""
    return await roles_repo.catalogue_state(session)


def catalogue_version(state: CatalogueState) -> str:
    """A short version string that changes whenever any role is added, changed or deleted."""
    changed = state.last_changed_at.isoformat() if state.last_changed_at else ""
    raw = f"{state.count}:{state.version_sum}:{changed}"
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def _snapshot(role: Role) -> dict[str, Any]:
    return RoleRead.model_validate(role).model_dump(
        mode="json", exclude={"created_at", "updated_at"}
    )


async def create_role(session: AsyncSession, data: RoleCreate, *, principal: Principal) -> Role:
    """Add a role to the catalogue; a code already in use is 409 `role_code_taken`."""
    ensure_can_manage_catalogue(principal)
    taken = errors.RoleCodeTaken(f"The role code '{data.code}' is already in use.")
    if await roles_repo.get(session, code=data.code) is not None:
        raise taken
    try:
        role = await roles_repo.add(session, Role(**data.model_dump(mode="json"), is_seeded=False))
    except IntegrityError as exc:
        # Another request created the same code between the check and the insert.
        raise taken from exc
    await audit.record(
        session,
        key_id=principal.key_id,
        actor=principal.actor,
        action="role.create",
        resource_type=RESOURCE_TYPE,
        resource_id=role.code,
        detail=_snapshot(role),
    )
    return role


async def update_role(
    session: AsyncSession,
    *,
    code: str,
    data: RoleUpdate,
    principal: Principal,
    expected_version: int | None = None,
) -> Role:
    """Change the fields sent and bump the version; a stale expected version is 412."""
    ensure_can_manage_catalogue(principal)
    role = await get_role(session, code=code, for_update=True)
    if expected_version is not None and role.version != expected_version:
        raise _stale()
    changed = {
        field: value for field, value in data.changes().items() if getattr(role, field) != value
    }
    if not changed:
        return role
    before = {field: getattr(role, field) for field in changed}
    if not await roles_repo.update_fields(
        session, code=code, changes=changed, expected_version=role.version
    ):
        # Only reachable where row locks do not exist (SQLite): a writer got in between.
        raise _stale() if expected_version is not None else _changed_concurrently(code)
    await session.refresh(role)
    await audit.record(
        session,
        key_id=principal.key_id,
        actor=principal.actor,
        action="role.update",
        resource_type=RESOURCE_TYPE,
        resource_id=role.code,
        detail={
            "version": role.version,
            "changed": {
                field: {"from": before[field], "to": value} for field, value in changed.items()
            },
        },
    )
    if "default_demand_driver" in changed:
        await projection_runs.role_driver_changed(session, role_code=role.code)
    return role


def _in_use(code: str, usage: dict[str, int]) -> errors.RoleInUse:
    where = ", ".join(f"{table} ({count})" for table, count in usage.items()) or "another table"
    return errors.RoleInUse(
        f"The role '{code}' is still used by {where}; remove those references first.",
        usage=usage,
    )


async def delete_role(
    session: AsyncSession,
    *,
    code: str,
    principal: Principal,
    expected_version: int | None = None,
) -> None:
    """Remove a role that nothing refers to; one still in use is 409 `role_in_use`."""
    ensure_can_manage_catalogue(principal)
    role = await get_role(session, code=code, for_update=True)
    if expected_version is not None and role.version != expected_version:
        raise _stale()
    usage = await roles_repo.role_usage(session, code)
    if usage:
        raise _in_use(code, usage)
    snapshot = _snapshot(role)
    try:
        await roles_repo.delete_role(session, code=code)
    except IntegrityError as exc:
        # A reference was added after the usage check; the foreign key has the last word.
        raise _in_use(code, {}) from exc
    session.expunge(role)
    await audit.record(
        session,
        key_id=principal.key_id,
        actor=principal.actor,
        action="role.delete",
        resource_type=RESOURCE_TYPE,
        resource_id=code,
        detail=snapshot,
    )


def load_seed_catalogue() -> list[RoleCreate]:
    """The roles shipped in shared/reference_data/roles.json, validated like an API create."""
    text = resources.files("shared.reference_data").joinpath(CATALOGUE_RESOURCE).read_text("utf-8")
    document = json.loads(text)
    return [RoleCreate.model_validate(entry) for entry in document["roles"]]


async def seed_roles(session: AsyncSession, *, actor: str = "cli") -> SeedReport:
    """Insert the shipped roles that are missing; existing rows, edited or not, stay as they are."""
    catalogue = load_seed_catalogue()
    codes = [role.code for role in catalogue]
    present = await roles_repo.existing_codes(session, codes=codes)
    missing = [
        {**role.model_dump(mode="json"), "is_seeded": True}
        for role in catalogue
        if role.code not in present
    ]
    inserted = await roles_repo.insert_missing(session, rows=missing)
    if inserted:
        await audit.record(
            session,
            key_id=None,
            actor=actor,
            action="role.seed",
            resource_type="role_catalogue",
            resource_id="seed",
            detail={"inserted": inserted},
        )
    return SeedReport(
        in_catalogue_file=len(catalogue),
        inserted=len(inserted),
        already_present=len(catalogue) - len(inserted),
        inserted_codes=inserted,
    )


# FHIR R4 CodeSystem for integrations. The canonical uses the reserved .example domain: it names
# the code system and is not meant to resolve; the API serves the resource itself.
FHIR_CANONICAL = "https://oneworkforce.nhs.example/fhir/CodeSystem/roles"
FHIR_DESIGNATION_USE = "https://oneworkforce.nhs.example/fhir/CodeSystem/role-designation-use"
SNOMED_CT = "http://snomed.info/sct"

_FHIR_PROPERTIES: list[tuple[str, str, str]] = [
    ("sector", "code", "Sector the role works in"),
    ("staff-group", "string", "The catalogue's cross-sector staff group"),
    ("is-new-role", "boolean", "A role type created to redesign the workforce"),
    ("registration-body", "code", "Professional regulator (NMC, HCPC, GMC, SWE, GPhC or none)"),
    ("career-framework-level", "integer", "Skills for Health career framework level (1-9)"),
    ("default-demand-driver", "code", "Population measure the role's demand grows with"),
    ("pay-band", "string", "Typical pay band"),
    ("asc-wds-job-role", "string", "Skills for Care ASC-WDS main job role"),
    ("nhs-staff-group", "string", "NHS Digital HCHS staff group"),
    ("snomed-ct-occupation", "Coding", "SNOMED CT occupation concept"),
]


def _fhir_concept(role: Role) -> dict[str, Any]:
    concept: dict[str, Any] = {"code": role.code, "display": role.name}
    if role.description:
        concept["definition"] = role.description
    designations = []
    for use, display, value in (
        ("asc-wds-job-role", "ASC-WDS main job role", role.asc_wds_job_role),
        ("nhs-staff-group", "NHS staff group", role.nhs_staff_group),
    ):
        if value:
            designations.append(
                {
                    "use": {"system": FHIR_DESIGNATION_USE, "code": use, "display": display},
                    "value": value,
                }
            )
    if designations:
        concept["designation"] = designations
    properties: list[dict[str, Any]] = [
        {"code": "sector", "valueCode": str(role.sector)},
        {"code": "staff-group", "valueString": role.staff_group},
        {"code": "is-new-role", "valueBoolean": role.is_new_role},
        {"code": "registration-body", "valueCode": str(role.registration_body)},
        {"code": "default-demand-driver", "valueCode": str(role.default_demand_driver)},
    ]
    if role.career_framework_level is not None:
        properties.append(
            {"code": "career-framework-level", "valueInteger": role.career_framework_level}
        )
    if role.pay_band:
        properties.append({"code": "pay-band", "valueString": role.pay_band})
    if role.asc_wds_job_role:
        properties.append({"code": "asc-wds-job-role", "valueString": role.asc_wds_job_role})
    if role.nhs_staff_group:
        properties.append({"code": "nhs-staff-group", "valueString": role.nhs_staff_group})
    if role.snomed_ct_occupation:
        properties.append(
            {
                "code": "snomed-ct-occupation",
                "valueCoding": {"system": SNOMED_CT, "code": role.snomed_ct_occupation},
            }
        )
    concept["property"] = properties
    return concept


async def fhir_code_system(session: AsyncSession, *, state: CatalogueState) -> dict[str, Any]:
    """Every role as a FHIR R4 CodeSystem resource (content complete)."""
    roles = await roles_repo.all_roles(session)
    resource: dict[str, Any] = {
        "resourceType": "CodeSystem",
        "id": "roles",
        "url": FHIR_CANONICAL,
        "version": catalogue_version(state),
        "name": "OneWorkforceRoles",
        "title": "OneWorkforce role catalogue",
        "status": "active",
        "experimental": False,
        "publisher": "OneWorkforce",
        "description": (
            "Roles across NHS, adult social care, primary care and integration services, with "
            "their sector, staff group, regulator, career framework level, demand driver and "
            "mappings to ASC-WDS job roles, NHS staff groups and SNOMED CT occupations."
        ),
        "caseSensitive": True,
        "content": "complete",
        "count": len(roles),
        "property": [
            {"code": code, "uri": f"{FHIR_CANONICAL}#{code}", "description": text, "type": kind}
            for code, kind, text in _FHIR_PROPERTIES
        ],
        "concept": [_fhir_concept(role) for role in roles],
    }
    if state.last_changed_at is not None:
        resource["date"] = state.last_changed_at.isoformat()
    return resource
