"""Bulk loading of many organisations' returns from one CSV file.

The file streams into the staging table (COPY on PostgreSQL, batched inserts on SQLite), is
validated set-based in SQL with the same rules as a single return, and only then moves into
the returns tables in one transaction. Memory stays flat whatever the file's size: Python holds
one chunk of the file, and per-(organisation, date) bookkeeping, never the lines.
"""

from __future__ import annotations

import csv
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from services.domain.returns import rules
from services.domain.returns.lines import (
    CONTROL_CHARACTERS,
    DEFAULT_MAX_LINE_BYTES,
    check_control_bytes,
    control_character,
    split_lines,
)
from shared.db.base import utcnow
from shared.errors import CsvEmpty, CsvHeaderMismatch, CsvMalformed, CsvNotUtf8, DomainError
from shared.models import ReturnSource, ReturnStatus
from shared.repositories import audit
from shared.repositories import returns as repo
from shared.repositories.return_rules import Problem, Validation
from shared.vocab.return_lines import BULK_COLUMNS, omitted_trailing_columns

COPY_COLUMNS = ["import_id", "line_no", *BULK_COLUMNS]
SQLITE_BATCH = 5000

Progress = Callable[[int], None]


@dataclass
class ImportOutcome:
    line_count: int = 0
    return_count: int = 0
    warning_count: int = 0
    problems: list[Problem] = field(default_factory=list)
    error_count: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error_count == 0


def _header_error(header: list[str]) -> CsvHeaderMismatch:
    expected = ",".join(BULK_COLUMNS)
    return CsvHeaderMismatch(
        f"The header must be exactly: {expected}.",
        errors=[
            {
                "row": 1,
                "column": None,
                "code": CsvHeaderMismatch.code,
                "message": f"got {','.join(header)}",
            }
        ],
        expected_header=list(BULK_COLUMNS),
    )


def _check_header(line: bytes) -> int:
    """Raises unless the header is the bulk header, or it without some trailing optional
    columns; returns how many it leaves out (their fields are added empty to each line)."""
    try:
        decoded = line.decode("utf-8").removeprefix("\ufeff").strip("\r\n")
    except UnicodeDecodeError as exc:
        raise CsvNotUtf8("The CSV is not UTF-8.") from exc
    header = [name.strip() for name in next(csv.reader([decoded]))]
    omitted = omitted_trailing_columns(header, BULK_COLUMNS)
    if omitted is None:
        raise _header_error(header)
    return omitted


async def _numbered_lines(
    chunks: AsyncIterator[bytes],
    import_id: uuid.UUID,
    progress: Progress | None,
    max_line_bytes: int,
) -> AsyncIterator[bytes]:
    """Re-chunk the upload into whole lines prefixed with the import id and line number."""
    prefix = str(import_id).encode() + b","
    header_seen = False
    pad = b""
    async for first, lines in split_lines(chunks, max_line_bytes=max_line_bytes):
        if not header_seen:
            pad = b"," * _check_header(lines[0])
            header_seen = True
            first, lines = first + 1, lines[1:]
        check_control_bytes(lines, first)
        out = [
            b"%s%d,%s%s\n" % (prefix, line_no, stripped, pad)
            for line_no, raw in enumerate(lines, start=first)
            if (stripped := raw.rstrip(b"\r"))
        ]
        if progress is not None:
            progress(len(lines))
        if out:
            yield b"".join(out)
    if not header_seen:
        raise CsvEmpty("The CSV has no lines.")


async def _stage_postgres(
    session: AsyncSession,
    chunks: AsyncIterator[bytes],
    import_id: uuid.UUID,
    progress: Progress | None,
    max_line_bytes: int,
) -> None:
    try:
        await repo.copy_csv_into_staging(
            session,
            chunks=_numbered_lines(chunks, import_id, progress, max_line_bytes),
            columns=COPY_COLUMNS,
        )
    except DomainError:
        raise
    except Exception as exc:  # asyncpg reports malformed lines with their COPY line number
        message = str(getattr(exc, "orig", exc)).splitlines()[0]
        error = CsvNotUtf8 if "encoding" in message.lower() else CsvMalformed
        raise error(
            f"The CSV could not be read: {message}",
            errors=[{"row": None, "column": None, "code": error.code, "message": message}],
        ) from exc


async def _stage_sqlite(
    session: AsyncSession,
    chunks: AsyncIterator[bytes],
    import_id: uuid.UUID,
    progress: Progress | None,
    max_line_bytes: int,
) -> None:
    header_seen = False
    omitted = 0
    batch: list[dict[str, str | int | None]] = []
    problems: list[dict[str, Any]] = []

    async def flush() -> None:
        await repo.stage_rows(session, import_id=import_id, rows=batch)
        batch.clear()

    async for first, raw_lines in split_lines(chunks, max_line_bytes=max_line_bytes):
        try:
            text = b"\n".join(raw_lines).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CsvNotUtf8("The CSV is not UTF-8.") from exc
        if not header_seen:
            text = text.removeprefix("\ufeff")
        found = CONTROL_CHARACTERS.search(text)
        if found is not None:
            raise control_character(first + text.count("\n", 0, found.start()))
        reader = csv.reader(text.split("\n"))
        for fields in reader:
            line_no = first + reader.line_num - 1
            if not header_seen:
                short = omitted_trailing_columns(fields, BULK_COLUMNS)
                if short is None:
                    raise _header_error(fields)
                omitted = short
                header_seen = True
                continue
            if not fields or fields == [""] or fields == ["\r"]:
                continue
            if fields[-1].endswith("\r"):
                fields[-1] = fields[-1][:-1]
            if len(fields) + omitted != len(BULK_COLUMNS):
                problems.append(
                    {
                        "row": line_no,
                        "column": None,
                        "code": "csv_wrong_field_count",
                        "message": (
                            f"expected {len(BULK_COLUMNS) - omitted} fields, found {len(fields)}"
                        ),
                    }
                )
                continue
            fields = [*fields, *[""] * omitted]
            row: dict[str, str | int | None] = dict(zip(BULK_COLUMNS, fields, strict=True))
            row["line_no"] = line_no
            batch.append(row)
            if len(batch) >= SQLITE_BATCH:
                await flush()
                if progress is not None:
                    progress(SQLITE_BATCH)
    if not header_seen:
        raise CsvEmpty("The CSV has no lines.")
    if problems:
        raise CsvMalformed.for_lines(problems)
    if progress is not None:
        progress(len(batch))
    await flush()


async def stage(
    session: AsyncSession,
    chunks: AsyncIterator[bytes],
    *,
    import_id: uuid.UUID,
    progress: Progress | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> int:
    """Stream a bulk CSV into staging; return the number of lines staged. A line longer than
    `max_line_bytes`, or holding a control character, fails the upload as soon as it is read."""
    if repo.dialect_of(session).pg:
        await _stage_postgres(session, chunks, import_id, progress, max_line_bytes)
    else:
        await _stage_sqlite(session, chunks, import_id, progress, max_line_bytes)
    await repo.analyze(session, "return_staging")
    return await repo.count_staged(session, import_id=import_id)


async def validate_and_load(
    session: AsyncSession,
    *,
    import_id: uuid.UUID,
    ics_code: str | None,
    key_id: uuid.UUID | None,
    actor: str,
) -> ImportOutcome:
    """Check every staged line; when all pass, store one return per organisation and date."""
    outcome = ImportOutcome()
    started = time.perf_counter()
    validation = rules.validation(session, import_id, bulk=True)
    outcome.line_count = await repo.count_staged(session, import_id=import_id)
    organisations = await repo.organisations_by_code(session)

    today = utcnow().date()
    bad_dates, future_dates, good_dates = [], [], {}
    for value in await validation.distinct_values("as_at"):
        parsed = rules.parse_iso_date(value)
        if parsed is None:
            bad_dates.append(value)
        elif parsed > today:
            future_dates.append(value)
        else:
            good_dates[value] = parsed
    await validation.rows_with_value(
        "as_at", bad_dates, code="invalid_date", message="as_at {value!r} is not a YYYY-MM-DD date."
    )
    await validation.rows_with_value(
        "as_at", future_dates, code="as_at_in_future", message="as_at {value} is in the future."
    )
    if ics_code is not None:
        # An ICS-bound import sees only its own ICS's organisations: another ICS's code is
        # answered exactly as a code that does not exist.
        organisations = {c: o for c, o in organisations.items() if o[1] == ics_code}
    codes = await validation.distinct_values("organisation_code")
    unknown = [code for code in codes if code not in organisations]
    await validation.rows_with_value(
        "organisation_code",
        unknown,
        code="unknown_organisation",
        message="No organisation has ODS code or CQC location id {value!r}.",
    )
    pairs = await repo.staged_organisations_and_dates(session, import_id=import_id)
    groups: list[tuple[uuid.UUID, date]] = []
    early: list[tuple[str, str]] = []
    for code, as_at in pairs:
        if code is not None and as_at is not None and code in organisations and as_at in good_dates:
            organisation_id, _, opened_on = organisations[code]
            if opened_on is not None and good_dates[as_at] < opened_on:
                early.append((code, as_at))
            groups.append((organisation_id, good_dates[as_at]))
    for code, as_at in early[:100]:
        validation.add(
            Problem(
                code="as_at_before_organisation_opened",
                message=f"as_at {as_at} is before organisation {code} opened.",
                column="as_at",
                value=as_at,
                organisation_code=code,
            )
        )
    outcome.timings["check_codes_s"] = _lap(started)
    if validation.total:
        # Already failing: report every other problem too, in the same answer.
        await validation.line_rules()
        await validation.duplicate_roles("s.organisation_code")
        outcome.problems, outcome.error_count = validation.in_row_order(), validation.total
        return outcome
    source = repo.StagedSource(import_id=import_id, bulk=True, dialect=validation.d)
    stored = await store_staged(
        session,
        validation,
        source=source,
        groups=sorted(set(groups)),
        kind=ReturnSource.bulk,
        key_id=key_id,
        timings=outcome.timings,
    )
    if stored is None:
        outcome.problems, outcome.error_count = validation.in_row_order(), validation.total
        return outcome
    await repo.delete_staged(session, import_id=import_id)
    await audit.record(
        session,
        key_id=key_id,
        actor=actor,
        action="returns.import",
        resource_type="return_import",
        resource_id=str(import_id),
        detail={"lines": stored.moved, "returns": len(stored.return_ids)},
    )
    outcome.return_count = len(stored.return_ids)
    outcome.warning_count = len(stored.warnings)
    outcome.timings["total_s"] = _lap(started)
    return outcome


@dataclass
class Stored:
    return_ids: dict[tuple[uuid.UUID, date], uuid.UUID]
    versions: dict[tuple[uuid.UUID, date], int]
    warnings: list[dict[str, Any]]
    moved: int


async def store_staged(
    session: AsyncSession,
    validation: Validation,
    *,
    source: repo.StagedSource,
    groups: list[tuple[uuid.UUID, date]],
    kind: ReturnSource,
    key_id: uuid.UUID | None,
    timings: dict[str, float],
    row_of: dict[str, int] | None = None,
) -> Stored | None:
    """Store staged lines as one new return version per (organisation, date), or find why not.

    On PostgreSQL the database checks every line as it moves (typed columns, CHECK constraints
    that mirror the business rules, the role foreign key and the one-line-per-role key), so a
    clean load pays for one pass; only when the move fails are the rules run one by one to say
    which lines broke which rule. SQLite casts leniently, so there the rules run first.
    Returns None, with the problems in `validation`, when any line is wrong; the caller then
    rolls back.
    """
    started = time.perf_counter()
    optimistic = validation.d.pg
    if not optimistic:
        await validation.line_rules()
        await validation.duplicate_roles(source.duplicate_key)
        timings["line_rules_s"] = _lap(started)
        if validation.total:
            return None
    await repo.lock_organisations(session, organisation_ids=sorted({g[0] for g in groups}))
    versions = await repo.next_versions(session, keys=groups)
    now = utcnow()
    return_ids = {group: uuid.uuid4() for group in groups}
    await repo.add_returns(
        session,
        [
            {
                "id": return_ids[group],
                "organisation_id": group[0],
                "as_at": group[1],
                "version": versions[group],
                "status": ReturnStatus.current,
                "source": kind,
                "submitted_at": now,
                "submitted_by_key_id": key_id,
                "line_count": 0,
                "warning_count": 0,
                "import_id": source.import_id,
            }
            for group in groups
        ],
    )
    await repo.supersede_for_import(session, import_id=source.import_id)
    if kind == ReturnSource.bulk:
        # Only a bulk load changes the tables enough to mislead the planner. ANALYZE holds its
        # lock to the end of the transaction, so single returns doing it would queue behind
        # each other (measured under the soak: return posts at 12.5 s median).
        await repo.analyze(session, "workforce_returns", "organisations")
    timings["returns_s"] = _lap(started)
    try:
        async with session.begin_nested():
            moved = await repo.move_lines(session, source)
    except DBAPIError as exc:
        if not optimistic:
            raise
        await validation.line_rules()
        await validation.duplicate_roles(source.duplicate_key)
        if not validation.total:
            detail = str(getattr(exc, "orig", exc)).splitlines()[0]
            validation.add(Problem(code="line_rejected", message=detail))
        timings["line_rules_s"] = _lap(started)
        return None
    timings["move_s"] = _lap(started)
    await repo.set_line_counts(session, import_id=source.import_id)
    candidates = await repo.warning_candidates(
        session,
        import_id=source.import_id,
        turnover_share=rules.TURNOVER_WARNING_SHARE,
        jump_share=rules.JUMP_WARNING_SHARE,
    )
    warnings = rules.warnings_for(candidates)
    await repo.add_warnings(
        session,
        [
            {
                "id": uuid.uuid4(),
                "return_id": w["return_id"],
                "row": (row_of or {}).get(w["role_code"]),
                "role_code": w["role_code"],
                "column": w["column"],
                "code": w["code"],
                "message": w["message"],
            }
            for w in warnings
        ],
    )
    await repo.set_warning_counts(session, import_id=source.import_id)
    timings["warnings_s"] = _lap(started)
    return Stored(return_ids=return_ids, versions=versions, warnings=warnings, moved=moved)


def _lap(started: float) -> float:
    return round(time.perf_counter() - started, 3)
