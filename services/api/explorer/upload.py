"""Return upload for a data clerk: the pre-filled template, a dry run reported row by row in
plain English (with "did you mean" for role codes and a hint for files separated by
semicolons or tabs), the submission and the diff with the previous version. Parsing, the
rules, the dry run and the diff are the returns API's own."""

from __future__ import annotations

import csv
import difflib
import io
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.explorer.errors import SubmitKeyRequired
from services.api.http import PageParams
from services.api.returns import csv_format
from services.api.returns import service as returns
from shared.db.base import utcnow
from shared.errors import Unprocessable
from shared.models import Organisation, ReturnSource, Role
from shared.repositories import returns as returns_repo
from shared.repositories import roles as roles_repo
from shared.schemas.keys import Principal
from shared.schemas.returns import DryRunResult, ReturnRead
from shared.vocab.return_lines import OPTIONAL_TAIL

# How to put each problem right, in words a data clerk uses.
FIXES: dict[str, str] = {
    "required": "Fill in this cell: it cannot be left empty.",
    "not_a_number": "Type a number here, with no words, units or commas (for example 32.5).",
    "not_an_integer": "Type a whole number of people here (no decimals).",
    "negative_value": "Figures cannot be negative: use 0 if there are none.",
    "unknown_role": "Use a role code from the catalogue (the template lists the codes you used "
    "last time).",
    "duplicate_role_line": "Each role may appear on one line only: add the figures together "
    "onto one line.",
    "fte_exceeds_headcount": "FTE in post cannot be more than 1.2 x headcount: check that FTE "
    "is in full-time equivalents, not hours.",
    "age_bands_mismatch": "The six age-band headcounts must add up to the headcount.",
    "leavers_exceed_headcount": "Leavers in the last 12 months cannot be more than headcount "
    "plus starters.",
    "leavers_to_health_care_exceed_leavers": "Leavers to other health and care employers are "
    "part of all leavers, so cannot be more than them.",
    "vacancies_implausible": "Vacant FTE is more than the posts filled: check it is in FTE.",
    "sickness_days_implausible": "Sickness days cannot be more than 365 per person: check it "
    "is days lost in the last 12 months, for all staff in this role together.",
    "as_at_in_future": "The date of the return cannot be in the future.",
    "as_at_before_organisation_opened": "The date is before your organisation opened.",
    "number_out_of_range": "This figure is larger than any organisation could have: check it "
    "is for this role only and in the unit of its column (people, FTE or days).",
    "ethnicity_breakdown_mismatch": "The ethnicity columns count people: fill in all of them, "
    "adding up to the headcount, or leave them all empty.",
    "disability_breakdown_mismatch": "The disability columns count people: fill in all of them, "
    "adding up to the headcount, or leave them all empty.",
    "sex_breakdown_mismatch": "The sex columns count people: fill in all of them, adding up to "
    "the headcount, or leave them all empty.",
    "afc_band_breakdown_mismatch": "The Agenda for Change band columns count people: fill in "
    "all of them, adding up to the headcount, or leave them all empty.",
    "afc_bands_not_nhs_role": "Leave the Agenda for Change band columns empty for this role: "
    "they are for NHS roles only.",
    "control_character": "Remove the hidden character from this line (often pasted in from "
    "another program), or retype the line.",
    "csv_line_too_long": "The file may have lost its line breaks: save it again from your "
    "spreadsheet as 'CSV UTF-8 (comma delimited)'.",
    "csv_not_comma_separated": "Save the file as 'CSV UTF-8 (comma delimited)' (in Excel: File "
    "> Save As), then upload it again.",
    "csv_header_mismatch": "Start again from the template: the first line must be its column "
    "names, exactly and in the same order.",
    "csv_wrong_field_count": "This line has a different number of cells from the header: check "
    "for a stray comma, or a comma inside a number (write 1200, not 1,200).",
    "csv_malformed": "This line cannot be read: check for unmatched quote marks.",
    "csv_not_utf8": "Save the file as 'CSV UTF-8 (comma delimited)'.",
    "csv_empty": "The file has no lines of figures under the header.",
}


@dataclass(frozen=True)
class ReportRow:
    row: int | None
    role_code: str | None
    column: str | None
    value: str | None
    problem: str
    fix: str
    code: str


@dataclass
class Report:
    """The dry run's answer, as the page shows it."""

    as_at: date
    valid: bool
    summary: str
    problems: list[ReportRow] = field(default_factory=list)
    warnings: list[ReportRow] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    line_count: int = 0
    would_be_version: int | None = None

    @property
    def problem_rows(self) -> list[int]:
        return sorted({p.row for p in self.problems if p.row is not None})


def delimiter_hint(body: bytes) -> str | None:
    """A plain hint when the file uses semicolons or tabs instead of commas."""
    first = body[:4096].decode("utf-8", errors="replace").splitlines()[:1]
    if not first:
        return None
    header = first[0]
    if header.count(",") >= 2:
        return None
    for mark, name in ((";", "semicolons (;)"), ("\t", "tabs")):
        if header.count(mark) >= 2:
            return (
                f"Your file is separated by {name}, not commas. In your spreadsheet choose "
                "'Save as' > 'CSV UTF-8 (comma delimited)', or download the template again."
            )
    return None


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _first_line(body: bytes) -> str:
    text = body[:8192].decode("utf-8", errors="replace").removeprefix("\ufeff")
    return text.splitlines()[0] if text else ""


def header_problem(body: bytes) -> str:
    """What is wrong with the file's first line, in plain words (the API's message lists the
    whole header, which says little to someone holding a spreadsheet)."""
    if delimiter_hint(body):
        return (
            "The columns are not separated by commas, so the first line cannot be read as "
            "the template's column names (see the hint above)."
        )
    names = [name.strip() for name in next(csv.reader([_first_line(body)]), [])]
    expected = csv_format.TEMPLATE_COLUMNS
    missing = [n for n in expected if n not in names and n not in OPTIONAL_TAIL]
    unknown = [n for n in names if n and n not in expected]
    problem = "The first line does not match the template's column names."
    if missing:
        problem += f" Missing: {', '.join(missing)}."
    if unknown:
        problem += f" Not in the template: {', '.join(unknown)}."
    if not missing and not unknown:
        problem += " The columns are in a different order from the template."
    return problem


def did_you_mean(value: str, catalogue: dict[str, Role]) -> list[str]:
    """Role codes close to a wrong one, by code and by name."""
    text = value.strip().lower()
    if not text:
        return []
    by_code = difflib.get_close_matches(text, list(catalogue), n=3, cutoff=0.6)
    names = {role.name.lower(): code for code, role in catalogue.items()}
    by_name = [
        names[name]
        for name in difflib.get_close_matches(text.replace("-", " "), list(names), n=2, cutoff=0.6)
    ]
    return list(dict.fromkeys(by_code + by_name))[:3]


def _role_of_row(rows: list[dict[str, str | int | None]], row: int | None) -> str | None:
    for line in rows:
        if line.get("line_no") == row:
            value = line.get("role_code")
            return None if value is None else str(value)
    return None


def _report_row(
    problem: dict[str, Any],
    rows: list[dict[str, str | int | None]],
    catalogue: dict[str, Role],
    body: bytes,
) -> ReportRow:
    code = str(problem.get("code", "invalid"))
    row = problem.get("row")
    value = problem.get("value")
    message = str(problem.get("message", code))
    fix = FIXES.get(code, "Check this figure against your records and correct it.")
    if code == "unknown_role" and value:
        # The API's message points at its own catalogue endpoint; a clerk needs the fix.
        message = f"{str(value)!r} is not a role code in the catalogue."
        suggestions = did_you_mean(str(value), catalogue)
        if suggestions:
            fix = f"Did you mean {' or '.join(repr(s) for s in suggestions)}? " + fix
    elif code == "csv_header_mismatch":
        message = header_problem(body)
        first = _first_line(body)
        value = first if len(first) <= 60 else first[:57] + "..."
        if delimiter_hint(body):
            fix = FIXES["csv_not_comma_separated"]
    return ReportRow(
        row=row if isinstance(row, int) else None,
        role_code=_role_of_row(rows, row) or problem.get("role_code"),
        column=problem.get("column") or problem.get("field"),
        value=None if value is None else str(value),
        problem=message,
        fix=fix,
        code=code,
    )


async def check(
    session: AsyncSession,
    *,
    principal: Principal,
    organisation: Organisation,
    as_at: date,
    body: bytes,
) -> Report:
    """Dry-run an uploaded CSV and report every problem by row and column."""
    catalogue = {role.code: role for role in await roles_repo.all_roles(session)}
    hint = delimiter_hint(body)
    rows: list[dict[str, str | int | None]] = []
    # A failed check leaves staged rows behind in the transaction: roll them back, so the
    # page's own commit stores nothing, exactly as the API's dry run.
    savepoint = await session.begin_nested()
    try:
        rows = csv_format.parse(body, csv_format.TEMPLATE_COLUMNS)
        result = await returns.submit(
            session,
            principal=principal,
            organisation=organisation,
            as_at=as_at,
            rows=[dict(row) for row in rows],
            source_kind=ReturnSource.csv,
            dry_run=True,
            today=utcnow().date(),
        )
    except Unprocessable as exc:
        await savepoint.rollback()
        problems = [_report_row(p, rows, catalogue, body) for p in (exc.errors or [])]
        count = int(exc.extra.get("error_count", len(problems)))
        return Report(
            as_at=as_at,
            valid=False,
            summary=f"{_count(count, 'problem')} to put right; nothing has been stored."
            if problems
            else exc.message,
            problems=problems,
            hints=[hint] if hint else [],
            line_count=len(rows),
        )
    await savepoint.rollback()
    assert isinstance(result, DryRunResult)
    passing = "The line passes" if result.line_count == 1 else f"All {result.line_count} lines pass"
    return Report(
        as_at=as_at,
        valid=True,
        summary=f"{passing} every check. Nothing is stored until you submit.",
        warnings=[
            ReportRow(
                row=w.row,
                role_code=w.role_code,
                column=w.column,
                value=None,
                problem=w.message,
                fix="A warning only: check the figure, then submit if it is right.",
                code=w.code,
            )
            for w in result.warnings
        ],
        line_count=result.line_count,
        would_be_version=result.would_be_version,
    )


async def submit(
    session: AsyncSession,
    *,
    principal: Principal,
    organisation: Organisation,
    as_at: date,
    body: bytes,
) -> ReturnRead:
    """Store the checked CSV as the organisation's next return version."""
    rows = csv_format.parse(body, csv_format.TEMPLATE_COLUMNS)
    result = await returns.submit(
        session,
        principal=principal,
        organisation=organisation,
        as_at=as_at,
        rows=rows,
        source_kind=ReturnSource.csv,
        dry_run=False,
        today=utcnow().date(),
    )
    assert isinstance(result, ReturnRead)
    return result


async def organisation_of(session: AsyncSession, *, principal: Principal) -> Organisation:
    """The organisation a submit key posts returns for."""
    if principal.organisation_id is None:
        raise SubmitKeyRequired(
            "Returns are uploaded with a submit key bound to one organisation. Sign in with "
            "your organisation's key."
        )
    return await returns.organisation_for_returns(
        session, principal=principal, organisation_id=principal.organisation_id
    )


async def prefilled_template(
    session: AsyncSession, *, principal: Principal, organisation: Organisation
) -> bytes:
    """The template with the organisation's latest current return, or the example line."""
    latest, _ = await returns_repo.list_returns(
        session,
        principal=principal,
        organisation_id=organisation.id,
        as_at=None,
        include_superseded=False,
        page=PageParams(page=1, limit=1),
    )
    if not latest:
        return csv_format.template().encode("utf-8")
    lines = await returns_repo.lines_of(session, return_id=latest[0].id)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(csv_format.TEMPLATE_COLUMNS)
    for line in lines:
        writer.writerow(
            ["" if getattr(line, c) is None else _plain(getattr(line, c)) for c in
             csv_format.TEMPLATE_COLUMNS]
        )  # fmt: skip
    return buffer.getvalue().encode("utf-8")


def _plain(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


async def history(
    session: AsyncSession, *, principal: Principal, organisation: Organisation
) -> list[Any]:
    items, _ = await returns_repo.list_returns(
        session,
        principal=principal,
        organisation_id=organisation.id,
        as_at=None,
        include_superseded=True,
        page=PageParams(page=1, limit=50),
    )
    return list(items)
