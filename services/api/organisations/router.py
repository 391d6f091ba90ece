from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from services.api.deps import AdminKey, ReadKey, SessionDep
from services.api.http import PageDep, etag_of, not_modified
from services.api.openapi import NOT_MODIFIED, raises
from services.api.organisations import service
from services.api.organisations.errors import (
    CqcLocationIdTaken,
    FieldNotNullable,
    OdsCodeTaken,
    OrganisationInUse,
    OrganisationNotFound,
    OrganisationOutOfScope,
    UnknownLad,
)
from shared.errors import InsufficientScope
from shared.models import OrganisationKind, OrganisationSector
from shared.schemas.common import Page
from shared.schemas.organisations import OrganisationCreate, OrganisationRead, OrganisationUpdate

router = APIRouter(prefix="/v1/organisations", tags=["organisations"])


def _etag(organisation: OrganisationRead) -> str:
    return etag_of("organisation", organisation.id, organisation.version)


@router.get("", response_model=Page[OrganisationRead], summary="List organisations")
async def list_organisations(
    session: SessionDep,
    principal: ReadKey,
    page: PageDep,
    kind: OrganisationKind | None = None,
    sector: OrganisationSector | None = None,
    ics: Annotated[str | None, Query(pattern=r"^E54\d{6}$", description="ICB code")] = None,
    lad: Annotated[str | None, Query(pattern=r"^E0[6-9]\d{6}$", description="Home LAD")] = None,
    q: Annotated[str | None, Query(max_length=100, description="Name or ODS code")] = None,
) -> Page[OrganisationRead]:
    items, total = await service.list_visible(
        session,
        principal=principal,
        kind=kind,
        sector=sector,
        ics_code=ics,
        lad_code=lad,
        q=q,
        page=page,
    )
    return page.result([OrganisationRead.model_validate(o) for o in items], total)


@router.post(
    "",
    response_model=OrganisationRead,
    status_code=status.HTTP_201_CREATED,
    summary="Register an organisation (admin)",
    responses=raises(OrganisationOutOfScope, UnknownLad, OdsCodeTaken, CqcLocationIdTaken),
)
async def create_organisation(
    body: OrganisationCreate, session: SessionDep, principal: AdminKey, response: Response
) -> OrganisationRead:
    organisation = OrganisationRead.model_validate(
        await service.create(session, body, principal=principal)
    )
    response.headers["Location"] = f"/v1/organisations/{organisation.id}"
    response.headers["ETag"] = _etag(organisation)
    return organisation


@router.get(
    "/{organisation_id}",
    response_model=OrganisationRead,
    summary="One organisation",
    responses={**NOT_MODIFIED, **raises(OrganisationNotFound)},
)
async def get_organisation(
    organisation_id: uuid.UUID,
    session: SessionDep,
    principal: ReadKey,
    request: Request,
    response: Response,
) -> OrganisationRead | Response:
    organisation = OrganisationRead.model_validate(
        await service.get_visible(session, principal=principal, organisation_id=organisation_id)
    )
    etag = _etag(organisation)
    if (cached := not_modified(request, etag)) is not None:
        return cached
    response.headers["ETag"] = etag
    return organisation


@router.patch(
    "/{organisation_id}",
    response_model=OrganisationRead,
    summary="Update (admin)",
    responses=raises(
        OrganisationNotFound,
        InsufficientScope,
        FieldNotNullable,
        OrganisationOutOfScope,
        UnknownLad,
        OdsCodeTaken,
        CqcLocationIdTaken,
    ),
)
async def update_organisation(
    organisation_id: uuid.UUID,
    body: OrganisationUpdate,
    session: SessionDep,
    principal: AdminKey,
    response: Response,
) -> OrganisationRead:
    organisation = OrganisationRead.model_validate(
        await service.update(
            session, principal=principal, organisation_id=organisation_id, data=body
        )
    )
    response.headers["ETag"] = _etag(organisation)
    return organisation


@router.delete(
    "/{organisation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an organisation with no returns (admin)",
    responses=raises(OrganisationNotFound, InsufficientScope, OrganisationInUse),
)
async def delete_organisation(
    organisation_id: uuid.UUID, session: SessionDep, principal: AdminKey
) -> Response:
    await service.delete(session, principal=principal, organisation_id=organisation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
