"""The project's outer contract: migrations, the committed OpenAPI document, docker compose,
the CLI entry points and the REQUIRE_SERVICES switch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

import shared.models  # noqa: F401 - every table on the metadata
from services.api.openapi import document
from services.cli import app as cli_app
from shared.db import migrate
from shared.db.base import Base

ROOT = Path(__file__).resolve().parents[1]
OWF = str(Path(sys.executable).with_name("oneworkforce"))


def test_migrations_match_the_models_and_downgrade_cleanly(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url)
    sync = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with sync.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"
    migrate.downgrade(url, "base")
    migrate.upgrade(url)
    sync.dispose()


def test_committed_openapi_document_is_current() -> None:
    committed = (ROOT / "docs" / "openapi.json").read_text()
    assert committed == document(), "run `make openapi` and commit docs/openapi.json"


def test_docker_compose_services_and_commands_are_real() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api", "projector"}
    assert "healthcheck" in services["postgres"]
    assert "healthcheck" in services["redis"]
    cli_commands = {
        command.name or getattr(command.callback, "__name__", "")
        for command in cli_app.registered_commands
    }
    for name in ("migrate", "api", "projector"):
        command = services[name]["command"]
        assert command[0] in cli_commands, f"{name} runs unknown command {command[0]}"
        assert services[name]["build"] == "."
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "replicas" not in services["projector"].get("deploy", {}), "projector must scale freely"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["oneworkforce"]' in dockerfile
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'oneworkforce = "services.cli:app"' in pyproject


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_cli_keys_lifecycle(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "LOG_JSON": "false"}
    assert _run([OWF, "migrate"], env).returncode == 0
    created = _run([OWF, "keys", "create", "--scope", "read", "--name", "etl"], env)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("owf_")
    key_id = created.stdout.split("Created key ")[1].split()[0]
    listed = _run([OWF, "keys", "list"], env)
    assert "etl" in listed.stdout
    assert secret not in listed.stdout
    assert _run([OWF, "keys", "revoke", key_id], env).returncode == 0
    assert "revoked" in _run([OWF, "keys", "list"], env).stdout
    refused = _run([OWF, "keys", "create", "--scope", "submit"], env)
    assert refused.returncode == 2
    assert "organisation" in refused.stderr


def test_require_services_fails_without_servers(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["REQUIRE_SERVICES"] = "1"
    result = _run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_project.py::test_committed_openapi_document_is_current",
        ],
        env,
    )
    assert result.returncode != 0
    assert "REQUIRE_SERVICES=1" in result.stdout + result.stderr


@pytest.mark.parametrize("bad", ["*", "https://a.example,*"])
def test_wildcard_cors_is_refused(bad: str) -> None:
    from pydantic import ValidationError

    from shared.config import Settings

    with pytest.raises(ValidationError):
        Settings(_env_file=None, cors_origins=bad)


def test_cli_first_run_demo_and_projection(tmp_path: Path) -> None:
    """What `make run` does before serving, then a projection run from the command line."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}",
        "LOG_JSON": "false",
        "LOAD_DEMO_DATA": "true",
        "COLUMNS": "200",
    }
    setup = _run([OWF, "migrate", "--load-reference", "--seed-roles"], env)
    assert setup.returncode == 0, setup.stderr
    assert "loaded 355,680 population rows" in setup.stdout
    demo = _run([OWF, "demo"], env)
    assert demo.returncode == 0, demo.stderr
    assert "a baseline projection is queued" in demo.stdout
    assert "already present" in _run([OWF, "demo"], env).stdout
    projected = _run([OWF, "project", "--scope", "E54000008", "--iterations", "20"], env)
    assert projected.returncode == 0, projected.stderr
    assert "succeeded" in projected.stdout
    refused = _run([OWF, "project", "--scope", "E54000008", "--horizon", "25"], env)
    assert refused.returncode == 2
    assert "horizon_beyond_population" in refused.stderr
