"""Bulk imports of many organisations' returns: 202 + job, set-based validation, all or nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.models import ReturnLine, WorkforceReturn
from tests.api.returns.helpers import counts, line
from tests.factories import ICB_A, LAD_B1, ensure_small_geography, make_organisation, make_role
from tests.helpers import KeyFactory, assert_problem

BULK = ("organisation_code", "as_at")


def bulk_csv(rows: list[tuple[str, str, dict[str, Any]]]) -> bytes:
    from shared.vocab.return_lines import BULK_COLUMNS

    out = [",".join(BULK_COLUMNS)]
    for code, as_at, values in rows:
        merged = {"organisation_code": code, "as_at": as_at, **values}
        out.append(",".join("" if merged.get(c) is None else str(merged[c]) for c in BULK_COLUMNS))
    return ("\r\n".join(out) + "\r\n").encode()


@pytest.fixture
async def orgs(sessionmaker: async_sessionmaker[AsyncSession], db: object) -> dict[str, uuid.UUID]:
    await ensure_small_geography(sessionmaker)
    for code in ("care-worker", "registered-nurse"):
        await make_role(sessionmaker, code)
    a = await make_organisation(sessionmaker, ods_code="RBT")
    b = await make_organisation(sessionmaker, cqc_location_id="1-101010101")
    c = await make_organisation(
        sessionmaker, ods_code="RXX", home_lad_code=LAD_B1, ics_code="E54000050"
    )
    return {"RBT": a.id, "1-101010101": b.id, "RXX": c.id}


async def _run(
    app: FastAPI, client: httpx.AsyncClient, body: bytes, headers: dict[str, str]
) -> dict[str, Any]:
    accepted = await client.post(
        "/v1/imports/returns", content=body, headers={**headers, "Content-Type": "text/csv"}
    )
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "queued"
    assert accepted.headers["retry-after"].isdigit()
    await app.state.sender.join()
    status = await client.get(accepted.headers["location"], headers=headers)
    result: dict[str, Any] = status.json()
    return result


async def test_bulk_import_loads_every_organisation(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    orgs: dict[str, uuid.UUID],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    admin = await make_key("admin")
    rows = [
        ("RBT", "2025-03-31", line()),
        ("RBT", "2025-03-31", line("registered-nurse")),
        ("1-101010101", "2025-03-31", line()),
        ("RXX", "2024-12-31", line(leavers_12m=30, leavers_to_health_care_12m=1)),
    ]
    result = await _run(app, client, bulk_csv(rows), admin)
    assert result["status"] == "succeeded", result
    assert result["line_count"] == 4
    assert result["return_count"] == 3
    assert await counts(sessionmaker) == (3, 4, 0)
    async with sessionmaker() as session:
        stored = (
            await session.execute(
                select(WorkforceReturn).where(WorkforceReturn.organisation_id == orgs["RXX"])
            )
        ).scalar_one()
        lines = (await session.execute(select(ReturnLine))).scalars().all()
    assert stored.source == "bulk"
    assert stored.warning_count == 1
    assert sorted(line.fte_in_post for line in lines) == [32.5] * 4
    again = await _run(app, client, bulk_csv(rows[:1]), admin)
    assert again["status"] == "succeeded"
    async with sessionmaker() as session:
        versions = (
            await session.execute(
                select(WorkforceReturn.version, WorkforceReturn.status, WorkforceReturn.line_count)
                .where(WorkforceReturn.organisation_id == orgs["RBT"])
                .order_by(WorkforceReturn.version)
            )
        ).all()
    assert [tuple(v) for v in versions] == [(1, "superseded", 2), (2, "current", 1)]


async def test_bad_lines_fail_the_whole_import_by_row(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    orgs: dict[str, uuid.UUID],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    admin = await make_key("admin")
    rows = [
        ("RBT", "2025-03-31", line()),
        ("NOPE", "2025-03-31", line()),  # line 3
        ("RBT", "2025-02-30", line("registered-nurse")),  # line 4
        ("1-101010101", "2025-03-31", line(headcount=-2)),  # line 5
        ("RBT", "2025-03-31", line()),  # line 6: duplicate role in RBT's return
    ]
    result = await _run(app, client, bulk_csv(rows), admin)
    assert result["status"] == "failed"
    found = {(e["row"], e["code"]) for e in result["errors"]}
    assert found == {
        (3, "unknown_organisation"),
        (4, "invalid_date"),
        (5, "negative_value"),
        (6, "duplicate_role_line"),
    }
    assert result["error_count"] == len(result["errors"])
    assert await counts(sessionmaker) == (0, 0, 0)


async def test_bad_header_and_access(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    orgs: dict[str, uuid.UUID],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    admin = await make_key("admin", ics_code=ICB_A)
    wrong = b"org,as_at,role\r\nRBT,2025-03-31,x\r\n"
    response = await client.post(
        "/v1/imports/returns", content=wrong, headers={**admin, "Content-Type": "text/csv"}
    )
    assert_problem(response, 422, "csv_header_mismatch")
    assert await counts(sessionmaker) == (0, 0, 0)
    reader = await make_key("read")
    response = await client.post(
        "/v1/imports/returns", content=bulk_csv([]), headers={**reader, "Content-Type": "text/csv"}
    )
    assert_problem(response, 403, "insufficient_scope")
    result = await _run(app, client, bulk_csv([("RXX", "2025-03-31", line())]), admin)
    assert result["status"] == "failed"
    # Another ICS's organisation is answered as one that does not exist.
    assert [e["code"] for e in result["errors"]] == ["unknown_organisation"]
    assert_problem(
        await client.get(f"/v1/imports/{result['id']}", headers=reader), 403, "insufficient_scope"
    )
    other = await make_key("admin", ics_code="E54000050")
    assert_problem(
        await client.get(f"/v1/imports/{result['id']}", headers=other), 404, "import_not_found"
    )


async def test_a_header_short_of_a_core_column_is_refused(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    orgs: dict[str, uuid.UUID],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Only optional columns may be left off the end: a header that also drops a core column
    is refused before anything is stored."""
    from shared.vocab.return_lines import BULK_CORE_COLUMNS

    admin = await make_key("admin", ics_code=ICB_A)
    columns = BULK_CORE_COLUMNS[:-1]
    fields = {"organisation_code": "RBT", "as_at": "2025-03-31", **line()}
    body = ",".join(columns) + "\r\n" + ",".join(str(fields.get(c, "")) for c in columns)
    response = await client.post(
        "/v1/imports/returns",
        content=(body + "\r\n").encode(),
        headers={**admin, "Content-Type": "text/csv"},
    )
    assert_problem(response, 422, "csv_header_mismatch")
    assert await counts(sessionmaker) == (0, 0, 0)


def test_cli_import_returns(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "LOG_JSON": "false"}
    owf = str(Path(sys.executable).with_name("oneworkforce"))
    assert subprocess.run([owf, "migrate"], env=env, capture_output=True).returncode == 0
    bad = tmp_path / "bad.csv"
    bad.write_bytes(bulk_csv([("NOPE", "2025-03-31", line())]))
    result = subprocess.run(
        [owf, "import-returns", str(bad)], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "unknown_organisation" in result.stderr
    assert "nothing was loaded" in result.stderr


async def test_a_malformed_last_line_fails_the_upload(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    orgs: dict[str, uuid.UUID],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    admin = await make_key("admin")
    # The file ends without a newline on a line with too few fields.
    body = bulk_csv([("RBT", "2025-03-31", line())]) + b"RBT,2025-03-31,care-worker,1"
    response = await client.post(
        "/v1/imports/returns", content=body, headers={**admin, "Content-Type": "text/csv"}
    )
    assert_problem(response, 422, "csv_malformed")
    assert await counts(sessionmaker) == (0, 0, 0)
