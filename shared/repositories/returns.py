"""Workforce returns: staging, moving validated lines, versions, history and aggregates."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, delete, false, func, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql import Subquery

from shared.db.base import utcnow
from shared.models import (
    IdempotencyRecord,
    KeyScope,
    Organisation,
    ReturnLine,
    ReturnStatus,
    ReturnWarning,
    Role,
    WorkforceReturn,
    return_staging,
)
from shared.repositories import organisations
from shared.repositories.base import PageWindow, paginate
from shared.repositories.return_rules import Dialect, staged_sql
from shared.schemas.keys import Principal
from shared.vocab.return_lines import LINE_COLUMNS

STAGING_COLUMNS = ("line_no", "organisation_code", "as_at", *LINE_COLUMNS)

ORG_CODES_SQL = (
    "(SELECT id, ods_code AS code FROM organisations WHERE ods_code IS NOT NULL "
    "UNION ALL SELECT id, cqc_location_id AS code FROM organisations "
    "WHERE cqc_location_id IS NOT NULL)"
)


@dataclass(frozen=True)
class StagedSource:
    """How staged lines find their organisation and date: given once, or per line (bulk)."""

    import_id: uuid.UUID
    bulk: bool
    dialect: Dialect

    @property
    def from_sql(self) -> str:
        if self.bulk:
            return f"return_staging s JOIN {ORG_CODES_SQL} oc ON oc.code = s.organisation_code"
        return "return_staging s"

    @property
    def org_expr(self) -> str:
        return "oc.id" if self.bulk else "s.organisation_id"

    @property
    def duplicate_key(self) -> str:
        return "s.organisation_code" if self.bulk else "s.organisation_id"

    @property
    def date_expr(self) -> str:
        return "CAST(s.as_at AS date)" if self.dialect.pg else "s.as_at"


def dialect_of(session: AsyncSession) -> Dialect:
    return Dialect(session.get_bind().dialect.name)


async def stage_rows(
    session: AsyncSession,
    *,
    import_id: uuid.UUID,
    rows: Sequence[dict[str, str | int | None]],
    organisation_id: uuid.UUID | None = None,
) -> None:
    """Stage already-parsed lines (values as text); COPY on PostgreSQL, executemany otherwise."""
    if not rows:
        return
    if dialect_of(session).pg:
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        records = [
            (import_id, organisation_id, *(row.get(col) for col in STAGING_COLUMNS)) for row in rows
        ]
        await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
            "return_staging",
            records=records,
            columns=["import_id", "organisation_id", *STAGING_COLUMNS],
        )
        return
    payload = [
        {
            "import_id": import_id,
            "organisation_id": organisation_id,
            **{col: row.get(col) for col in STAGING_COLUMNS},
        }
        for row in rows
    ]
    await session.execute(insert(return_staging), payload)


async def copy_csv_into_staging(
    session: AsyncSession, *, chunks: AsyncIterator[bytes], columns: list[str]
) -> None:
    """PostgreSQL: stream CSV bytes straight into staging with COPY.

    Each line already starts with the import id and its line number (see the bulk service).
    """
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    await driver.copy_to_table(
        "return_staging",
        source=chunks,
        columns=columns,
        format="csv",
        header=False,
    )


async def lock_organisation(session: AsyncSession, *, organisation_id: uuid.UUID) -> None:
    """Serialise submissions for one organisation so versions are numbered without gaps."""
    await session.execute(
        select(Organisation.id).where(Organisation.id == organisation_id).with_for_update()
    )


async def lock_organisations(
    session: AsyncSession, *, organisation_ids: Sequence[uuid.UUID]
) -> None:
    """Lock many organisations in a fixed order (no deadlock against single submissions)."""
    for start in range(0, len(organisation_ids), 1000):
        chunk = list(organisation_ids[start : start + 1000])
        await session.execute(
            select(Organisation.id)
            .where(Organisation.id.in_(chunk))
            .order_by(Organisation.id)
            .with_for_update()
        )


async def count_staged(session: AsyncSession, *, import_id: uuid.UUID) -> int:
    result = await session.execute(
        staged_sql("SELECT COUNT(*) FROM return_staging WHERE import_id = :import_id"),
        {"import_id": import_id},
    )
    return int(result.scalar_one())


async def staged_organisations_and_dates(
    session: AsyncSession, *, import_id: uuid.UUID
) -> list[tuple[str | None, str | None]]:
    """The distinct (organisation code, as_at) pairs of a bulk import, as sent."""
    result = await session.execute(
        staged_sql(
            "SELECT DISTINCT organisation_code, as_at FROM return_staging "
            "WHERE import_id = :import_id"
        ),
        {"import_id": import_id},
    )
    return [(code, as_at) for code, as_at in result.all()]


async def staged_organisation_codes(session: AsyncSession, *, import_id: uuid.UUID) -> list[str]:
    """The distinct organisation codes a bulk import's lines name, as sent."""
    result = await session.execute(
        staged_sql(
            "SELECT DISTINCT organisation_code FROM return_staging "
            "WHERE import_id = :import_id AND organisation_code IS NOT NULL"
        ),
        {"import_id": import_id},
    )
    return [code for (code,) in result.all()]


async def organisations_by_code(
    session: AsyncSession,
) -> dict[str, tuple[uuid.UUID, str, date | None]]:
    """(id, ICS, opened on) of every organisation by ODS code and by CQC location id."""
    rows = await session.execute(
        text(
            "SELECT id, ods_code, cqc_location_id, ics_code, opened_on FROM organisations "
            "WHERE ods_code IS NOT NULL OR cqc_location_id IS NOT NULL"
        )
    )
    found: dict[str, tuple[uuid.UUID, str, date | None]] = {}
    for org_id, ods, cqc, ics, opened in rows.all():
        organisation_id = org_id if isinstance(org_id, uuid.UUID) else uuid.UUID(str(org_id))
        opened_on = date.fromisoformat(opened) if isinstance(opened, str) else opened
        for code in (ods, cqc):
            if code:
                found[code] = (organisation_id, ics, opened_on)
    return found


async def set_line_counts(session: AsyncSession, *, import_id: uuid.UUID) -> None:
    await session.execute(
        staged_sql(
            "UPDATE workforce_returns SET line_count = (SELECT COUNT(*) FROM return_lines l "
            "WHERE l.return_id = workforce_returns.id) WHERE import_id = :import_id"
        ),
        {"import_id": import_id},
    )


async def set_warning_counts(session: AsyncSession, *, import_id: uuid.UUID) -> None:
    await session.execute(
        staged_sql(
            "UPDATE workforce_returns SET warning_count = (SELECT COUNT(*) FROM return_warnings w "
            "WHERE w.return_id = workforce_returns.id) WHERE import_id = :import_id"
        ),
        {"import_id": import_id},
    )


async def warning_candidates(
    session: AsyncSession, *, import_id: uuid.UUID, turnover_share: float, jump_share: float
) -> list[dict[str, Any]]:
    """The lines just stored that may warrant a warning, each beside the same role's line in
    the organisation's previous return (prev_*) and in its return of a year or more before
    (old_*): high turnover, a jump since the previous return, or figures left unchanged."""
    d = dialect_of(session)
    year_before = d.days_before("n.as_at", 365)
    turnover, jump = float(turnover_share), float(jump_share)
    sql = f"""
        WITH prev AS (
            SELECT n.id AS new_id,
                (SELECT r.id FROM workforce_returns r
                  WHERE r.organisation_id = n.organisation_id AND r.status = 'current'
                    AND r.as_at < n.as_at ORDER BY r.as_at DESC LIMIT 1) AS prev_id,
                (SELECT r.id FROM workforce_returns r
                  WHERE r.organisation_id = n.organisation_id AND r.status = 'current'
                    AND r.as_at <= {year_before} ORDER BY r.as_at DESC LIMIT 1) AS old_id
            FROM workforce_returns n WHERE n.import_id = :import_id
        )
        SELECT l.return_id AS return_id, l.role_code AS role_code, l.headcount AS headcount,
               l.fte_in_post AS fte, l.vacant_fte AS vacant, l.leavers_12m AS leavers,
               p.headcount AS prev_headcount, p.fte_in_post AS prev_fte,
               o.headcount AS old_headcount, o.fte_in_post AS old_fte, o.vacant_fte AS old_vacant
        FROM prev
        JOIN return_lines l ON l.return_id = prev.new_id
        LEFT JOIN return_lines p ON p.return_id = prev.prev_id AND p.role_code = l.role_code
        LEFT JOIN return_lines o ON o.return_id = prev.old_id AND o.role_code = l.role_code
        WHERE (l.headcount > 0 AND l.leavers_12m > {turnover} * l.headcount)
           OR (p.headcount > 0 AND ABS(l.headcount - p.headcount) > {jump} * p.headcount)
           OR (p.fte_in_post > 0 AND ABS(l.fte_in_post - p.fte_in_post) > {jump} * p.fte_in_post)
           OR (o.headcount = l.headcount AND o.fte_in_post = l.fte_in_post
               AND o.vacant_fte = l.vacant_fte)
        ORDER BY l.return_id, l.role_code
    """
    result = await session.execute(staged_sql(sql), {"import_id": import_id})
    return [dict(row) for row in result.mappings()]


async def next_versions(
    session: AsyncSession, *, keys: Sequence[tuple[uuid.UUID, date]]
) -> dict[tuple[uuid.UUID, date], int]:
    """The version number the next return for each (organisation, date) gets."""
    if not keys:
        return {}
    organisation_ids = {key[0] for key in keys}
    query = (
        select(
            WorkforceReturn.organisation_id,
            WorkforceReturn.as_at,
            func.max(WorkforceReturn.version),
        )
        .where(WorkforceReturn.organisation_id.in_(organisation_ids))
        .group_by(WorkforceReturn.organisation_id, WorkforceReturn.as_at)
    )
    existing = {(row[0], row[1]): int(row[2]) for row in (await session.execute(query)).all()}
    return {key: existing.get(key, 0) + 1 for key in keys}


async def supersede_for_import(session: AsyncSession, *, import_id: uuid.UUID) -> None:
    """Set-based: the returns this import replaces (same organisation and date) are superseded."""
    await session.execute(
        staged_sql(
            "UPDATE workforce_returns SET status = 'superseded' "
            "WHERE status = 'current' AND (import_id IS NULL OR import_id <> :import_id) "
            "AND EXISTS (SELECT 1 FROM workforce_returns n WHERE n.import_id = :import_id "
            "AND n.organisation_id = workforce_returns.organisation_id "
            "AND n.as_at = workforce_returns.as_at)"
        ),
        {"import_id": import_id},
    )


async def stored_by_import(
    session: AsyncSession, *, import_id: uuid.UUID
) -> list[tuple[uuid.UUID, uuid.UUID, str, date, int, uuid.UUID | None]]:
    """The returns an import stored: (id, organisation, its ICS, as_at, version, the id of the
    version it replaced or None), in one query."""
    previous = aliased(WorkforceReturn)
    query = (
        select(
            WorkforceReturn.id,
            WorkforceReturn.organisation_id,
            Organisation.ics_code,
            WorkforceReturn.as_at,
            WorkforceReturn.version,
            previous.id,
        )
        .join(Organisation, Organisation.id == WorkforceReturn.organisation_id)
        .outerjoin(
            previous,
            (previous.organisation_id == WorkforceReturn.organisation_id)
            & (previous.as_at == WorkforceReturn.as_at)
            & (previous.version == WorkforceReturn.version - 1),
        )
        .where(WorkforceReturn.import_id == import_id)
        .order_by(WorkforceReturn.organisation_id, WorkforceReturn.as_at)
    )
    return list((await session.execute(query)).all())


async def analyze(session: AsyncSession, *tables: str) -> None:
    """Fresh planner statistics after a bulk write, before joining over it.

    Without them PostgreSQL believes a table that just took thousands of rows is empty and
    can pick a join order that multiplies rows (measured: 28 s instead of 0.3 s for 100,000
    lines).
    """
    if dialect_of(session).pg:
        for table in tables:
            await session.execute(text(f"ANALYZE {table}"))


async def add_returns(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(WorkforceReturn), list(rows))


async def move_lines(session: AsyncSession, source: StagedSource) -> int:
    """Copy the validated staged lines into return_lines, typed, in one statement."""
    d = source.dialect
    kinds = {
        "headcount": "int", "starters_12m": "int", "leavers_12m": "int",
        "leavers_to_health_care_12m": "int", "age_under_25": "int", "age_25_34": "int",
        "age_35_44": "int", "age_45_54": "int", "age_55_64": "int", "age_65_plus": "int",
    }  # fmt: skip
    int_type, real_type = ("integer", "double precision") if d.pg else ("INTEGER", "REAL")
    columns = [c for c in LINE_COLUMNS if c != "role_code"]
    casts = ", ".join(
        f"CAST(NULLIF(s.{c}, '') AS {int_type if kinds.get(c) else real_type})" for c in columns
    )
    sql = f"""
        INSERT INTO return_lines (return_id, role_code, {", ".join(columns)})
        SELECT r.id, s.role_code, {casts}
        FROM {source.from_sql}
        JOIN workforce_returns r ON r.import_id = :import_id
             AND r.organisation_id = {source.org_expr} AND r.as_at = {source.date_expr}
        WHERE s.import_id = :import_id
    """
    result = await session.execute(staged_sql(sql), {"import_id": source.import_id})
    return int(getattr(result, "rowcount", 0) or 0)


async def add_warnings(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(ReturnWarning), list(rows))


def readable_organisations(principal: Principal) -> Select[Organisation]:
    """The organisations whose returns a key may post and read: a submit key's own, and for an
    admin key those it may see; none for a read key."""
    needed = KeyScope.submit if principal.organisation_id is not None else KeyScope.admin
    query = organisations.readable_statement(principal)
    return query if principal.has(needed) else query.where(false())


def readable_statement(principal: Principal) -> Select[WorkforceReturn]:
    """The returns a key may read: those of `readable_organisations`. A return's read and its
    organisation's list of returns both start here."""
    owners = readable_organisations(principal).with_only_columns(Organisation.id)
    return select(WorkforceReturn).where(WorkforceReturn.organisation_id.in_(owners))


async def organisation_for_returns(
    session: AsyncSession, *, principal: Principal, organisation_id: uuid.UUID
) -> Organisation | None:
    query = readable_organisations(principal).where(Organisation.id == organisation_id)
    return (await session.execute(query)).scalar_one_or_none()


async def get_return(session: AsyncSession, *, return_id: uuid.UUID) -> WorkforceReturn | None:
    return await session.get(WorkforceReturn, return_id)


async def get_readable_return(
    session: AsyncSession, *, principal: Principal, return_id: uuid.UUID
) -> WorkforceReturn | None:
    query = readable_statement(principal).where(WorkforceReturn.id == return_id)
    return (await session.execute(query)).scalar_one_or_none()


async def lines_of(session: AsyncSession, *, return_id: uuid.UUID) -> Sequence[ReturnLine]:
    query = (
        select(ReturnLine).where(ReturnLine.return_id == return_id).order_by(ReturnLine.role_code)
    )
    return (await session.execute(query)).scalars().all()


async def warnings_of(session: AsyncSession, *, return_id: uuid.UUID) -> Sequence[ReturnWarning]:
    query = (
        select(ReturnWarning)
        .where(ReturnWarning.return_id == return_id)
        .order_by(ReturnWarning.row, ReturnWarning.code)
    )
    return (await session.execute(query)).scalars().all()


async def previous_version(
    session: AsyncSession, *, current: WorkforceReturn
) -> WorkforceReturn | None:
    query = (
        select(WorkforceReturn)
        .where(
            WorkforceReturn.organisation_id == current.organisation_id,
            WorkforceReturn.as_at == current.as_at,
            WorkforceReturn.version < current.version,
        )
        .order_by(WorkforceReturn.version.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def list_returns(
    session: AsyncSession,
    *,
    principal: Principal,
    organisation_id: uuid.UUID,
    as_at: date | None,
    include_superseded: bool,
    page: PageWindow,
) -> tuple[Sequence[WorkforceReturn], int]:
    conditions = [WorkforceReturn.organisation_id == organisation_id]
    if as_at is not None:
        conditions.append(WorkforceReturn.as_at == as_at)
    if not include_superseded:
        conditions.append(WorkforceReturn.status == ReturnStatus.current)
    query = (
        readable_statement(principal)
        .where(*conditions)
        .order_by(WorkforceReturn.as_at.desc(), WorkforceReturn.version.desc())
    )
    return await paginate(session, query, page)


async def count_returns(session: AsyncSession, *, organisation_id: uuid.UUID) -> int:
    query = (
        select(func.count())
        .select_from(WorkforceReturn)
        .where(WorkforceReturn.organisation_id == organisation_id)
    )
    return int((await session.execute(query)).scalar_one())


async def get_idempotency(
    session: AsyncSession, *, api_key_id: uuid.UUID, key: str
) -> IdempotencyRecord | None:
    return await session.get(IdempotencyRecord, (api_key_id, key))


async def claim_idempotency(
    session: AsyncSession,
    *,
    api_key_id: uuid.UUID,
    key: str,
    request_sha256: str,
    in_progress: int,
) -> bool:
    """Insert the key unless it exists (no error either way); True when this call inserted it."""
    values = {
        "api_key_id": api_key_id,
        "idempotency_key": key,
        "request_sha256": request_sha256,
        "status_code": in_progress,
        "response": {},
        "created_at": utcnow(),
    }
    statement: Any
    if dialect_of(session).pg:
        statement = pg_insert(IdempotencyRecord).values(**values).on_conflict_do_nothing()
    else:
        statement = sqlite_insert(IdempotencyRecord).values(**values).on_conflict_do_nothing()
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


async def delete_staged(session: AsyncSession, *, import_id: uuid.UUID) -> None:
    await session.execute(delete(return_staging).where(return_staging.c.import_id == import_id))


def latest_dates(*, organisation_filter: Any, on: date) -> Subquery:
    """Each organisation's latest current return date at or before `on` (organisation_id,
    as_at), for organisations matching the filter."""
    return (
        select(
            WorkforceReturn.organisation_id,
            func.max(WorkforceReturn.as_at).label("as_at"),
        )
        .join(Organisation, Organisation.id == WorkforceReturn.organisation_id)
        .where(
            WorkforceReturn.status == ReturnStatus.current,
            WorkforceReturn.as_at <= on,
            organisation_filter,
        )
        .group_by(WorkforceReturn.organisation_id)
        .subquery()
    )


@dataclass(frozen=True)
class WorkforceAggregate:
    role_code: str
    role_name: str
    sector: str | None
    organisations: int
    headcount: int
    fte_in_post: float
    vacant_fte: float
    starters_12m: int
    leavers_12m: int
    sickness_days_12m: float
    agency_fte: float
    bank_fte: float


async def aggregate_latest(
    session: AsyncSession, *, organisation_filter: Any, on: date, sector: str | None = None
) -> list[WorkforceAggregate]:
    """Sum by role (with its name and sector, optionally one sector's roles only) over each
    organisation's latest current return at or before `on`."""
    latest = latest_dates(organisation_filter=organisation_filter, on=on)
    query = (
        select(
            ReturnLine.role_code,
            func.max(Role.name),
            func.max(Role.sector),
            func.count(func.distinct(WorkforceReturn.organisation_id)),
            func.sum(ReturnLine.headcount),
            func.sum(ReturnLine.fte_in_post),
            func.sum(ReturnLine.vacant_fte),
            func.sum(ReturnLine.starters_12m),
            func.sum(ReturnLine.leavers_12m),
            func.sum(ReturnLine.sickness_days_12m),
            func.sum(ReturnLine.agency_fte),
            func.sum(ReturnLine.bank_fte),
        )
        .join(WorkforceReturn, WorkforceReturn.id == ReturnLine.return_id)
        .join(
            latest,
            (latest.c.organisation_id == WorkforceReturn.organisation_id)
            & (latest.c.as_at == WorkforceReturn.as_at),
        )
        .outerjoin(Role, Role.code == ReturnLine.role_code)
        .where(WorkforceReturn.status == ReturnStatus.current)
        .group_by(ReturnLine.role_code)
        .order_by(ReturnLine.role_code)
    )
    if sector is not None:
        query = query.where(Role.sector == sector)
    rows = (await session.execute(query)).all()
    return [
        WorkforceAggregate(
            role_code=row[0],
            role_name=str(row[1] or row[0]),
            sector=None if row[2] is None else str(row[2]),
            organisations=int(row[3]),
            headcount=int(row[4] or 0),
            fte_in_post=float(row[5] or 0),
            vacant_fte=float(row[6] or 0),
            starters_12m=int(row[7] or 0),
            leavers_12m=int(row[8] or 0),
            sickness_days_12m=float(row[9] or 0),
            agency_fte=float(row[10] or 0),
            bank_fte=float(row[11] or 0),
        )
        for row in rows
    ]


async def count_registered(session: AsyncSession, *, organisation_filter: Any, on: date) -> int:
    """Organisations registered (open) at `on`."""
    query = (
        select(func.count())
        .select_from(Organisation)
        .where(organisation_filter)
        .where((Organisation.opened_on.is_(None)) | (Organisation.opened_on <= on))
    )
    return int((await session.execute(query)).scalar_one())


async def count_reporting(
    session: AsyncSession, *, organisation_filter: Any, on: date, since: date | None = None
) -> int:
    """Organisations with a current return dated at or before `on` (and after `since`)."""
    query = (
        select(func.count(func.distinct(WorkforceReturn.organisation_id)))
        .join(Organisation, Organisation.id == WorkforceReturn.organisation_id)
        .where(
            organisation_filter,
            WorkforceReturn.status == ReturnStatus.current,
            WorkforceReturn.as_at <= on,
        )
    )
    if since is not None:
        query = query.where(WorkforceReturn.as_at > since)
    return int((await session.execute(query)).scalar_one())


async def version_id(
    session: AsyncSession, *, organisation_id: uuid.UUID, as_at: date, version: int
) -> uuid.UUID | None:
    """The id of one version of an organisation's return for a date."""
    query = select(WorkforceReturn.id).where(
        WorkforceReturn.organisation_id == organisation_id,
        WorkforceReturn.as_at == as_at,
        WorkforceReturn.version == version,
    )
    found: uuid.UUID | None = (await session.execute(query)).scalar_one_or_none()
    return found
