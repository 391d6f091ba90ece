"""Splitting a streamed CSV upload into lines in linear time, with a limit on a line's length.

Each byte is looked at once: an unfinished line is kept as a list of pieces (never re-joined
or re-scanned as chunks arrive), so a file without line breaks costs as much as any other
file of its size, and is refused as soon as its first line passes the limit.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from shared.errors import ControlCharacter, CsvLineTooLong

DEFAULT_MAX_LINE_BYTES = 64 * 1024
# C0 controls other than tab, line feed and carriage return, and DEL.
CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def line_too_long(line_no: int, max_line_bytes: int) -> CsvLineTooLong:
    message = f"line {line_no} is longer than {max_line_bytes} bytes"
    return CsvLineTooLong(
        f"Line {line_no} of the CSV is longer than the limit of {max_line_bytes} bytes.",
        errors=[{"row": line_no, "column": None, "code": CsvLineTooLong.code, "message": message}],
        limit=max_line_bytes,
    )


def control_character(line_no: int, column: str | None = None) -> ControlCharacter:
    where = f"line {line_no}" + (f", column {column}" if column else "")
    return ControlCharacter(
        f"The CSV holds a control character ({where}).",
        errors=[
            {
                "row": line_no,
                "column": column,
                "code": ControlCharacter.code,
                "message": "control characters are not allowed",
            }
        ],
    )


def check_control_bytes(lines: list[bytes], first_line_no: int) -> None:
    """Refuse the first line of a batch holding a control character."""
    for offset, line in enumerate(lines):
        if CONTROL_BYTES.search(line):
            raise control_character(first_line_no + offset)


async def split_lines(
    chunks: AsyncIterator[bytes], *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> AsyncIterator[tuple[int, list[bytes]]]:
    """Batches of whole lines (without their line feed) with the number of the batch's first
    line (the file's first line is 1); the last line may be unterminated."""
    pieces: list[bytes] = []
    pending = 0
    line_no = 1
    async for chunk in chunks:
        end = chunk.find(b"\n")
        if end < 0:
            pieces.append(chunk)
            pending += len(chunk)
            if pending > max_line_bytes:
                raise line_too_long(line_no, max_line_bytes)
            continue
        if pending + end > max_line_bytes:
            raise line_too_long(line_no, max_line_bytes)
        pieces.append(chunk[:end])
        lines = [b"".join(pieces)]
        rest = chunk[end + 1 :]
        cut = rest.rfind(b"\n")
        if cut >= 0:
            lines.extend(rest[:cut].split(b"\n"))
            rest = rest[cut + 1 :]
        longest = max(map(len, lines))
        if longest > max_line_bytes:
            index = next(i for i, line in enumerate(lines) if len(line) > max_line_bytes)
            raise line_too_long(line_no + index, max_line_bytes)
        if len(rest) > max_line_bytes:
            raise line_too_long(line_no + len(lines), max_line_bytes)
        pieces, pending = ([rest], len(rest)) if rest else ([], 0)
        yield line_no, lines
        line_no += len(lines)
    if pieces:
        yield line_no, [b"".join(pieces)]
