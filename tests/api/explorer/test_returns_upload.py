"""Return upload in the Explorer: the pre-filled template, a dry-run report of exactly the
bad rows in plain English, submission, the diff, and the forms' CSRF protection."""

from __future__ import annotations

import csv
import io
import re

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.explorer.upload import FIXES, delimiter_hint, did_you_mean, header_problem
from services.api.returns.csv_format import TEMPLATE_COLUMNS
from services.domain.reference.loader import ReferenceLoadSummary
from services.domain.returns import rules
from shared.models import Role, WorkforceReturn
from shared.repositories.return_rules import Dialect
from tests.api.explorer.helpers import AS_AT, ics_with_run, sign_in
from tests.factories import ICB_A, LAD_A1, make_role
from tests.helpers import KeyFactory


def bad_rows_csv(template: str) -> tuple[str, set[int]]:
    """Five lines from the template's first one: lines 3, 5 and 6 of the file are wrong."""
    reader = list(csv.DictReader(io.StringIO(template)))
    header = list(reader[0].keys())
    good = reader[0]
    lines = [dict(good) for _ in range(5)]
    for index, code in enumerate(["expl-care-worker", "expl-nurse", "expl-extra-a",
                                  "expl-extra-b", "expl-extra-c"]):  # fmt: skip
        lines[index]["role_code"] = code
    lines[1]["fte_in_post"] = "lots"  # file line 3
    lines[3]["role_code"] = "expl-care-wroker"  # file line 5: a typo of a real code
    lines[4]["headcount"] = "-4"  # file line 6
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(lines)
    return out.getvalue(), {3, 5, 6}


def fixed_csv(text: str) -> str:
    return (
        text.replace(",lots,", ",30,")
        .replace("expl-care-wroker", "expl-extra-b")
        .replace("expl-extra-c,-4,", "expl-extra-c,40,")
    )


async def test_upload_reports_exactly_the_bad_rows_then_submits_and_shows_the_diff(
    client: httpx.AsyncClient,
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
) -> None:
    ics = await ics_with_run(
        client, app, sessionmaker, make_key, code=ICB_A, lad=LAD_A1, label="Alpha"
    )
    for code in ("expl-extra-a", "expl-extra-b", "expl-extra-c"):
        await make_role(sessionmaker, code)
    submit_key = await make_key("submit", organisation_id=ics.organisation_ids[0])
    csrf = await sign_in(client, submit_key)
    page = await client.get("/explorer/returns")
    assert page.status_code == 200
    assert ics.organisation_names[0] in page.text
    template = await client.get("/explorer/returns/template.csv")
    assert template.status_code == 200
    # Pre-filled with the last return: its two roles.
    assert "expl-care-worker" in template.text
    assert "expl-nurse" in template.text
    body, bad = bad_rows_csv(template.text)
    async with sessionmaker() as session:
        before = (await session.execute(select(func.count(WorkforceReturn.id)))).scalar_one()

    report = await client.post(
        "/explorer/returns/check",
        data={"csrf_token": csrf, "as_at": AS_AT},
        files={"file": ("return.csv", body.encode(), "text/csv")},
    )
    assert report.status_code == 422
    rows = {int(r) for r in re.findall(r'<tr data-row="(\d+)"', report.text)}
    assert rows == bad
    assert "Did you mean &#39;expl-care-worker&#39;" in report.text
    assert "Type a number here" in report.text
    assert "Figures cannot be negative" in report.text
    async with sessionmaker() as session:
        after = (await session.execute(select(func.count(WorkforceReturn.id)))).scalar_one()
    assert after == before

    semicolons = body.replace(",", ";")
    hinted = await client.post(
        "/explorer/returns/check",
        data={"csrf_token": csrf, "as_at": AS_AT},
        files={"file": ("return.csv", semicolons.encode(), "text/csv")},
    )
    assert hinted.status_code == 422
    assert "separated by semicolons" in hinted.text
    # In plain words: what is wrong with the first line and how to save the file, not the
    # API's list of every column name.
    assert "The columns are not separated by commas" in hinted.text
    assert "CSV UTF-8 (comma delimited)" in hinted.text
    assert "The header must be exactly" not in hinted.text
    assert "1 problem to put right" in hinted.text
    assert "problem(s)" not in report.text
    assert "3 problems to put right" in report.text
    # A data clerk is not told to call the API for the role catalogue.
    assert "GET /v1/roles" not in report.text
    assert "&#39;expl-care-wroker&#39; is not a role code in the catalogue" in report.text

    ready = await client.post(
        "/explorer/returns/check",
        data={"csrf_token": csrf, "as_at": AS_AT},
        files={"file": ("return.csv", fixed_csv(body).encode(), "text/csv")},
    )
    assert ready.status_code == 200, ready.text
    assert "ready to submit" in ready.text
    csv_b64 = re.search(r'name="csv_b64" value="([^"]+)"', ready.text)
    assert csv_b64 is not None
    refused = await client.post(
        "/explorer/returns/submit", data={"as_at": AS_AT, "csv_b64": csv_b64.group(1)}
    )
    assert refused.status_code == 403
    stored = await client.post(
        "/explorer/returns/submit",
        data={"csrf_token": csrf, "as_at": AS_AT, "csv_b64": csv_b64.group(1)},
    )
    assert stored.status_code == 303
    diff = await client.get(stored.headers["location"])
    assert diff.status_code == 200
    assert "version 2" in diff.text
    assert "expl-extra-a" in diff.text
    assert "added" in diff.text
    async with sessionmaker() as session:
        final = (await session.execute(select(func.count(WorkforceReturn.id)))).scalar_one()
    assert final == before + 1


async def test_upload_needs_a_submit_key_and_the_csrf_token(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_key: KeyFactory,
) -> None:
    reader = await make_key("read", ics_code=ICB_A)
    csrf = await sign_in(client, reader)
    assert (await client.get("/explorer/returns")).status_code == 403
    refused = await client.post(
        "/explorer/returns/check",
        data={"as_at": AS_AT},
        files={"file": ("return.csv", b"role_code\r\n", "text/csv")},
    )
    assert refused.status_code == 403
    not_allowed = await client.post(
        "/explorer/returns/check",
        data={"csrf_token": csrf, "as_at": AS_AT},
        files={"file": ("return.csv", b"role_code\r\n", "text/csv")},
    )
    assert not_allowed.status_code == 403


def test_plain_english_helpers() -> None:
    assert delimiter_hint(b"role_code;headcount;fte_in_post\r\n") is not None
    assert "tabs" in (delimiter_hint(b"role_code\theadcount\tfte_in_post\r\n") or "")
    assert delimiter_hint(b"role_code,headcount,fte_in_post\r\n") is None
    catalogue = {
        "care-worker": Role(code="care-worker", name="Care worker"),
        "nurse-adult": Role(code="nurse-adult", name="Adult nurse"),
    }
    assert did_you_mean("care-wroker", catalogue) == ["care-worker"]
    assert did_you_mean("adult nurse", catalogue) == ["nurse-adult"]
    assert did_you_mean("zzz", catalogue) == []


def test_every_rule_of_a_return_has_a_fix_in_plain_words() -> None:
    dialect = Dialect("sqlite")
    codes = {
        rule.code
        for rule in [
            *rules.type_rules(dialect),
            *rules.business_rules(dialect, lambda c: c, lambda c: c),
        ]
    }
    assert codes - set(FIXES) == set()


def test_a_wrong_first_line_is_explained() -> None:
    header = ",".join(TEMPLATE_COLUMNS[:5]).replace("headcount", "head_count")
    problem = header_problem(f"{header}\r\ncare-worker,1,1,0,0\r\n".encode())
    assert "Missing: headcount" in problem
    assert "Not in the template: head_count" in problem
    swapped = ["headcount", "role_code", *TEMPLATE_COLUMNS[2:]]
    assert "different order" in header_problem(",".join(swapped).encode())
    assert "not separated by commas" in header_problem(";".join(TEMPLATE_COLUMNS).encode())
