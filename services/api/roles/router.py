from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse

from services.api.deps import AdminKey, ReadKey, SessionDep
from services.api.errors import EtagMismatch
from services.api.http import PageDep, etag_of, not_modified, require_if_match
from services.api.openapi import raises
from services.api.roles import service
from services.api.roles.errors import (
    CatalogueAdminOnly,
    RoleChangedConcurrently,
    RoleCodeTaken,
    RoleInUse,
    RoleNotFound,
)
from shared.errors import NotAcceptable
from shared.models import DemandDriver, RegistrationBody, Role, RoleSector
from shared.schemas.common import Page
from shared.schemas.keys import Principal
from shared.schemas.roles import Role as RoleRead
from shared.schemas.roles import RoleCreate, RoleUpdate

router = APIRouter(prefix="/v1", tags=["roles"])

FHIR_JSON = "application/fhir+json"


class FhirJSONResponse(JSONResponse):
    media_type = FHIR_JSON


async def _catalogue_admin(principal: AdminKey) -> Principal:
    service.ensure_can_manage_catalogue(principal)
    return principal


CatalogueAdmin = Annotated[Principal, Depends(_catalogue_admin)]


def role_etag(role: Role) -> str:
    # updated_at as well as version: a role deleted and created again restarts at version 1.
    return etag_of("role", role.code, role.version, role.updated_at)


async def _expected_version(request: Request, session: SessionDep, code: str) -> int | None:
    """If-Match is optional on role writes; when sent, it must name the current version."""
    if not request.headers.get("if-match"):
        return None
    current = await service.get_role(session, code=code)
    require_if_match(request, role_etag(current))
    return current.version


_NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: If-None-Match names the current ETag"}
}
_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Not a global admin key (`insufficient_scope`, `catalogue_admin_only`)"},
    422: {"description": "Invalid body (`validation_failed`)"},
}


@router.get(
    "/roles",
    response_model=Page[RoleRead],
    summary="List roles, with filters and text search",
    responses={**_NOT_MODIFIED, **raises(NotAcceptable)},
)
async def list_roles(
    request: Request,
    response: Response,
    session: SessionDep,
    _principal: ReadKey,
    page: PageDep,
    sector: RoleSector | None = None,
    staff_group: Annotated[
        str | None, Query(max_length=100, description="Exact staff group")
    ] = None,
    is_new_role: bool | None = None,
    registration_body: RegistrationBody | None = None,
    default_demand_driver: DemandDriver | None = None,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=100, description="Text in the name, description or code"),
    ] = None,
) -> Page[RoleRead] | Response:
    filters = {
        "sector": sector,
        "staff_group": staff_group,
        "is_new_role": is_new_role,
        "registration_body": registration_body,
        "default_demand_driver": default_demand_driver,
        "q": q,
    }
    state = await service.catalogue_state(session)
    etag = etag_of("roles", service.catalogue_version(state), filters, page.page, page.limit)
    cached = not_modified(request, etag)
    if cached is not None:
        return cached
    items, total = await service.list_roles(
        session,
        sector=sector,
        staff_group=staff_group,
        is_new_role=is_new_role,
        registration_body=registration_body,
        default_demand_driver=default_demand_driver,
        q=q,
        page=page,
    )
    response.headers["ETag"] = etag
    return page.result([RoleRead.model_validate(role) for role in items], total)


@router.get(
    "/roles/{code}",
    response_model=RoleRead,
    summary="One role",
    responses={
        **_NOT_MODIFIED,
        404: {"description": "No such role (`role_not_found`)"},
        **raises(RoleNotFound),
    },
)
async def get_role(
    code: str, request: Request, response: Response, session: SessionDep, _principal: ReadKey
) -> RoleRead | Response:
    role = await service.get_role(session, code=code)
    etag = role_etag(role)
    cached = not_modified(request, etag)
    if cached is not None:
        return cached
    response.headers["ETag"] = etag
    return RoleRead.model_validate(role)


@router.post(
    "/roles",
    response_model=RoleRead,
    status_code=status.HTTP_201_CREATED,
    summary="Add a role to the catalogue (global admin)",
    responses={
        **_WRITE_ERRORS,
        409: {"description": "Code in use (`role_code_taken`)"},
        **raises(CatalogueAdminOnly, RoleCodeTaken),
    },
)
async def create_role(
    body: RoleCreate, response: Response, session: SessionDep, principal: CatalogueAdmin
) -> RoleRead:
    role = await service.create_role(session, body, principal=principal)
    response.headers["Location"] = f"/v1/roles/{role.code}"
    response.headers["ETag"] = role_etag(role)
    return RoleRead.model_validate(role)


@router.patch(
    "/roles/{code}",
    response_model=RoleRead,
    summary="Change a role (global admin); `code` never changes",
    description=(
        "Send only the fields that change. Sending `code` is 422 with the field error code "
        "`role_code_immutable`. If-Match is optional; when sent it must carry the current "
        "ETag, else 412 `etag_mismatch`."
    ),
    responses={
        **_WRITE_ERRORS,
        404: {"description": "No such role (`role_not_found`)"},
        412: {"description": "If-Match names an older version (`etag_mismatch`)"},
        **raises(RoleNotFound, CatalogueAdminOnly, EtagMismatch, RoleChangedConcurrently),
    },
)
async def update_role(
    code: str,
    body: RoleUpdate,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: CatalogueAdmin,
) -> RoleRead:
    expected = await _expected_version(request, session, code)
    role = await service.update_role(
        session, code=code, data=body, principal=principal, expected_version=expected
    )
    response.headers["ETag"] = role_etag(role)
    return RoleRead.model_validate(role)


@router.delete(
    "/roles/{code}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a role nothing refers to (global admin)",
    responses={
        **_WRITE_ERRORS,
        404: {"description": "No such role (`role_not_found`)"},
        409: {"description": "Still referenced (`role_in_use`, with `usage` per table)"},
        412: {"description": "If-Match names an older version (`etag_mismatch`)"},
        **raises(RoleNotFound, CatalogueAdminOnly, EtagMismatch, RoleInUse),
    },
)
async def delete_role(
    code: str, request: Request, session: SessionDep, principal: CatalogueAdmin
) -> Response:
    expected = await _expected_version(request, session, code)
    await service.delete_role(session, code=code, principal=principal, expected_version=expected)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/fhir/CodeSystem/roles",
    response_class=FhirJSONResponse,
    summary="The whole role catalogue as a FHIR R4 CodeSystem",
    description=(
        f"Canonical URL `{service.FHIR_CANONICAL}`. Every role is a concept with its name as "
        "display, its description as definition, properties for sector, staff group, new role, "
        "regulator, career framework level, demand driver, pay band and outside codes, and "
        "designations for the ASC-WDS job role and NHS staff group. Carries an ETag."
    ),
    responses={
        200: {"content": {FHIR_JSON: {"schema": {"type": "object"}}}},
        **_NOT_MODIFIED,
    },
)
async def fhir_code_system(request: Request, session: SessionDep, _principal: ReadKey) -> Response:
    state = await service.catalogue_state(session)
    etag = etag_of("roles-fhir", service.catalogue_version(state))
    cached = not_modified(request, etag)
    if cached is not None:
        return cached
    resource = await service.fhir_code_system(session, state=state)
    return FhirJSONResponse(resource, headers={"ETag": etag})
