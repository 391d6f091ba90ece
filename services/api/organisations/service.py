"""Organisations: the register of partners in each ICS."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.organisations import errors
from shared.errors import DomainError, InsufficientScope
from shared.models import AreaType, KeyScope, Organisation
from shared.repositories import audit
from shared.repositories import organisations as repo
from shared.repositories import returns as returns_repo
from shared.repositories.base import PageWindow
from shared.schemas.keys import Principal
from shared.schemas.organisations import OrganisationCreate, OrganisationUpdate


def can_manage_organisations(principal: Principal) -> bool:
    """Admin keys manage the organisations they may see (repo.readable_statement)."""
    return principal.has(KeyScope.admin)


async def get_visible(
    session: AsyncSession, *, principal: Principal, organisation_id: uuid.UUID
) -> Organisation:
    """The organisation if this key may see it; otherwise it does not exist for the key."""
    organisation = await repo.get_readable(
        session, principal=principal, organisation_id=organisation_id
    )
    if organisation is None:
        raise errors.OrganisationNotFound("No such organisation.")
    return organisation


async def _home_ics(session: AsyncSession, lad_code: str) -> str:
    area = await repo.get_area(session, code=lad_code)
    if area is None or area.type != AreaType.lad or area.parent_code is None:
        raise errors.UnknownLad(
            f"{lad_code} is not a known local authority district.", field="home_lad_code"
        )
    return area.parent_code


async def _check_unique(
    session: AsyncSession, *, ods_code: str | None, cqc: str | None, exclude: uuid.UUID | None
) -> None:
    taken_errors: tuple[tuple[str, str | None, type[DomainError]], ...] = (
        ("ods_code", ods_code, errors.OdsCodeTaken),
        ("cqc_location_id", cqc, errors.CqcLocationIdTaken),
    )
    for field, value, taken in taken_errors:
        if value is None:
            continue
        existing = await repo.find_by(session, **{field: value})
        if existing is not None and existing.id != exclude:
            raise taken(f"Another organisation already has {field} {value}.", field=field)


async def create(
    session: AsyncSession, data: OrganisationCreate, *, principal: Principal
) -> Organisation:
    """Register an organisation in the ICS of its home LAD."""
    ics_code = await _home_ics(session, data.home_lad_code)
    if not principal.is_global and principal.ics_code != ics_code:
        raise errors.OrganisationOutOfScope(
            "An ICS admin key may only register organisations in its own ICS."
        )
    await _check_unique(session, ods_code=data.ods_code, cqc=data.cqc_location_id, exclude=None)
    organisation = await repo.add(session, Organisation(**data.model_dump(), ics_code=ics_code))
    await audit.record(
        session,
        key_id=principal.key_id,
        actor=principal.actor,
        action="organisation.create",
        resource_type="organisation",
        resource_id=str(organisation.id),
        detail={"name": data.name, "ics_code": ics_code},
    )
    return organisation


async def update(
    session: AsyncSession,
    *,
    principal: Principal,
    organisation_id: uuid.UUID,
    data: OrganisationUpdate,
) -> Organisation:
    organisation = await get_visible(session, principal=principal, organisation_id=organisation_id)
    if not can_manage_organisations(principal):
        raise InsufficientScope("This needs an admin key for the organisation's ICS.")
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    if (
        changes.get("name", "") is None
        or changes.get("kind", "") is None
        or ("sector" in changes and changes["sector"] is None)
        or ("home_lad_code" in changes and changes["home_lad_code"] is None)
    ):
        raise errors.FieldNotNullable("name, kind, sector and home_lad_code cannot be null.")
    if "home_lad_code" in changes:
        ics_code = await _home_ics(session, changes["home_lad_code"])
        if not principal.is_global and principal.ics_code != ics_code:
            raise errors.OrganisationOutOfScope("The new home area is outside this key's ICS.")
        changes["ics_code"] = ics_code
    await _check_unique(
        session,
        ods_code=changes.get("ods_code"),
        cqc=changes.get("cqc_location_id"),
        exclude=organisation.id,
    )
    for name, value in changes.items():
        setattr(organisation, name, value)
    organisation.version += 1
    await session.flush()
    await audit.record(
        session,
        key_id=principal.key_id,
        actor=principal.actor,
        action="organisation.update",
        resource_type="organisation",
        resource_id=str(organisation.id),
        detail={key: str(value) for key, value in changes.items()},
    )
    return organisation


async def delete(
    session: AsyncSession, *, principal: Principal, organisation_id: uuid.UUID
) -> None:
    organisation = await get_visible(session, principal=principal, organisation_id=organisation_id)
    if not can_manage_organisations(principal):
        raise InsufficientScope("This needs an admin key for the organisation's ICS.")
    if await returns_repo.count_returns(session, organisation_id=organisation.id):
        raise errors.OrganisationInUse(
            "The organisation has workforce returns; it cannot be deleted."
        )
    await audit.record(
        session,
        key_id=principal.key_id,
        actor=principal.actor,
        action="organisation.delete",
        resource_type="organisation",
        resource_id=str(organisation.id),
        detail={"name": organisation.name},
    )
    await repo.delete(session, organisation)


async def list_visible(
    session: AsyncSession,
    *,
    principal: Principal,
    kind: str | None,
    sector: str | None,
    ics_code: str | None,
    lad_code: str | None,
    q: str | None,
    page: PageWindow,
) -> tuple[Sequence[Organisation], int]:
    return await repo.list_organisations(
        session,
        principal=principal,
        kind=kind,
        sector=sector,
        ics_code=ics_code,
        lad_code=lad_code,
        q=q,
        page=page,
    )
