"""Results as streamed exports (CSV, JSON, NDJSON, xlsx) and the HTTP conventions on
run-derived reads: 409 while a run computes, ETag/304 and immutable caching, gzip, 406, 422
on unknown filters, rounding, role names and sectors, paging headers."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
import uuid
from typing import Any

import httpx
import numpy as np
import openpyxl
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.domain.projections import runs as projection_runs
from shared.db.base import utcnow
from shared.db.session import transaction
from shared.models import ProjectionRun, RunStatus
from shared.repositories import projections as projections_repo
from tests.factories import ICB_A, ICB_B, LAD_A1, LAD_A2, ensure_small_geography, make_role
from tests.helpers import KeyFactory, assert_problem

MEASURES = ("demand_fte", "supply_fte", "gap_fte")


def _series_block(rows: list[tuple[Any, ...]]) -> projections_repo.SeriesBlock:
    """Series of one run from (run, area, role, measure, first year, principal, p10, p50,
    p90) tuples, each figure a list by year."""
    return projections_repo.SeriesBlock(
        run_id=rows[0][0],
        first_year=int(rows[0][4]),
        keys=[(row[1], row[2], row[3]) for row in rows],
        figures=np.array([row[5:9] for row in rows], dtype=np.float64),
    )


async def make_run(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    roles: list[str],
    status: RunStatus = RunStatus.succeeded,
    scope: str = ICB_A,
    areas: tuple[str, ...] = (ICB_A, LAD_A1, LAD_A2),
    years: range = range(2025, 2031),
    progress: float = 1.0,
) -> ProjectionRun:
    """A run with result series written as the projector writes them (COPY on PostgreSQL);
    the principal differs in every (area, role, measure, year)."""
    await ensure_small_geography(sessionmaker)
    async with transaction(sessionmaker) as session:
        scenario = await projection_runs.baseline(session)
        run = ProjectionRun(
            scenario_id=scenario.id,
            scenario_name=scenario.name,
            scenario_version=scenario.version,
            scope=scope,
            ics_code=scope if scope != "E92000001" else None,
            base_year=years[0],
            horizon=len(years) - 1,
            iterations=10,
            seed=1,
            status=status,
            progress=progress,
            attempts=1,
            finished_at=utcnow() if status == RunStatus.succeeded else None,
            fingerprint="f" * 64,
            fingerprint_parts={"returns": [[str(uuid.uuid4()), 1] for _ in range(3)]},
        )
        await projections_repo.add_run(session, run)
        n = len(years)
        series = [
            (
                run.id,
                area,
                role,
                measure,
                years[0],
                [1000.0 / 3 + index * n + t for t in range(n)],
                [300.004] * n,
                [333.336] * n,
                [1506.2 - 1e-9] * n,
            )
            for index, (area, role, measure) in enumerate(
                itertools.product(areas, [*roles, "all"], MEASURES)
            )
        ]
        await projections_repo.write_results(session, _series_block(series))
    return run


@pytest.fixture
async def roles(app: FastAPI) -> list[str]:
    sessionmaker = app.state.sessionmaker
    return [
        (await make_role(sessionmaker, "exp-care-worker", sector="social_care")).code,
        (await make_role(sessionmaker, "exp-nurse", sector="health")).code,
    ]


def _rows_per_area(roles: list[str]) -> int:
    return (len(roles) + 1) * len(MEASURES) * 6


async def test_results_rows_carry_role_name_sector_and_rounded_figures(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyFactory, roles: list[str]
) -> None:
    admin = await make_key("admin")
    run = await make_run(app.state.sessionmaker, roles=roles)
    response = await client.get(
        f"/v1/projections/{run.id}/results",
        params={"area": ICB_A, "role": roles[1], "measure": "demand_fte", "limit": 3},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 6
    first = body["items"][0]
    assert first["role_code"] == roles[1]
    assert first["role_name"]
    assert first["sector"] == "health"
    assert first["p10"] == 300.0
    assert first["p50"] == 333.34  # half away from zero
    assert first["p90"] == 1506.2
    assert first["principal"] == round(first["principal"], 2)
    # Paging headers: total and RFC 8288 links that keep the filters.
    assert response.headers["x-total-count"] == "6"
    link = response.headers["link"]
    assert 'rel="next"' in link
    assert 'rel="last"' in link
    assert 'rel="prev"' not in link
    assert "page=2" in link
    assert f"role={roles[1]}" in link
    second = await client.get(
        f"/v1/projections/{run.id}/results",
        params={"area": ICB_A, "role": roles[1], "measure": "demand_fte", "limit": 3, "page": 2},
        headers=admin,
    )
    assert 'rel="prev"' in second.headers["link"]
    assert 'rel="next"' not in second.headers["link"]

    # Several roles in one call; a sector filter; the 'all' row names itself.
    several = await client.get(
        f"/v1/projections/{run.id}/results",
        params=[("area", ICB_A), ("role", roles[0]), ("role", "all"), ("limit", 500)],
        headers=admin,
    )
    assert {item["role_code"] for item in several.json()["items"]} == {roles[0], "all"}
    total_row = next(item for item in several.json()["items"] if item["role_code"] == "all")
    assert total_row["role_name"] == "All roles"
    assert total_row["sector"] is None
    health = await client.get(
        f"/v1/projections/{run.id}/results",
        params={"sector": "health", "limit": 500},
        headers=admin,
    )
    assert {item["role_code"] for item in health.json()["items"]} == {roles[1]}


async def test_unknown_filters_are_422_and_unknown_accept_is_406(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyFactory, roles: list[str]
) -> None:
    admin = await make_key("admin")
    run = await make_run(app.state.sessionmaker, roles=roles)
    base = f"/v1/projections/{run.id}"
    problem = assert_problem(
        await client.get(f"{base}/results", params=[("role", "nope"), ("role", "nada")],
                         headers=admin),
        422,
        "unknown_role",
    )  # fmt: skip
    assert [error["message"] for error in problem["errors"]] == ["no role 'nope'", "no role 'nada'"]
    for path in ("/results", "/export"):
        assert_problem(
            await client.get(f"{base}{path}", params={"sector": "space"}, headers=admin),
            422,
            "validation_failed",
        )
        assert_problem(
            await client.get(f"{base}{path}", params={"measure": "joy_fte"}, headers=admin),
            422,
            "validation_failed",
        )
    assert_problem(
        await client.get(f"{base}/explain", params={"role": "nope"}, headers=admin),
        422,
        "unknown_role",
    )
    assert_problem(
        await client.get(
            f"/v1/areas/{ICB_A}/projections/latest", params={"role": "nope"}, headers=admin
        ),
        422,
        "unknown_role",
    )
    # Accept names nothing we produce: 406, on negotiating routes and on JSON-only ones.
    for path in (f"{base}/results", f"{base}/export", "/v1/roles", base):
        refused = assert_problem(
            await client.get(path, headers={**admin, "Accept": "application/xml"}),
            406,
            "not_acceptable",
        )
        assert refused["available"]
    # ... while wildcards and q-values are honoured.
    ok = await client.get(
        f"{base}/results", headers={**admin, "Accept": "application/xml, text/*;q=0.5"}
    )
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith("text/csv")


async def test_results_of_a_run_not_finished_are_409_with_status_and_progress(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyFactory, roles: list[str]
) -> None:
    admin = await make_key("admin")
    sessionmaker = app.state.sessionmaker
    running = await make_run(sessionmaker, roles=roles, status=RunStatus.running, progress=0.4)
    for path in ("/results", "/export", "/explain", "/fingerprint"):
        for params in ({}, {"format": "csv"}):
            response = await client.get(
                f"/v1/projections/{running.id}{path}", params=params, headers=admin
            )
            body = assert_problem(response, 409, "run_not_finished")
            assert body["run_status"] == "running"
            assert body["progress"] == 0.4
            assert response.headers["retry-after"].isdigit()
    status = await client.get(f"/v1/projections/{running.id}", headers=admin)
    assert status.headers["retry-after"].isdigit()
    assert status.headers["cache-control"] == "private, no-cache"
    failed = await make_run(sessionmaker, roles=roles, status=RunStatus.failed, progress=0.2)
    body = assert_problem(
        await client.get(f"/v1/projections/{failed.id}/results", headers=admin),
        409,
        "run_not_succeeded",
    )
    assert body["run_status"] == "failed"
    # A key that may not see the run still gets 404, not the run's status.
    other = await make_key("read", ics_code=ICB_B)
    assert_problem(
        await client.get(f"/v1/projections/{running.id}/results", headers=other),
        404,
        "projection_not_found",
    )


async def test_exports_stream_every_row_in_each_format(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyFactory, roles: list[str]
) -> None:
    admin = await make_key("admin")
    run = await make_run(app.state.sessionmaker, roles=roles)
    per_area = _rows_per_area(roles)
    export = f"/v1/projections/{run.id}/export"

    as_csv = await client.get(export, params={"format": "csv"}, headers=admin)
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.headers["content-disposition"] == (
        f'attachment; filename="projection-{run.id}.csv"'
    )
    assert as_csv.content.count(b"\r\n") == 3 * per_area + 1
    records = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert len(records) == 3 * per_area
    assert list(records[0]) == list(projections_repo.RESULT_EXPORT_COLUMNS)
    assert records[0]["p10"] == "300"
    assert records[0]["p50"] == "333.34"
    assert records[0]["p90"] == "1506.2"
    assert all(r["sector"] == "" for r in records if r["role_code"] == "all")
    # The same bytes from /results with Accept: text/csv, and a BOM for Excel on request.
    negotiated = await client.get(
        f"/v1/projections/{run.id}/results", headers={**admin, "Accept": "text/csv"}
    )
    assert negotiated.content == as_csv.content
    assert negotiated.headers["vary"] == "Accept, Accept-Encoding"
    with_bom = await client.get(export, params={"format": "csv", "bom": "true"}, headers=admin)
    assert with_bom.content == b"\xef\xbb\xbf" + as_csv.content

    as_json = await client.get(export, headers=admin)
    assert as_json.headers["content-type"] == "application/json"
    rows = as_json.json()
    assert len(rows) == 3 * per_area
    assert list(rows[0]) == list(projections_repo.RESULT_EXPORT_COLUMNS)
    for key in ("area_code", "role_code", "role_name", "measure"):
        assert rows[0][key] == records[0][key]
    assert rows[0]["p50"] == 333.34
    assert rows[0]["year"] == 2025

    as_ndjson = await client.get(export, headers={**admin, "Accept": "application/x-ndjson"})
    assert as_ndjson.headers["content-type"] == "application/x-ndjson"
    lines = as_ndjson.content.splitlines()
    assert [json.loads(line) for line in lines] == rows

    filtered = await client.get(
        export, params={"format": "ndjson", "area": LAD_A1, "measure": "gap_fte"}, headers=admin
    )
    assert len(filtered.content.splitlines()) == (len(roles) + 1) * 6

    as_xlsx = await client.get(export, params={"format": "xlsx"}, headers=admin)
    assert as_xlsx.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(as_xlsx.content), read_only=True)
    assert book.sheetnames == ["Results", "About"]
    sheet_rows = list(book["Results"].iter_rows(values_only=True))
    assert list(sheet_rows[0]) == list(projections_repo.RESULT_EXPORT_COLUMNS)
    assert len(sheet_rows) == 3 * per_area + 1
    assert sheet_rows[1][7] == 300.0
    about = {str(row[0]): row[1] for row in book["About"].iter_rows(min_row=2, values_only=True)}
    assert about["Scenario"] == "baseline (version 1)"
    assert "FTE" in str(about["Units"])
    assert "ONS" in str(about["Sources"])


async def test_run_derived_reads_have_etags_immutable_caching_and_gzip(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyFactory, roles: list[str]
) -> None:
    # httpx asks for gzip unless told otherwise; the identity form carries the strong ETag.
    admin = {**await make_key("admin"), "Accept-Encoding": "identity"}
    run = await make_run(app.state.sessionmaker, roles=roles)
    base = f"/v1/projections/{run.id}"
    for path, params in (
        ("/results", {}),
        ("/results", {"format": "csv"}),
        ("/export", {"format": "ndjson"}),
        ("/fingerprint", {}),
    ):
        first = await client.get(f"{base}{path}", params=params, headers=admin)
        assert first.status_code == 200, (path, first.text)
        etag = first.headers["etag"]
        assert not etag.startswith("W/")
        assert first.headers["cache-control"] == "private, max-age=31536000, immutable"
        again = await client.get(
            f"{base}{path}", params=params, headers={**admin, "If-None-Match": etag}
        )
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etag
    fingerprint = (await client.get(f"{base}/fingerprint", headers=admin)).json()
    assert len(fingerprint["parts"]["returns"]) == 3
    # The run object links to its fingerprint instead of inlining it, and revalidates.
    status = await client.get(base, headers=admin)
    assert "fingerprint_parts" not in status.json()
    assert status.json()["links"]["fingerprint"] == f"{base}/fingerprint"
    assert status.headers["cache-control"] == "private, no-cache"
    assert (
        await client.get(base, headers={**admin, "If-None-Match": status.headers["etag"]})
    ).status_code == 304
    # Different filters are different representations.
    other = await client.get(f"{base}/results", params={"area": LAD_A1}, headers=admin)
    assert (
        other.headers["etag"]
        != (await client.get(f"{base}/results", headers=admin)).headers["etag"]
    )

    plain = await client.get(f"{base}/export", params={"format": "csv"}, headers=admin)
    zipped = await client.get(
        f"{base}/export",
        params={"format": "csv"},
        headers={**admin, "Accept-Encoding": "gzip"},
    )
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["etag"] == "W/" + plain.headers["etag"]
    assert "Accept-Encoding" in zipped.headers["vary"]
    assert zipped.content == plain.content  # httpx decodes the gzip body
    raw = await client.get(
        f"{base}/results", params={"limit": 500}, headers={**admin, "Accept-Encoding": "gzip"}
    )
    assert raw.headers["content-encoding"] == "gzip"
    assert len(raw.content) > 0
    # xlsx is a zip already: sent as is.
    book = await client.get(
        f"{base}/export", params={"format": "xlsx"}, headers={**admin, "Accept-Encoding": "gzip"}
    )
    assert "content-encoding" not in book.headers
    assert "content-encoding" not in plain.headers


async def test_latest_filters_by_role_sector_measure_and_speaks_csv(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyFactory, roles: list[str]
) -> None:
    admin = await make_key("admin")
    run = await make_run(app.state.sessionmaker, roles=roles)
    latest = f"/v1/areas/{ICB_A}/projections/latest"
    whole = await client.get(latest, headers=admin)
    assert whole.status_code == 200
    assert whole.json()["run"]["id"] == str(run.id)
    assert len(whole.json()["results"]) == _rows_per_area(roles)
    nurse = await client.get(
        latest, params=[("role", roles[1]), ("measure", "gap_fte")], headers=admin
    )
    assert {(r["role_code"], r["measure"]) for r in nurse.json()["results"]} == {
        (roles[1], "gap_fte")
    }
    assert nurse.json()["results"][0]["sector"] == "health"
    care = await client.get(latest, params={"sector": "social_care"}, headers=admin)
    assert {r["role_code"] for r in care.json()["results"]} == {roles[0]}
    as_csv = await client.get(latest, params={"format": "csv", "role": roles[0]}, headers=admin)
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert len(list(csv.DictReader(io.StringIO(as_csv.text)))) == len(MEASURES) * 6
    negotiated = await client.get(latest, headers={**admin, "Accept": "text/csv"})
    assert negotiated.text.startswith("area_code,role_code,role_name,sector,measure")
    assert "Accept" in negotiated.headers["vary"]
    assert negotiated.headers["etag"] != whole.headers["etag"]
    zipped = await client.get(latest, headers={**admin, "Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.json() == whole.json()
    revalidated = await client.get(
        latest, headers={**admin, "If-None-Match": zipped.headers["etag"]}
    )
    assert revalidated.status_code == 304
    assert_problem(
        await client.get(latest, headers={**admin, "Accept": "application/xml"}),
        406,
        "not_acceptable",
    )


def _assert_paged(response: httpx.Response, total: int) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["x-total-count"] == str(total)
    assert 'rel="first"' in response.headers["link"]


async def test_every_list_is_paged_with_link_and_total(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyFactory, roles: list[str]
) -> None:
    admin = await make_key("admin")
    await make_run(app.state.sessionmaker, roles=roles)
    _assert_paged(await client.get("/v1/projections", headers=admin), 1)
    _assert_paged(await client.get("/v1/roles", headers=admin), 2)
    listing = await client.get("/v1/projections", headers=admin)
    assert "fingerprint_parts" not in listing.json()["items"][0]
    one_per_page = await client.get("/v1/roles", params={"limit": 1}, headers=admin)
    assert len(one_per_page.json()["items"]) == 1
    assert '</v1/roles?page=2&limit=1>; rel="next"' in one_per_page.headers["link"]
    _assert_paged(await client.get("/v1/scenarios", headers=admin), 1)
    versions = await client.get("/v1/scenarios/baseline/versions", headers=admin)
    _assert_paged(versions, 1)
    assert versions.json()["items"][0]["version"] == 1


async def _busy_export_backends(sessionmaker: async_sessionmaker[AsyncSession]) -> list[str]:
    """States of other backends of this database that are reading results (or holding a
    transaction open after doing so)."""
    async with sessionmaker() as session:
        rows = await session.execute(
            text(
                "SELECT state FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state <> 'idle' "
                "AND query ILIKE '%projection_series%'"
            )
        )
        return [str(row[0]) for row in rows.all()]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
async def test_an_export_the_client_abandons_leaves_no_open_transaction(
    app: FastAPI, make_key: KeyFactory, roles: list[str], fmt: str
) -> None:
    sessionmaker = app.state.sessionmaker
    admin = await make_key("admin")
    run = await make_run(sessionmaker, roles=roles)
    # Enough rows (about 13 MB of CSV) that the export is still running when the client stops
    # reading: the server blocks on a full socket, with its read still open in PostgreSQL.
    async with transaction(sessionmaker) as session:
        await projections_repo.write_results(
            session,
            _series_block(
                [
                    (run.id, area, f"bulk-{role:04d}", measure, 2031, *([1.0] * 25,) * 4)
                    for area in (ICB_A, LAD_A1, LAD_A2)
                    for role in range(1000)
                    for measure in MEASURES
                ],
            ),
        )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"GET /v1/projections/{run.id}/export?format={fmt} HTTP/1.1\r\n"
            f"Host: test\r\nAuthorization: {admin['Authorization']}\r\n\r\n".encode()
        )
        await writer.drain()
        head = await reader.readexactly(64 * 1024)
        assert head.startswith(b"HTTP/1.1 200")
        # The export is under way, its read open in the database ...
        for _ in range(100):
            if await _busy_export_backends(sessionmaker):
                break
            await asyncio.sleep(0.1)
        assert await _busy_export_backends(sessionmaker)
        # ... and the client goes away in the middle.
        writer.transport.abort()
        writer.close()
        for _ in range(100):
            if not await _busy_export_backends(sessionmaker):
                break
            await asyncio.sleep(0.1)
        assert await _busy_export_backends(sessionmaker) == []
        # The API still serves exports afterwards (the pool got its connection back).
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            again = await http.get(
                f"/v1/projections/{run.id}/export",
                params={"format": fmt, "area": LAD_A1, "role": roles[0]},
                headers=admin,
            )
        assert again.status_code == 200
        assert len(again.content.splitlines()) == len(MEASURES) * 6 + (fmt == "csv")
    finally:
        server.should_exit = True
        await serving
