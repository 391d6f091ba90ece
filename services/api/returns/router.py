from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.formparsers import MultiPartException, MultiPartParser

from services.api import idempotency
from services.api.deps import AdminKey, ReadKey, SessionDep, SubmitKey, Today
from services.api.errors import (
    IdempotencyKeyInProgress,
    IdempotencyKeyInvalid,
    IdempotencyKeyReused,
)
from services.api.export import csv_bytes, xlsx_bytes
from services.api.gate import upload_route
from services.api.http import (
    REVALIDATE,
    XLSX_MEDIA_TYPE,
    PageDep,
    etag_of,
    negotiate,
    not_modified,
)
from services.api.openapi import NOT_MODIFIED, raises, schema_ref
from services.api.organisations.errors import OrganisationNotFound
from services.api.returns import csv_format, imports, json_format, service
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
from shared.errors import (
    CsvEmpty,
    CsvHeaderMismatch,
    CsvMalformed,
    CsvNotUtf8,
    NotAcceptable,
    UnsupportedMediaType,
    field_error,
)
from shared.models import ReturnSource
from shared.repositories import returns as returns_repo
from shared.repositories.return_rules import Problem
from shared.schemas.common import Page
from shared.schemas.returns import (
    DryRunResult,
    ImportRead,
    ReturnCreate,
    ReturnDiff,
    ReturnLineRead,
    ReturnRead,
    ReturnSummary,
)

router = APIRouter(prefix="/v1", tags=["returns"])

# A CSV file is declared as `application/octet-stream` (its bytes, as client generators send a
# file); the server takes the same bytes as `text/csv` too.
CSV_FILE_DOC = {
    "schema": {"type": "string", "format": "binary"},
    "example": csv_format.template(),
}

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "A return as JSON; or its CSV file (the columns of "
        "`GET /v1/returns/template.csv`) sent as `text/csv` or `application/octet-stream`, "
        "or as the multipart field `file`, with the `as_at` query parameter.",
        "content": {
            "application/json": {"schema": schema_ref(ReturnCreate)},
            "application/octet-stream": CSV_FILE_DOC,
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
) -> tuple[date, list[dict[str, str | int | None]], ReturnSource, list[Problem]]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        on, rows, problems = json_format.parse(body)
        return on, rows, ReturnSource.json, problems
    if content_type in ("text/csv", "application/octet-stream", "multipart/form-data"):
        if as_at is None:
            raise errors.AsAtRequired(
                "A CSV return needs the as_at query parameter (YYYY-MM-DD).",
                errors=[field_error("as_at", "missing", "required for CSV", **{"in": "query"})],
            )
        if content_type == "multipart/form-data":
            body = await _multipart_file(request, body)
        rows = csv_format.parse(body, csv_format.TEMPLATE_COLUMNS)
        return as_at, rows, ReturnSource.csv, []
    raise UnsupportedMediaType(
        "Send application/json, text/csv (or application/octet-stream) or multipart/form-data."
    )


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
    "/organisations/{organisation_id}/returns",
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
    today: Today,
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
    on, rows, source, problems = await _read_rows(request, body, as_at)
    result = await service.submit(
        session,
        principal=principal,
        organisation=organisation,
        as_at=on,
        rows=rows,
        source_kind=source,
        dry_run=dry_run,
        today=today,
        problems=problems,
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
    "/returns/template.csv",
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
    "/organisations/{organisation_id}/returns",
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
        principal=principal,
        organisation_id=organisation.id,
        as_at=as_at,
        include_superseded=history,
        page=page,
    )
    return page.result([ReturnSummary.model_validate(item) for item in items], total)


@router.get(
    "/returns/{return_id}",
    response_model=ReturnRead,
    responses={
        200: {
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            }
        },
        **NOT_MODIFIED,
        **raises(ReturnNotFound, NotAcceptable),
    },
    summary="One return version (JSON; its lines as CSV or xlsx)",
)
async def get_return(
    return_id: uuid.UUID,
    session: SessionDep,
    principal: SubmitKey,
    request: Request,
    response: Response,
    format: Annotated[Literal["json", "csv", "xlsx"] | None, Query()] = None,
    bom: Annotated[bool, Query(description="CSV only: UTF-8 byte order mark for Excel")] = False,
) -> ReturnRead | Response:
    fmt = negotiate(request, format, ("json", "csv", "xlsx"))
    visible = await service.get_visible_return(session, principal=principal, return_id=return_id)
    etag = etag_of("return", visible.id, visible.status, fmt, bom)
    # xlsx zips carry a timestamp: the same content, not the same bytes.
    etag = "W/" + etag if fmt == "xlsx" else etag
    headers = {"ETag": etag, "Vary": "Accept", "Cache-Control": REVALIDATE}
    if (cached := not_modified(request, etag)) is not None:
        cached.headers.update(headers)
        return cached
    body = await service.read_return(session, return_id=visible.id)
    if fmt == "json":
        response.headers.update(headers)
        return body
    header = list(ReturnLineRead.model_fields)
    rows = [list(line.model_dump().values()) for line in body.lines]
    filename = f"return-{body.id}-v{body.version}"
    if fmt == "csv":
        headers["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
        return Response(
            csv_bytes(header, rows, bom=bom), media_type="text/csv; charset=utf-8", headers=headers
        )
    about = [
        ("Return", str(body.id)),
        ("Organisation", str(body.organisation_id)),
        ("As at", body.as_at.isoformat()),
        ("Version", str(body.version)),
        ("Status", str(body.status)),
        ("Units", "headcount and age bands: people; *_fte: full-time equivalents; "
                  "*_12m: the 12 months to as_at; mean_hourly_pay: GBP"),
        ("Sources", f"Submitted by the organisation ({body.source}) at "
                    f"{body.submitted_at.isoformat()}"),
    ]  # fmt: skip
    headers["Content-Disposition"] = f'attachment; filename="{filename}.xlsx"'
    content = await xlsx_bytes({"Lines": (header, rows), "About": (("Item", "Value"), about)})
    return Response(content, media_type=XLSX_MEDIA_TYPE, headers=headers)


@router.get(
    "/returns/{return_id}/diff",
    response_model=ReturnDiff,
    summary="Changes against the previous version for the same organisation and date",
    responses=raises(ReturnNotFound),
)
async def diff_return(
    return_id: uuid.UUID, session: SessionDep, principal: SubmitKey
) -> ReturnDiff:
    return await service.diff(session, principal=principal, return_id=return_id)


@router.post(
    "/imports/returns",
    status_code=202,
    response_model=ImportRead,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The bulk CSV file, sent as `text/csv` or `application/octet-stream`.",
            "content": {
                "application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"},
                    "example": csv_format.bulk_example(),
                }
            },
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
    row = await imports.accept(
        session,
        request.stream(),
        principal=principal,
        max_line_bytes=request.app.state.settings.max_csv_line_bytes,
    )
    body = json.loads(ImportRead.model_validate(row).model_dump_json())
    # A hint for pollers: a bulk load takes seconds per hundred thousand lines.
    return JSONResponse(
        body,
        status_code=202,
        headers={"Location": f"/v1/imports/{row.id}", "Retry-After": "2"},
    )


@router.get(
    "/imports/{import_id}",
    response_model=ImportRead,
    summary="A bulk import's status",
    responses=raises(ImportNotFound),
)
async def get_import(import_id: uuid.UUID, session: SessionDep, principal: AdminKey) -> ImportRead:
    row = await imports.get_visible(session, principal=principal, import_id=import_id)
    return ImportRead.model_validate(row)
