from __future__ import annotations

import hashlib
import json
import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response, status

from services.api.agreements import fhir, service
from services.api.agreements.errors import (
    AgreementAlreadyActive,
    AgreementAlreadySuspended,
    AgreementExpired,
    AgreementNotActive,
    AgreementNotFound,
    AgreementNotFullySigned,
    AgreementNotStarted,
    AgreementNotSuspended,
    AgreementSuspended,
    AgreementTerminated,
    CapExceeded,
    DeploymentAlreadyEnded,
    DeploymentNotFound,
    DeploymentOutsideAgreementDates,
    DeploymentSameOrganisation,
    DuplicateParty,
    DuplicateScope,
    EndedOnBeforeStart,
    EndedOnNotEarly,
    IcsNotFound,
    IcsOutOfScope,
    IcsRequired,
    InvalidDateRange,
    LenderNotParty,
    NotYourOrganisation,
    OrganisationNotParty,
    OrganisationRequired,
    PartyAlreadySigned,
    PartyOutsideIcs,
    RoleNotInScope,
    ScopeRequired,
    TermsConflictWithDeployments,
    TooFewParties,
)
from services.api.deps import AdminKey, ReadKey, SessionDep, SubmitKey, Today
from services.api.errors import EtagMismatch, IfMatchRequired
from services.api.http import PageDep, etag_of, not_modified, require_if_match
from services.api.openapi import NOT_MODIFIED, raises
from services.api.organisations.errors import OrganisationNotFound, UnknownOrganisation
from services.api.roles.errors import UnknownRole
from shared.errors import InsufficientScope
from shared.models import Agreement, AgreementMode, DeploymentStatus
from shared.schemas import agreements as schemas
from shared.schemas.agreements import AgreementState
from shared.schemas.common import Page
from shared.schemas.keys import ICS_CODE_PATTERN

router = APIRouter(prefix="/v1", tags=["agreements"])


def _precondition(
    request: Request,
    if_match: Annotated[
        str | None,
        Header(alias="If-Match", description="The ETag of the agreement as you last read it"),
    ] = None,
) -> service.Precondition:
    def check(current_etag: str) -> None:
        require_if_match(request, current_etag)

    return check


IfMatch = Annotated[service.Precondition, Depends(_precondition)]


def _agreement(response: Response, agreement: Agreement, *, today: date) -> schemas.Agreement:
    response.headers["ETag"] = service.etag(agreement, today=today)
    return service.to_schema(agreement, today=today)


@router.post(
    "/agreements",
    response_model=schemas.Agreement,
    status_code=status.HTTP_201_CREATED,
    summary="Create a draft staff-sharing agreement (ICS admin)",
    responses=raises(
        IcsOutOfScope,
        IcsRequired,
        IcsNotFound,
        InvalidDateRange,
        TooFewParties,
        DuplicateParty,
        PartyOutsideIcs,
        UnknownOrganisation,
        UnknownRole,
        ScopeRequired,
        LenderNotParty,
        DuplicateScope,
    ),
)
async def create_agreement(
    body: schemas.AgreementCreate,
    session: SessionDep,
    principal: AdminKey,
    response: Response,
    today: Today,
) -> schemas.Agreement:
    agreement = await service.create_agreement(session, body, principal=principal, today=today)
    response.headers["Location"] = f"/v1/agreements/{agreement.id}"
    return _agreement(response, agreement, today=today)


@router.get(
    "/agreements",
    response_model=Page[schemas.Agreement],
    summary="List the agreements this key may see",
)
async def list_agreements(
    session: SessionDep,
    principal: ReadKey,
    page: PageDep,
    today: Today,
    organisation: Annotated[
        uuid.UUID | None, Query(description="Only agreements this organisation is party to")
    ] = None,
    ics_code: Annotated[str | None, Query(pattern=ICS_CODE_PATTERN)] = None,
    status_: Annotated[AgreementState | None, Query(alias="status")] = None,
    mode: AgreementMode | None = None,
    role: Annotated[
        str | None, Query(description="Only agreements with this role in scope")
    ] = None,
    active_on: Annotated[
        date | None, Query(description="Only agreements in force (active) on this date")
    ] = None,
) -> Page[schemas.Agreement]:
    return await service.list_agreements(
        session,
        principal=principal,
        today=today,
        page=page,
        organisation_id=organisation,
        ics_code=ics_code,
        state=status_,
        mode=mode,
        role_code=role,
        active_on=active_on,
    )


@router.get(
    "/organisations/{organisation_id}/agreements",
    response_model=Page[schemas.Agreement],
    summary="The agreements an organisation is party to",
    responses=raises(OrganisationNotFound),
)
async def organisation_agreements(
    organisation_id: uuid.UUID,
    session: SessionDep,
    principal: ReadKey,
    page: PageDep,
    today: Today,
    status_: Annotated[AgreementState | None, Query(alias="status")] = None,
    mode: AgreementMode | None = None,
    role: str | None = None,
    active_on: date | None = None,
) -> Page[schemas.Agreement]:
    await service.visible_organisation(
        session, organisation_id=organisation_id, principal=principal
    )
    return await service.list_agreements(
        session,
        principal=principal,
        today=today,
        page=page,
        organisation_id=organisation_id,
        state=status_,
        mode=mode,
        role_code=role,
        active_on=active_on,
    )


@router.get(
    "/agreements/{agreement_id}",
    response_model=schemas.Agreement,
    summary="An agreement with its parties, signatures and scope",
    responses={
        304: {"description": "Not modified (If-None-Match)"},
        **NOT_MODIFIED,
        **raises(AgreementNotFound),
    },
)
async def get_agreement(
    agreement_id: uuid.UUID,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: ReadKey,
    today: Today,
) -> schemas.Agreement | Response:
    agreement = await service.get_agreement(session, agreement_id=agreement_id, principal=principal)
    cached = not_modified(request, service.etag(agreement, today=today))
    if cached is not None:
        return cached
    return _agreement(response, agreement, today=today)


@router.patch(
    "/agreements/{agreement_id}",
    response_model=schemas.Agreement,
    summary="Change an agreement (If-Match); new terms need every party to sign again",
    responses=raises(
        AgreementNotFound,
        InsufficientScope,
        IfMatchRequired,
        EtagMismatch,
        AgreementNotActive,
        AgreementAlreadyActive,
        AgreementSuspended,
        AgreementExpired,
        AgreementTerminated,
        TermsConflictWithDeployments,
        IcsRequired,
        IcsNotFound,
        InvalidDateRange,
        TooFewParties,
        DuplicateParty,
        PartyOutsideIcs,
        UnknownOrganisation,
        UnknownRole,
        ScopeRequired,
        LenderNotParty,
        DuplicateScope,
    ),
)
async def update_agreement(
    agreement_id: uuid.UUID,
    body: schemas.AgreementUpdate,
    session: SessionDep,
    principal: AdminKey,
    response: Response,
    today: Today,
    precondition: IfMatch,
) -> schemas.Agreement:
    agreement = await service.update_agreement(
        session,
        agreement_id=agreement_id,
        body=body,
        principal=principal,
        today=today,
        precondition=precondition,
    )
    return _agreement(response, agreement, today=today)


@router.post(
    "/agreements/{agreement_id}/sign",
    response_model=schemas.Agreement,
    summary="Sign for a party (its own submit key, or an ICS admin on its behalf)",
    responses=raises(
        AgreementNotFound,
        InsufficientScope,
        NotYourOrganisation,
        IfMatchRequired,
        EtagMismatch,
        AgreementNotActive,
        AgreementAlreadyActive,
        AgreementSuspended,
        AgreementExpired,
        AgreementTerminated,
        PartyAlreadySigned,
        AgreementNotFullySigned,
        AgreementNotStarted,
        OrganisationRequired,
        OrganisationNotParty,
    ),
)
async def sign(
    agreement_id: uuid.UUID,
    body: schemas.SignRequest,
    session: SessionDep,
    principal: SubmitKey,
    response: Response,
    today: Today,
    precondition: IfMatch,
) -> schemas.Agreement:
    agreement = await service.sign(
        session,
        agreement_id=agreement_id,
        body=body,
        principal=principal,
        today=today,
        precondition=precondition,
    )
    return _agreement(response, agreement, today=today)


@router.post(
    "/agreements/{agreement_id}/activate",
    response_model=schemas.Agreement,
    summary="Put a fully signed agreement in force once its start date has come",
    responses=raises(
        AgreementNotFound,
        InsufficientScope,
        IfMatchRequired,
        EtagMismatch,
        AgreementNotActive,
        AgreementAlreadyActive,
        AgreementSuspended,
        AgreementExpired,
        AgreementTerminated,
        AgreementNotFullySigned,
        AgreementNotStarted,
    ),
)
async def activate(
    agreement_id: uuid.UUID,
    session: SessionDep,
    principal: AdminKey,
    response: Response,
    today: Today,
    precondition: IfMatch,
) -> schemas.Agreement:
    agreement = await service.activate(
        session,
        agreement_id=agreement_id,
        principal=principal,
        today=today,
        precondition=precondition,
    )
    return _agreement(response, agreement, today=today)


@router.post(
    "/agreements/{agreement_id}/suspend",
    response_model=schemas.Agreement,
    summary="Suspend an active agreement: no new deployments until resumed",
    responses=raises(
        AgreementNotFound,
        InsufficientScope,
        IfMatchRequired,
        EtagMismatch,
        AgreementNotActive,
        AgreementAlreadyActive,
        AgreementSuspended,
        AgreementExpired,
        AgreementTerminated,
        AgreementAlreadySuspended,
    ),
)
async def suspend(
    agreement_id: uuid.UUID,
    session: SessionDep,
    principal: AdminKey,
    response: Response,
    today: Today,
    precondition: IfMatch,
    body: Annotated[schemas.SuspendRequest | None, Body()] = None,
) -> schemas.Agreement:
    agreement = await service.suspend(
        session,
        agreement_id=agreement_id,
        body=body or schemas.SuspendRequest(),
        principal=principal,
        today=today,
        precondition=precondition,
    )
    return _agreement(response, agreement, today=today)


@router.post(
    "/agreements/{agreement_id}/resume",
    response_model=schemas.Agreement,
    summary="Resume a suspended agreement",
    responses=raises(
        AgreementNotFound,
        InsufficientScope,
        IfMatchRequired,
        EtagMismatch,
        AgreementNotActive,
        AgreementAlreadyActive,
        AgreementSuspended,
        AgreementExpired,
        AgreementTerminated,
        AgreementNotSuspended,
    ),
)
async def resume(
    agreement_id: uuid.UUID,
    session: SessionDep,
    principal: AdminKey,
    response: Response,
    today: Today,
    precondition: IfMatch,
) -> schemas.Agreement:
    agreement = await service.resume(
        session,
        agreement_id=agreement_id,
        principal=principal,
        today=today,
        precondition=precondition,
    )
    return _agreement(response, agreement, today=today)


@router.post(
    "/agreements/{agreement_id}/terminate",
    response_model=schemas.Agreement,
    summary="Terminate an agreement for good; running deployments end today",
    responses=raises(
        AgreementNotFound,
        InsufficientScope,
        IfMatchRequired,
        EtagMismatch,
        AgreementNotActive,
        AgreementAlreadyActive,
        AgreementSuspended,
        AgreementExpired,
        AgreementTerminated,
    ),
)
async def terminate(
    agreement_id: uuid.UUID,
    body: schemas.TerminateRequest,
    session: SessionDep,
    principal: AdminKey,
    response: Response,
    today: Today,
    precondition: IfMatch,
) -> schemas.Agreement:
    agreement = await service.terminate(
        session,
        agreement_id=agreement_id,
        body=body,
        principal=principal,
        today=today,
        precondition=precondition,
    )
    return _agreement(response, agreement, today=today)


@router.get(
    "/agreements/{agreement_id}/fhir",
    summary="The agreement as a FHIR R4 Bundle of OrganizationAffiliation resources",
    response_class=Response,
    responses={
        200: {
            "description": "The parties' Organizations (with their ODS code and CQC location "
            "id) and one OrganizationAffiliation for each pair of parties; the shared roles "
            "are codes of the CodeSystem at `GET /v1/fhir/CodeSystem/roles`",
            "content": {fhir.FHIR_JSON: {"schema": {"type": "object"}}},
        },
        **NOT_MODIFIED,
        **raises(AgreementNotFound),
    },
)
async def agreement_fhir(
    agreement_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: ReadKey,
    today: Today,
) -> Response:
    agreement = await service.get_agreement(session, agreement_id=agreement_id, principal=principal)
    document = fhir.bundle(
        agreement,
        state=service.state_of(agreement, today=today),
        roles=await service.roles_for(session, agreement),
    )
    # The parties' names and codes and the roles' names are in the bytes too, so the ETag is
    # the bytes' own hash: strong, and right whatever changed.
    body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    etag = etag_of("agreement-fhir", hashlib.sha256(body).hexdigest())
    cached = not_modified(request, etag)
    if cached is not None:
        return cached
    return Response(body, media_type=fhir.FHIR_JSON, headers={"ETag": etag})


@router.post(
    "/agreements/{agreement_id}/deployments",
    response_model=schemas.Deployment,
    status_code=status.HTTP_201_CREATED,
    summary="Deploy staff from one party to another under an active agreement, within the cap",
    responses=raises(
        AgreementNotFound,
        InsufficientScope,
        AgreementNotActive,
        InvalidDateRange,
        DeploymentSameOrganisation,
        OrganisationNotParty,
        DeploymentOutsideAgreementDates,
        RoleNotInScope,
        CapExceeded,
    ),
)
async def create_deployment(
    agreement_id: uuid.UUID,
    body: schemas.DeploymentCreate,
    session: SessionDep,
    principal: AdminKey,
    response: Response,
    today: Today,
) -> schemas.Deployment:
    deployment = await service.create_deployment(
        session, agreement_id=agreement_id, body=body, principal=principal, today=today
    )
    response.headers["Location"] = f"/v1/agreements/{agreement_id}/deployments/{deployment.id}"
    return service.deployment_to_schema(deployment, today=today)


@router.get(
    "/agreements/{agreement_id}/deployments",
    response_model=Page[schemas.Deployment],
    summary="Deployments under an agreement",
    responses=raises(AgreementNotFound),
)
async def list_deployments(
    agreement_id: uuid.UUID,
    session: SessionDep,
    principal: ReadKey,
    page: PageDep,
    today: Today,
    organisation: Annotated[
        uuid.UUID | None, Query(description="Lent from or to this organisation")
    ] = None,
    role: str | None = None,
    status_: Annotated[DeploymentStatus | None, Query(alias="status")] = None,
    active_on: date | None = None,
) -> Page[schemas.Deployment]:
    return await service.list_deployments(
        session,
        agreement_id=agreement_id,
        principal=principal,
        today=today,
        page=page,
        organisation_id=organisation,
        role_code=role,
        status=status_,
        active_on=active_on,
    )


@router.get(
    "/agreements/{agreement_id}/deployments/{deployment_id}",
    response_model=schemas.Deployment,
    summary="One deployment",
    responses=raises(AgreementNotFound, DeploymentNotFound),
)
async def get_deployment(
    agreement_id: uuid.UUID,
    deployment_id: uuid.UUID,
    session: SessionDep,
    principal: ReadKey,
    today: Today,
) -> schemas.Deployment:
    deployment = await service.get_deployment(
        session, agreement_id=agreement_id, deployment_id=deployment_id, principal=principal
    )
    return service.deployment_to_schema(deployment, today=today)


@router.post(
    "/agreements/{agreement_id}/deployments/{deployment_id}/end",
    response_model=schemas.Deployment,
    summary="End a deployment early",
    responses=raises(
        AgreementNotFound,
        DeploymentNotFound,
        InsufficientScope,
        DeploymentAlreadyEnded,
        EndedOnNotEarly,
        EndedOnBeforeStart,
    ),
)
async def end_deployment(
    agreement_id: uuid.UUID,
    deployment_id: uuid.UUID,
    body: schemas.DeploymentEnd,
    session: SessionDep,
    principal: AdminKey,
    today: Today,
) -> schemas.Deployment:
    deployment = await service.end_deployment(
        session,
        agreement_id=agreement_id,
        deployment_id=deployment_id,
        body=body,
        principal=principal,
    )
    return service.deployment_to_schema(deployment, today=today)
