from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import ValidationError
from starlette.formparsers import MultiPartException, MultiPartParser

from services.api import idempotency
from services.api.areas.errors import AreaNotFound, AreaTypeNotSupported
from services.api.deps import AdminKey, ReadKey, SessionDep, SubmitKey
from services.api.errors import (
    IdempotencyKeyInProgress,
    IdempotencyKeyInvalid,
    IdempotencyKeyReused,
)
from services.api.gate import upload_route
from services.api.http import PageDep, csv_response, etag_of, not_modified, wants_csv
from services.api.openapi import NOT_MODIFIED, raises, schema_ref
from services.api.organisations.errors import OrganisationNotFound
from services.api.returns import csv_format, imports, service
from services.domain.returns import errors
from services.domain.returns.errors import (
    AsAtRequired,
    ConcurrentSubmission,
    FileRequired,
    ImportNotFound,
    MultipartMalformed,
    ReturnInvalid,
    ReturnNotFound,
)
from shared.db.base import utcnow
from shared.errors import (
    CsvEmpty,
    CsvHeaderMismatch,
    CsvMalformed,
    CsvNotUtf8,
    UnsupportedMediaType,
    field_error,
)
from shared.models import ReturnSource
from shared.repositories import returns as returns_repo
from shared.schemas.common import Page
from shared.schemas.returns import (
    AreaWorkforce,
    DryRunResult,
    ImportRead,
    ReturnCreate,
    ReturnDiff,
    ReturnRead,
    ReturnSummary,
)

router = APIRouter(tags=["returns"])

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": schema_ref(ReturnCreate)},
            "text/csv": {
                "schema": {"type": "string"},
                "example": csv_format.template(),
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}


async def _read_rows(
    request: Request, body: bytes, as_at: date | None
) -> tuple[date, list[dict[str, str | int | None]], ReturnSource]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            data = ReturnCreate.model_validate_json(body)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**err, "loc": ("body", *err["loc"])} for err in exc.errors()]
            ) from exc
        rows: list[dict[str, str | int | None]] = []
        for index, line in enumerate(data.lines, start=1):
            values = line.model_dump()
            row: dict[str, str | int | None] = {
                key: None if value is None else str(value) for key, value in values.items()
            }
            row["line_no"] = index
            rows.append(row)
        return data.as_at, rows, ReturnSource.json
    if content_type in ("text/csv", "multipart/form-data"):
        if as_at is None:
            raise errors.AsAtRequired(
                "A CSV return needs the as_at query parameter (YYYY-MM-DD).",
                errors=[field_error("as_at", "missing", "required for CSV", **{"in": "query"})],
            )
        if content_type == "multipart/form-data":
            body = await _multipart_file(request, body)
        return as_at, csv_format.parse(body, csv_format.TEMPLATE_COLUMNS), ReturnSource.csv
    raise UnsupportedMediaType("Send application/json, text/csv or multipart/form-data.")


async def _multipart_file(request: Request, body: bytes) -> bytes:
    """The bytes of the multipart field `file` (the body has already been read)."""

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    parser = MultiPartParser(request.headers, stream(), max_files=1, max_fields=20)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise errors.MultipartMalformed(exc.message) from exc
    try:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise errors.FileRequired(
                "Send the CSV as a multipart field named 'file'.",
                errors=[
                    field_error(
                        "file", "missing", "multipart field 'file' is required", **{"in": "body"}
                    )
                ],
            )
        return await upload.read()
    finally:
        await form.close()


@router.post(
    "/v1/organisations/{organisation_id}/returns",
    status_code=201,
    response_model=ReturnRead,
    responses={
        200: {"model": DryRunResult, "description": "dry run: valid, nothing stored"},
        **raises(
            OrganisationNotFound,
            ReturnInvalid,
            AsAtRequired,
            ConcurrentSubmission,
            UnsupportedMediaType,
            MultipartMalformed,
            FileRequired,
            CsvNotUtf8,
            CsvEmpty,
            CsvMalformed,
            CsvHeaderMismatch,
            IdempotencyKeyInvalid,
            IdempotencyKeyReused,
            IdempotencyKeyInProgress,
        ),
    },
    openapi_extra=_BODY_DOC,
    summary="Submit a workforce return (JSON, CSV or multipart CSV)",
)
@upload_route
async def submit_return(
    organisation_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: SubmitKey,
    as_at: Annotated[date | None, Query(description="Date of the return (CSV only)")] = None,
    dry_run: Annotated[bool, Query(description="Validate only; store nothing")] = False,
) -> Response:
    body = await request.body()
    context = idempotency.context_for(request, body)
    organisation = await service.organisation_for_returns(
        session, principal=principal, organisation_id=organisation_id
    )
    if context is not None:
        replay = await idempotency.reserve(session, principal=principal, context=context)
        if replay is not None:
            return JSONResponse(
                replay.body,
                status_code=replay.status_code,
                headers={"Idempotency-Replayed": "true", **_location(replay.body)},
            )
    on, rows, source = await _read_rows(request, body, as_at)
    result = await service.submit(
        session,
        principal=principal,
        organisation=organisation,
        as_at=on,
        rows=rows,
        source_kind=source,
        dry_run=dry_run,
    )
    status_code = 200 if isinstance(result, DryRunResult) else 201
    payload: dict[str, Any] = json.loads(result.model_dump_json())
    if context is not None:
        await idempotency.complete(
            session, principal=principal, context=context, status_code=status_code, body=payload
        )
    return JSONResponse(payload, status_code=status_code, headers=_location(payload))


def _location(payload: dict[str, Any]) -> dict[str, str]:
    if payload.get("dry_run") or "id" not in payload:
        return {}
    return {"Location": f"/v1/returns/{payload['id']}"}


@router.get(
    "/v1/returns/template.csv",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/csv": {}}}},
    summary="The CSV template for a return",
)
async def template(principal: ReadKey) -> Response:
    return Response(
        csv_format.template(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="return-template.csv"'},
    )


@router.get(
    "/v1/organisations/{organisation_id}/returns",
    response_model=Page[ReturnSummary],
    summary="An organisation's returns (current; all versions with history=true)",
    responses=raises(OrganisationNotFound),
)
async def list_returns(
    organisation_id: uuid.UUID,
    session: SessionDep,
    principal: SubmitKey,
    page: PageDep,
    as_at: date | None = None,
    history: Annotated[bool, Query(description="Include superseded versions")] = False,
) -> Page[ReturnSummary]:
    organisation = await service.organisation_for_returns(
        session, principal=principal, organisation_id=organisation_id
    )
    items, total = await returns_repo.list_returns(
        session,
        organisation_id=organisation.id,
        as_at=as_at,
        include_superseded=history,
        offset=page.offset,
        limit=page.limit,
    )
    return Page[ReturnSummary](
        items=[ReturnSummary.model_validate(item) for item in items],
        total=total,
        page=page.page,
        limit=page.limit,
    )


@router.get(
    "/v1/returns/{return_id}",
    response_model=ReturnRead,
    summary="One return version",
    responses={**NOT_MODIFIED, **raises(ReturnNotFound)},
)
async def get_return(
    return_id: uuid.UUID,
    session: SessionDep,
    principal: SubmitKey,
    request: Request,
    response: Response,
) -> ReturnRead | Response:
    visible = await service.get_visible_return(session, principal=principal, return_id=return_id)
    etag = etag_of("return", visible.id, visible.status)
    if (cached := not_modified(request, etag)) is not None:
        return cached
    response.headers["ETag"] = etag
    return await service.read_return(session, return_id=visible.id)


@router.get(
    "/v1/returns/{return_id}/diff",
    response_model=ReturnDiff,
    summary="Changes against the previous version for the same organisation and date",
    responses=raises(ReturnNotFound),
)
async def diff_return(
    return_id: uuid.UUID, session: SessionDep, principal: SubmitKey
) -> ReturnDiff:
    return await service.diff(session, principal=principal, return_id=return_id)


@router.get(
    "/v1/areas/{code}/workforce",
    response_model=AreaWorkforce,
    responses={200: {"content": {"text/csv": {}}}, **raises(AreaNotFound, AreaTypeNotSupported)},
    summary="The workforce of an area (LAD, ICB, England) from each organisation's latest return",
)
async def area_workforce(
    code: str,
    session: SessionDep,
    principal: ReadKey,
    request: Request,
    as_at: Annotated[date | None, Query(description="Default: today")] = None,
    format: Annotated[str | None, Query(pattern="^(json|csv)$")] = None,
) -> AreaWorkforce | Response:
    result = await service.area_workforce(
        session, principal=principal, area_code=code, on=as_at or utcnow().date()
    )
    if wants_csv(request, format):
        header = list(result.total.model_dump().keys())
        rows = [list(r.model_dump().values()) for r in [*result.roles, result.total]]
        return csv_response(header, rows, filename=f"workforce-{code}-{result.as_at}.csv")
    return result


@router.post(
    "/v1/imports/returns",
    status_code=202,
    response_model=ImportRead,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
    summary="Bulk-load many organisations' returns from one CSV (admin); poll the import",
    responses=raises(UnsupportedMediaType, CsvNotUtf8, CsvEmpty, CsvMalformed, CsvHeaderMismatch),
)
@upload_route
async def import_returns(request: Request, session: SessionDep, principal: AdminKey) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("text/csv", "application/octet-stream"):
        raise UnsupportedMediaType("Send the file as text/csv.")
    row = await imports.accept(session, request.stream(), principal=principal)
    body = json.loads(ImportRead.model_validate(row).model_dump_json())
    return JSONResponse(body, status_code=202, headers={"Location": f"/v1/imports/{row.id}"})


@router.get(
    "/v1/imports/{import_id}",
    response_model=ImportRead,
    summary="A bulk import's status",
    responses=raises(ImportNotFound),
)
async def get_import(import_id: uuid.UUID, session: SessionDep, principal: AdminKey) -> ImportRead:
    row = await imports.get_visible(session, principal=principal, import_id=import_id)
    return ImportRead.model_validate(row)
