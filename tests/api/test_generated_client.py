"""A Python client generated from the committed docs/openapi.json by openapi-python-client
works against the live server: no operation skipped, no warning, and every error it meets
reads as a `Problem`."""

from __future__ import annotations

import asyncio
import importlib
import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.domain.demo import DEMO_ICB, load_demo
from services.domain.reference.loader import ReferenceLoadSummary
from shared.db.session import transaction
from tests.contract import DOCUMENT
from tests.helpers import KeyFactory
from tests.live import live_api

PACKAGE = "owf_generated_client"
METHODS = {"get", "put", "post", "patch", "delete"}


def generate(into: Path) -> subprocess.CompletedProcess[str]:
    """Run the generator as a portal team would (its ruff post-hooks need ruff on PATH)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(DOCUMENT),
            "--meta",
            "none",
            "--config",
            str(DOCUMENT.parents[1] / "clients" / "python" / "config.yml"),
            "--output-path",
            str(into / PACKAGE),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=into,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The generated package's directory, importable as `owf_generated_client`."""
    root = tmp_path_factory.mktemp("generated")
    result = generate(root)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, output
    # Anything besides the one progress line is a warning, a skipped endpoint or a failed hook.
    assert output == f"Generating {root / PACKAGE}", output
    sys.path.insert(0, str(root))
    try:
        yield root / PACKAGE
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_every_operation_is_generated(generated: Path) -> None:
    document: dict[str, Any] = json.loads(DOCUMENT.read_text())
    operations = {
        operation["operationId"]
        for item in document["paths"].values()
        for method, operation in item.items()
        if method in METHODS
    }
    modules = {path.stem for path in (generated / "api").rglob("*.py")}
    assert operations - modules == set()
    submit = (generated / "api" / "returns" / "submit_return.py").read_text()
    # The return's three bodies: JSON, the CSV file's bytes and multipart.
    for body in ("ReturnCreate", "File", "SubmitReturnFilesBody"):
        assert body in submit, body
    assert (
        "def asyncio_detailed" in (generated / "api" / "returns" / "import_returns.py").read_text()
    )


async def _until_finished(get_projection: ModuleType, client: Any, run_id: uuid.UUID) -> Any:
    deadline = time.monotonic() + 120
    while True:
        run = (await get_projection.asyncio_detailed(run_id, client=client)).parsed
        if run.status in ("succeeded", "failed") or time.monotonic() > deadline:
            return run
        await asyncio.sleep(0.2)


def _line(role_code: str, **values: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "role_code": role_code,
        "headcount": 12,
        "fte_in_post": 10.5,
        "vacant_fte": 1,
        "starters_12m": 2,
        "leavers_12m": 2,
        "sickness_days_12m": 60,
        "agency_fte": 0.5,
        "bank_fte": 0,
        "age_under_25": 1,
        "age_25_34": 3,
        "age_35_44": 3,
        "age_45_54": 3,
        "age_55_64": 2,
        "age_65_plus": 0,
    }
    return {**line, **values}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_generated_client_drives_the_live_server(
    generated: Path,
    database_url: str,
    reference: ReferenceLoadSummary,
    seeded_roles: list[str],
    sessionmaker: async_sessionmaker[AsyncSession],
    make_key: KeyFactory,
) -> None:
    async with transaction(sessionmaker) as session:
        await load_demo(session, ics_code=DEMO_ICB)
    token = (await make_key("admin"))["Authorization"].removeprefix("Bearer ")
    package = importlib.import_module(PACKAGE)
    models = _module("models")

    with live_api(database_url) as live:
        async with package.AuthenticatedClient(
            base_url=live.url, token=token, timeout=60
        ) as client:
            await _drive(client, models)
        # A file object is sent by the synchronous calls.
        with package.AuthenticatedClient(base_url=live.url, token=token, timeout=60) as client:
            _upload_csv(client, models)


async def _drive(client: Any, models: ModuleType) -> None:
    problem_model = models.Problem

    areas = await _module("api.areas.list_areas").asyncio_detailed(
        client=client, type_=models.AreaType("icb"), limit=100
    )
    assert areas.status_code == 200
    assert DEMO_ICB in {area.code for area in areas.parsed.items}

    workforce = await _module("api.areas.area_workforce").asyncio_detailed(DEMO_ICB, client=client)
    assert workforce.status_code == 200
    by_role = {row.role_code: row for row in workforce.parsed.roles}
    assert by_role["care-worker"].headcount > 10_000

    created = await _module("api.projections.create_projection").asyncio_detailed(
        client=client, body=models.ProjectionCreate(scope=DEMO_ICB, iterations=20, horizon=5)
    )
    assert created.status_code == 202, created.content
    run = await _until_finished(
        _module("api.projections.get_projection"), client, created.parsed.id
    )
    assert run.status == "succeeded"

    latest = await _module("api.projections.latest_projection").asyncio_detailed(
        DEMO_ICB, client=client
    )
    assert latest.status_code == 200, latest.content
    assert latest.parsed.run.id == run.id

    results = await _module("api.projections.get_results").asyncio_detailed(
        run.id, client=client, role="care-worker", limit=200
    )
    assert results.status_code == 200
    rows = results.parsed.items
    assert rows
    assert all(row.role_code == "care-worker" for row in rows)
    assert all(row.p10 <= row.p50 <= row.p90 for row in rows)

    organisations = await _module("api.organisations.list_organisations").asyncio_detailed(
        client=client, ics=DEMO_ICB, kind=models.OrganisationKind("care_provider"), limit=1
    )
    organisation = organisations.parsed.items[0]
    submit = _module("api.returns.submit_return")
    as_at = (date.today() - timedelta(days=1)).isoformat()
    good = models.ReturnCreate.from_dict({"as_at": as_at, "lines": [_line("care-worker")]})
    stored = await submit.asyncio_detailed(organisation.id, client=client, body=good)
    assert stored.status_code == 201, stored.content
    assert stored.parsed.lines[0].role_code == "care-worker"
    again = await _module("api.returns.get_return").asyncio_detailed(
        stored.parsed.id, client=client
    )
    assert again.parsed.id == stored.parsed.id

    bad = models.ReturnCreate.from_dict(
        {
            "as_at": as_at,
            "lines": [_line("astronaut"), _line("care-worker", vacant_fte=-1)],
        }
    )
    rejected = await submit.asyncio_detailed(organisation.id, client=client, body=bad)
    assert rejected.status_code == 422
    problem = rejected.parsed
    assert isinstance(problem, problem_model)
    assert problem.code == "return_invalid"
    assert problem.status == 422
    assert problem.type_ == "/problems/return_invalid"
    assert [error.row for error in problem.errors] == sorted(e.row for e in problem.errors)
    assert {error.row for error in problem.errors} == {1, 2}

    missing = await _module("api.projections.get_results").asyncio_detailed(
        uuid.uuid4(), client=client
    )
    assert missing.status_code == 404
    assert isinstance(missing.parsed, problem_model)
    assert missing.parsed.status == 404
    assert missing.parsed.code == "projection_not_found"
    assert missing.parsed.request_id


def _upload_csv(client: Any, models: ModuleType) -> None:
    """The template as a CSV file's bytes: stored as the organisation's next version."""
    types = _module("types")
    organisations = _module("api.organisations.list_organisations").sync_detailed(
        client=client, ics=DEMO_ICB, kind=models.OrganisationKind("care_provider"), limit=1
    )
    organisation = organisations.parsed.items[0]
    before = _module("api.returns.list_returns").sync_detailed(organisation.id, client=client)
    template = _module("api.returns.template").sync_detailed(client=client)
    assert template.status_code == 200
    csv_file = types.File(payload=io.BytesIO(template.content), file_name="return.csv")
    as_at = date.today() - timedelta(days=1)
    stored = _module("api.returns.submit_return").sync_detailed(
        organisation.id, client=client, body=csv_file, as_at=as_at
    )
    assert stored.status_code == 201, stored.content
    assert stored.parsed.as_at == as_at
    assert stored.parsed.version == 2
    assert [line.role_code for line in stored.parsed.lines] == ["care-worker"]
    after = _module("api.returns.list_returns").sync_detailed(organisation.id, client=client)
    assert len(after.parsed.items) == len(before.parsed.items)
