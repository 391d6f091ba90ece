"""HTTP helpers shared by the routers: pagination, ETags and preconditions, CSV responses."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from services.api.errors import EtagMismatch, IfMatchRequired

CSV_MEDIA_TYPE = "text/csv"


@dataclass(frozen=True)
class PageParams:
    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


def _page_params(
    page: Annotated[int, Query(ge=1, le=1_000_000, description="1-based page number")] = 1,
    limit: Annotated[int, Query(ge=1, le=500, description="Items per page")] = 50,
) -> PageParams:
    return PageParams(page=page, limit=limit)


PageDep = Annotated[PageParams, Depends(_page_params)]


def etag_of(*parts: Any) -> str:
    """A strong ETag from the parts that identify a representation's version."""
    digest = hashlib.sha256(json.dumps(parts, default=str, sort_keys=True).encode()).hexdigest()
    return f'"{digest[:32]}"'


def _matches(header: str, etag: str) -> bool:
    candidates = [value.strip() for value in header.split(",")]
    weak = etag.removeprefix("W/")
    return "*" in candidates or any(c.removeprefix("W/") == weak for c in candidates)


def not_modified(request: Request, etag: str) -> Response | None:
    """A 304 when the client's If-None-Match already names this version."""
    header = request.headers.get("if-none-match")
    if header and _matches(header, etag):
        return Response(status_code=304, headers={"ETag": etag})
    return None


def require_if_match(request: Request, current_etag: str) -> None:
    """Optimistic concurrency: 428 without If-Match, 412 when it names an older version."""
    header = request.headers.get("if-match")
    if not header:
        raise IfMatchRequired("Send If-Match with the ETag you last read.")
    if not _matches(header, current_etag):
        raise EtagMismatch(
            "The resource changed since you read it; read it again and retry.",
            headers={"ETag": current_etag},
        )


def wants_csv(request: Request, format_param: str | None = None) -> bool:
    """CSV when asked by `?format=csv`, a `.csv` path or the Accept header."""
    if format_param is not None:
        return format_param.lower() == "csv"
    if request.url.path.endswith(".csv"):
        return True
    accept = request.headers.get("accept", "")
    return CSV_MEDIA_TYPE in accept and "application/json" not in accept


def csv_response(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    filename: str,
    headers: dict[str, str] | None = None,
) -> StreamingResponse:
    """Stream rows as CSV without building the whole file in memory."""

    async def chunks() -> AsyncIterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(header)
        for count, row in enumerate(rows, start=1):
            writer.writerow(["" if value is None else value for value in row])
            if count % 1000 == 0:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode()

    response_headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    response_headers.update(headers or {})
    return StreamingResponse(
        chunks(), media_type="text/csv; charset=utf-8", headers=response_headers
    )
