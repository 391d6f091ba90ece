from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response, status

from services.api.areas.errors import UnknownIcs
from services.api.deps import AdminKey, CurrentKey, SessionDep
from services.api.http import PageDep
from services.api.keys import service
from services.api.keys.errors import (
    AdminKeyBinding,
    KeyAlreadyRevoked,
    KeyBindingConflict,
    KeyNotFound,
    KeyOutOfScope,
    SubmitKeyNeedsOrganisation,
)
from services.api.openapi import raises
from services.api.organisations.errors import UnknownOrganisation
from shared.schemas.common import Page
from shared.schemas.keys import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, WhoAmI

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.get("/me", response_model=WhoAmI, summary="The key making this request")
async def whoami(principal: CurrentKey) -> WhoAmI:
    return WhoAmI(
        key_id=principal.key_id,
        name=principal.name,
        scope=principal.scope,
        organisation_id=principal.organisation_id,
        ics_code=principal.ics_code,
    )


@router.get("", response_model=Page[ApiKeyRead], summary="List API keys (admin)")
async def list_keys(session: SessionDep, principal: AdminKey, page: PageDep) -> Page[ApiKeyRead]:
    keys, total = await service.list_keys(session, principal=principal, page=page)
    return page.result([ApiKeyRead.model_validate(key) for key in keys], total)


@router.post(
    "",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key (admin); the secret is returned once",
    responses=raises(
        KeyOutOfScope,
        KeyBindingConflict,
        SubmitKeyNeedsOrganisation,
        AdminKeyBinding,
        UnknownIcs,
        UnknownOrganisation,
    ),
)
async def create_key(body: ApiKeyCreate, session: SessionDep, principal: AdminKey) -> ApiKeyCreated:
    key, secret = await service.create_key_as(session, body, principal=principal)
    return ApiKeyCreated.model_validate(
        {**ApiKeyRead.model_validate(key).model_dump(), "secret": secret}
    )


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke an API key (admin)",
    responses=raises(KeyNotFound, KeyAlreadyRevoked),
)
async def revoke_key(
    key_id: uuid.UUID, session: SessionDep, principal: AdminKey, request: Request
) -> Response:
    await service.revoke_key(
        session,
        key_id=key_id,
        actor=principal.actor,
        actor_key_id=principal.key_id,
        principal=principal,
    )
    request.app.state.key_cache.forget_key(key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
