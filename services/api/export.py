"""Whole-table exports streamed as CSV, JSON, NDJSON or xlsx with bounded memory.

A producer writes byte chunks as it reads rows from the database; `ExportResponse` sends each
chunk as it comes, so the client sees the first bytes at once and the process never holds the
whole body. The producer owns its database session and closes it even when the client goes
away mid-stream (the close is shielded from cancellation), so an interrupted export leaves no
open transaction behind.
"""

from __future__ import annotations

import csv
import io
import logging
import tempfile
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Sequence,
)
from contextlib import aclosing
from datetime import date, datetime
from typing import Any

import anyio
import orjson
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from services.api.http import CSV_MEDIA_TYPE, MEDIA_TYPES, NDJSON_MEDIA_TYPE, XLSX_MEDIA_TYPE

log = logging.getLogger("oneworkforce.api")

Write = Callable[[bytes], Awaitable[None]]
Producer = Callable[[Write], Awaitable[None]]
RowChunks = AsyncIterable[Sequence[Sequence[Any]]]
ChunkSource = Callable[[], AsyncGenerator[Sequence[Sequence[Any]], None]]

UTF8_BOM = b"\xef\xbb\xbf"
# Bytes gathered before a chunk is sent: large enough that per-message overhead vanishes,
# small enough that the first byte leaves at once.
SEND_BYTES = 64 * 1024
XLSX_MAX_ROWS = 1_048_575  # Excel's sheet limit, less the header row


class ExportResponse(Response):
    """A 200 whose body a producer writes chunk by chunk (no Content-Length)."""

    def __init__(
        self,
        producer: Producer,
        *,
        media_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.producer = producer
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )

        async def write(chunk: bytes) -> None:
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})

        try:
            await self.producer(write)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            # The client went away mid-stream (the server's send fails): nothing more to do;
            # the producer has already closed its session on the way out.
            log.info("export abandoned by the client", extra={"path": scope.get("path")})


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        # The shortest form of an already-rounded figure: 1682, 1506.2 (as PostgreSQL prints).
        return format(value, ".15g")
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


class Batcher:
    """Gathers small encoded pieces and writes them in SEND_BYTES chunks."""

    def __init__(self, write: Write) -> None:
        self.write = write
        self.parts: list[bytes] = []
        self.size = 0

    async def add(self, piece: bytes) -> None:
        self.parts.append(piece)
        self.size += len(piece)
        if self.size >= SEND_BYTES:
            await self.flush()

    async def flush(self) -> None:
        if self.parts:
            chunk = b"".join(self.parts)
            self.parts, self.size = [], 0
            await self.write(chunk)


def csv_bytes(header: Sequence[str], rows: Sequence[Sequence[Any]], *, bom: bool = False) -> bytes:
    """A small CSV body in memory, written exactly as the streamed ones are."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return (UTF8_BOM if bom else b"") + buffer.getvalue().encode()


async def write_csv(
    write: Write, header: Sequence[str], chunks: RowChunks, *, bom: bool = False
) -> None:
    """RFC 4180 CSV (CRLF line ends), optionally after a UTF-8 byte order mark for Excel."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    batch = Batcher(write)
    await batch.add((UTF8_BOM if bom else b"") + buffer.getvalue().encode())
    async for rows in chunks:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([_cell(value) for value in row] for row in rows)
        await batch.add(buffer.getvalue().encode())
    await batch.flush()


async def write_json_array(write: Write, header: Sequence[str], chunks: RowChunks) -> None:
    """One JSON array of objects, written as it is read."""
    batch = Batcher(write)
    await batch.add(b"[")
    first = True
    async for rows in chunks:
        for row in rows:
            encoded = orjson.dumps(dict(zip(header, row, strict=True)), default=_json_default)
            await batch.add(encoded if first else b"," + encoded)
            first = False
    await batch.add(b"]\n")
    await batch.flush()


async def write_ndjson(write: Write, header: Sequence[str], chunks: RowChunks) -> None:
    """Newline-delimited JSON: one object per line, for integrations that stream."""
    batch = Batcher(write)
    async for rows in chunks:
        await batch.add(
            b"".join(
                orjson.dumps(dict(zip(header, row, strict=True)), default=_json_default) + b"\n"
                for row in rows
            )
        )
    await batch.flush()


async def write_xlsx(
    write: Write,
    header: Sequence[str],
    chunks: RowChunks,
    *,
    sheet: str,
    about: Sequence[tuple[str, str]],
) -> None:
    """A workbook with the rows on `sheet` and an `About` sheet (units, sources, scenario).

    openpyxl's write-only mode keeps rows in a temporary file, so memory stays flat; the
    workbook is zipped at the end and then streamed from disk. The CPU-bound work runs in a
    worker thread so the event loop keeps serving other requests meanwhile.
    """
    book = Workbook(write_only=True)
    data = book.create_sheet(sheet)
    bold = Font(bold=True)

    def header_cells(values: Sequence[str]) -> list[Any]:
        cells = []
        for value in values:
            cell = WriteOnlyCell(data, value=value)
            cell.font = bold
            cells.append(cell)
        return cells

    data.append(header_cells(header))
    written = 0

    def append(rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            data.append(list(row))

    async for rows in chunks:
        room = XLSX_MAX_ROWS - written
        if room <= 0:
            break
        await anyio.to_thread.run_sync(append, rows[:room])
        written += min(len(rows), room)
    notes = book.create_sheet("About")
    notes.append(["Item", "Value"])
    for item in about:
        notes.append(list(item))
    if written >= XLSX_MAX_ROWS:
        notes.append(["Truncated", f"Excel holds {XLSX_MAX_ROWS} rows; filter to export less."])
    with tempfile.TemporaryFile() as spool:
        await anyio.to_thread.run_sync(book.save, spool)
        spool.seek(0)
        while chunk := await anyio.to_thread.run_sync(spool.read, 1024 * 1024):
            await write(chunk)


def media_type_of(fmt: str) -> str:
    if fmt == "csv":
        return f"{CSV_MEDIA_TYPE}; charset=utf-8"
    if fmt == "ndjson":
        return NDJSON_MEDIA_TYPE
    if fmt == "xlsx":
        return XLSX_MEDIA_TYPE
    return MEDIA_TYPES[fmt]


def export_response(
    fmt: str,
    header: Sequence[str],
    chunks: ChunkSource,
    *,
    filename: str,
    bom: bool = False,
    sheet: str = "Data",
    about: Sequence[tuple[str, str]] = (),
    headers: dict[str, str] | None = None,
    producer: Producer | None = None,
) -> ExportResponse:
    """A streamed export in one of csv, json, ndjson or xlsx.

    `chunks` is called once, when the body is sent, and yields lists of row tuples in
    `header` order. `producer`, when given, writes the body itself (PostgreSQL's COPY).
    """

    async def produce(write: Write) -> None:
        if producer is not None:
            if bom and fmt == "csv":
                await write(UTF8_BOM)
            await producer(write)
            return
        # Closed explicitly, so the rows' session ends here even when `write` fails because
        # the client went away (a half-read generator is otherwise closed only by the GC).
        async with aclosing(chunks()) as rows:
            if fmt == "csv":
                await write_csv(write, header, rows, bom=bom)
            elif fmt == "ndjson":
                await write_ndjson(write, header, rows)
            elif fmt == "xlsx":
                await write_xlsx(write, header, rows, sheet=sheet, about=about)
            else:
                await write_json_array(write, header, rows)

    extension = "json" if fmt == "json" else fmt
    response_headers = {
        "Content-Disposition": f'attachment; filename="{filename}.{extension}"',
        "Vary": "Accept",
    }
    response_headers.update(headers or {})
    return ExportResponse(produce, media_type=media_type_of(fmt), headers=response_headers)


def _workbook_bytes(sheets: dict[str, tuple[Sequence[str], Sequence[Sequence[Any]]]]) -> bytes:
    book = Workbook(write_only=True)
    bold = Font(bold=True)
    for title, (header, rows) in sheets.items():
        sheet = book.create_sheet(title)
        cells = []
        for value in header:
            cell = WriteOnlyCell(sheet, value=value)
            cell.font = bold
            cells.append(cell)
        sheet.append(cells)
        for row in rows:
            sheet.append(list(row))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


async def xlsx_bytes(sheets: dict[str, tuple[Sequence[str], Sequence[Sequence[Any]]]]) -> bytes:
    """A small workbook (one sheet per entry: header and rows) built in a worker thread."""
    return await anyio.to_thread.run_sync(_workbook_bytes, sheets)
