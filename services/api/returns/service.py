"""Workforce returns: submission (with dry runs and idempotency), versions, diffs, aggregates."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.organisations.errors import OrganisationNotFound
from services.domain.projections import runs as projection_runs
from services.domain.returns import errors, rules
from services.domain.returns import importer as returns_import
from services.domain.webhooks import events as webhook_events
from shared.models import (
    Organisation,
    ReturnSource,
    WorkforceReturn,
)
from shared.repositories import audit
from shared.repositories import returns as repo
from shared.repositories.return_rules import Problem, Validation
from shared.schemas.keys import Principal
from shared.schemas.returns import (
    DryRunResult,
    FieldChange,
    LineDiff,
    ReturnDiff,
    ReturnLineRead,
    ReturnRead,
    ReturnWarningRead,
)

DIFF_FIELDS = tuple(name for name in ReturnLineRead.model_fields if name != "role_code")


async def organisation_for_returns(
    session: AsyncSession, *, principal: Principal, organisation_id: uuid.UUID
) -> Organisation:
    """The organisation whose returns this key may post and read; 404 for any other."""
    organisation = await repo.organisation_for_returns(
        session, principal=principal, organisation_id=organisation_id
    )
    if organisation is None:
        raise OrganisationNotFound("No such organisation.")
    return organisation


def _raise_problems(validation: Validation, source_kind: ReturnSource) -> None:
    if validation.total:
        raise errors.ReturnInvalid(
            f"The return has {validation.total} error(s); nothing was stored.",
            errors=[_entry(problem, source_kind) for problem in validation.in_row_order()],
            error_count=validation.total,
            errors_truncated=validation.total > len(validation.problems),
        )


def _entry(problem: Problem, source_kind: ReturnSource) -> dict[str, Any]:
    """One problem; a JSON return's also names its field (`lines.0.headcount`, `as_at`)."""
    entry = problem.as_dict()
    if source_kind == ReturnSource.json and problem.column is not None:
        if problem.row is None:
            entry["field"] = problem.column
        else:
            entry["field"] = f"lines.{problem.row - 1}.{problem.column}"
        entry["in"] = "body"
    return entry


def _check_date(
    organisation: Organisation, as_at: date, validation: Validation, *, today: date
) -> None:
    if as_at > today:
        validation.add(
            Problem(
                code=errors.AsAtInFuture.code,
                message=f"as_at {as_at} is in the future.",
                column="as_at",
                value=as_at.isoformat(),
            )
        )
    if organisation.opened_on is not None and as_at < organisation.opened_on:
        validation.add(
            Problem(
                code=errors.AsAtBeforeOrganisationOpened.code,
                message=f"as_at {as_at} is before the organisation opened "
                f"({organisation.opened_on}).",
                column="as_at",
                value=as_at.isoformat(),
            )
        )


async def submit(
    session: AsyncSession,
    *,
    principal: Principal,
    organisation: Organisation,
    as_at: date,
    rows: list[dict[str, str | int | None]],
    source_kind: ReturnSource,
    dry_run: bool,
    today: date,
    problems: Sequence[Problem] = (),
) -> ReturnRead | DryRunResult:
    """Validate a return in full (with `problems` already found in its shape); store it as the
    next version unless anything is wrong."""
    await repo.lock_organisation(session, organisation_id=organisation.id)
    import_id = uuid.uuid4()
    for row in rows:
        row["as_at"] = as_at.isoformat()
    await repo.stage_rows(session, import_id=import_id, rows=rows, organisation_id=organisation.id)
    validation = rules.validation(session, import_id, bulk=False)
    for problem in problems:
        validation.add(problem)
    _check_date(organisation, as_at, validation, today=today)
    if validation.total:
        # Already failing: report every other problem too, in the same answer.
        await validation.line_rules()
        await validation.duplicate_roles("s.organisation_id")
        _raise_problems(validation, source_kind)
    source = repo.StagedSource(import_id=import_id, bulk=False, dialect=validation.d)
    row_of = {str(row["role_code"]): int(row["line_no"] or 0) for row in rows}
    timings: dict[str, float] = {}
    # A dry run does all the work in a savepoint and rolls it back: the answer is exactly what
    # a real submission would give, and nothing stays.
    savepoint = await session.begin_nested() if dry_run else None
    try:
        stored = await returns_import.store_staged(
            session,
            validation,
            source=source,
            groups=[(organisation.id, as_at)],
            kind=source_kind,
            key_id=principal.key_id,
            timings=timings,
            row_of=row_of,
        )
    except (IntegrityError, OperationalError) as exc:
        raise errors.ConcurrentSubmission(
            "Another return for this organisation and date was stored at the same time; retry."
        ) from exc
    finally:
        if savepoint is not None:
            await savepoint.rollback()
    if stored is None:
        _raise_problems(validation, source_kind)
        raise AssertionError("a failed store reports its problems")
    return_id = stored.return_ids[(organisation.id, as_at)]
    if dry_run:
        await repo.delete_staged(session, import_id=import_id)
        return DryRunResult(
            organisation_id=organisation.id,
            as_at=as_at,
            line_count=len(rows),
            would_be_version=stored.versions[(organisation.id, as_at)],
            warnings=[
                ReturnWarningRead(
                    row=row_of.get(w["role_code"]),
                    role_code=w["role_code"],
                    column=w["column"],
                    code=w["code"],
                    message=w["message"],
                )
                for w in stored.warnings
            ],
        )
    await repo.delete_staged(session, import_id=import_id)
    await audit.record(
        session,
        key_id=principal.key_id,
        actor=principal.actor,
        action="return.submit",
        resource_type="workforce_return",
        resource_id=str(return_id),
        detail={
            "organisation_id": str(organisation.id),
            "as_at": as_at.isoformat(),
            "version": stored.versions[(organisation.id, as_at)],
            "lines": len(rows),
        },
    )
    version = stored.versions[(organisation.id, as_at)]
    superseded_id = (
        await repo.version_id(
            session, organisation_id=organisation.id, as_at=as_at, version=version - 1
        )
        if version > 1
        else None
    )
    await webhook_events.returns_stored(
        session,
        [
            webhook_events.StoredReturn(
                return_id=return_id,
                organisation_id=organisation.id,
                ics_code=organisation.ics_code,
                as_at=as_at,
                version=version,
                superseded_id=superseded_id,
            )
        ],
    )
    await projection_runs.returns_accepted(session, ics_codes=[organisation.ics_code])
    return await read_return(session, return_id=return_id)


async def read_return(session: AsyncSession, *, return_id: uuid.UUID) -> ReturnRead:
    workforce_return = await repo.get_return(session, return_id=return_id)
    if workforce_return is None:
        raise errors.ReturnNotFound("No such return.")
    return _to_read(
        workforce_return,
        await repo.lines_of(session, return_id=return_id),
        await repo.warnings_of(session, return_id=return_id),
    )


def _to_read(workforce_return: WorkforceReturn, lines: Any, warnings: Any) -> ReturnRead:
    return ReturnRead(
        id=workforce_return.id,
        organisation_id=workforce_return.organisation_id,
        as_at=workforce_return.as_at,
        version=workforce_return.version,
        status=workforce_return.status,
        source=workforce_return.source,
        submitted_at=workforce_return.submitted_at,
        line_count=workforce_return.line_count,
        warning_count=workforce_return.warning_count,
        lines=[ReturnLineRead.model_validate(line) for line in lines],
        warnings=[ReturnWarningRead.model_validate(w) for w in warnings],
    )


async def get_visible_return(
    session: AsyncSession, *, principal: Principal, return_id: uuid.UUID
) -> WorkforceReturn:
    workforce_return = await repo.get_readable_return(
        session, principal=principal, return_id=return_id
    )
    if workforce_return is None:
        raise errors.ReturnNotFound("No such return.")
    return workforce_return


async def diff(session: AsyncSession, *, principal: Principal, return_id: uuid.UUID) -> ReturnDiff:
    """What changed against the previous version for the same organisation and date."""
    current = await get_visible_return(session, principal=principal, return_id=return_id)
    previous = await repo.previous_version(session, current=current)
    now = {line.role_code: line for line in await repo.lines_of(session, return_id=current.id)}
    before = (
        {line.role_code: line for line in await repo.lines_of(session, return_id=previous.id)}
        if previous is not None
        else {}
    )
    lines: list[LineDiff] = []
    for role_code in sorted(now.keys() | before.keys()):
        if role_code not in before:
            lines.append(LineDiff(role_code=role_code, change="added"))
        elif role_code not in now:
            lines.append(LineDiff(role_code=role_code, change="removed"))
        else:
            changes = [
                FieldChange(
                    field=name,
                    previous=getattr(before[role_code], name),
                    current=getattr(now[role_code], name),
                )
                for name in DIFF_FIELDS
                if getattr(before[role_code], name) != getattr(now[role_code], name)
            ]
            if changes:
                lines.append(LineDiff(role_code=role_code, change="changed", fields=changes))
    return ReturnDiff(
        return_id=current.id,
        version=current.version,
        previous_return_id=previous.id if previous else None,
        previous_version=previous.version if previous else None,
        lines=lines,
    )
