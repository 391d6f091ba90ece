"""HTTP helpers shared by the routers: pagination (with Link and X-Total-Count), ETags and
preconditions, content negotiation (406 for what we cannot produce), caching headers and
streamed CSV responses."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from services.api.errors import EtagMismatch, IfMatchRequired
from shared.errors import NotAcceptable
from shared.schemas.common import Page

CSV_MEDIA_TYPE = "text/csv"
NDJSON_MEDIA_TYPE = "application/x-ndjson"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
JSON_MEDIA_TYPE = "application/json"
MEDIA_TYPES: dict[str, str] = {
    "json": JSON_MEDIA_TYPE,
    "csv": CSV_MEDIA_TYPE,
    "ndjson": NDJSON_MEDIA_TYPE,
    "xlsx": XLSX_MEDIA_TYPE,
}
# Representations derived from a finished run never change: clients and shared caches may keep
# them for a year without asking again. `private` because every read is authenticated.
IMMUTABLE = "private, max-age=31536000, immutable"
# May change: keep, but ask (If-None-Match) before each use.
REVALIDATE = "private, no-cache"

T = TypeVar("T")


@dataclass(frozen=True)
class PageParams:
    page: int
    limit: int
    # Where the list's Link and X-Total-Count headers go (None outside a request).
    request: Request | None = field(default=None, compare=False, repr=False)
    response: Response | None = field(default=None, compare=False, repr=False)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit

    def result(self, items: Sequence[T], total: int) -> Page[T]:
        """The page, with `X-Total-Count` and RFC 8288 `Link` (first/prev/next/last) set."""
        if self.response is not None and self.request is not None:
            self.response.headers.update(page_headers(self.request, self, total))
        return Page[T](items=list(items), total=total, page=self.page, limit=self.limit)


def page_headers(request: Request, page: PageParams, total: int) -> dict[str, str]:
    """X-Total-Count and the Link header of a page of `total` items."""
    last = max(1, -(-total // page.limit))

    def link(number: int, rel: str) -> str:
        url = request.url.include_query_params(page=number, limit=page.limit)
        return f'<{url.path}?{url.query}>; rel="{rel}"'

    links = [link(1, "first")]
    if page.page > 1:
        links.append(link(min(page.page - 1, last), "prev"))
    if page.page < last:
        links.append(link(page.page + 1, "next"))
    links.append(link(last, "last"))
    return {"X-Total-Count": str(total), "Link": ", ".join(links)}


def _page_params(
    request: Request,
    response: Response,
    page: Annotated[int, Query(ge=1, le=1_000_000, description="1-based page number")] = 1,
    limit: Annotated[int, Query(ge=1, le=500, description="Items per page")] = 50,
) -> PageParams:
    return PageParams(page=page, limit=limit, request=request, response=response)


PageDep = Annotated[PageParams, Depends(_page_params)]


def etag_of(*parts: Any) -> str:
    """A strong ETag from the parts that identify a representation's version."""
    digest = hashlib.sha256(json.dumps(parts, default=str, sort_keys=True).encode()).hexdigest()
    return f'"{digest[:32]}"'


def rounded_floats(value: Any, places: int = 2) -> Any:
    """A JSON-ready structure with every float rounded (FTE figures: to 2 decimals)."""
    if isinstance(value, float):
        return round(value, places)
    if isinstance(value, dict):
        return {key: rounded_floats(item, places) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded_floats(item, places) for item in value]
    return value


def etag_matches(header: str, etag: str) -> bool:
    """If-None-Match's weak comparison: does the header name this version (or `*`)?"""
    return _matches(header, etag)


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


def _accept_ranges(header: str) -> list[tuple[str, float]]:
    """Media ranges of an Accept header with their q-values, best first (RFC 9110 12.5.1)."""
    ranges: list[tuple[str, float]] = []
    for item in header.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        if not media:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranges.append((media.lower(), quality))
    return sorted(ranges, key=lambda pair: -pair[1])


def _range_covers(media_range: str, media_type: str) -> bool:
    if media_range == "*/*":
        return True
    if media_range.endswith("/*"):
        return media_type.startswith(media_range[:-1])
    return media_range == media_type


def accepts(header: str | None, media_type: str) -> bool:
    """Whether an Accept header allows this media type (no header allows everything)."""
    if not header:
        return True
    return any(q > 0 and _range_covers(r, media_type) for r, q in _accept_ranges(header))


def negotiate(
    request: Request, format_param: str | None, offered: Sequence[str] = ("json", "csv")
) -> str:
    """The representation to send: `?format=` wins, then a `.csv` path, then Accept; JSON when
    the client accepts anything. 406 (with what is offered) when Accept allows none of them."""
    return negotiate_header(
        request.headers.get("accept"), format_param, offered, path=request.url.path
    )


def negotiate_header(
    header: str | None,
    format_param: str | None,
    offered: Sequence[str] = ("json", "csv"),
    *,
    path: str = "",
) -> str:
    """`negotiate` from the raw Accept header (for code that runs before routing)."""
    if format_param is not None:
        return format_param.lower()
    if path.endswith(".csv") and "csv" in offered:
        return "csv"
    if not header:
        return offered[0]
    for media_range, quality in _accept_ranges(header):
        if quality <= 0:
            continue
        # Exact types first, so `text/csv, */*` picks CSV and `*/*` alone picks the default.
        for name in offered:
            if media_range == MEDIA_TYPES[name] or (
                name == "json" and media_range == "application/problem+json"
            ):
                return name
        for name in offered:
            if _range_covers(media_range, MEDIA_TYPES[name]):
                return name
    raise NotAcceptable(
        "None of the media types in Accept can be produced here.",
        available=[MEDIA_TYPES[name] for name in offered],
        headers={"Vary": "Accept"},
    )


def wants_csv(request: Request, format_param: str | None = None) -> bool:
    """CSV when asked by `?format=csv`, a `.csv` path or the Accept header."""
    return negotiate(request, format_param, ("json", "csv")) == "csv"


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
