"""Property-based fuzzing of every operation against a live API on a throwaway database.

`make fuzz` runs it: on PostgreSQL when DATABASE_URL names one (a fresh `<name>_fuzz`
database, dropped afterwards), else on SQLite. The demo data and a global admin key give the
operations real rows to work on; the OpenAPI links (and the Location headers) let the stateful
phase chain creates into reads, updates and deletes. Any 5xx fails the run; the run is bounded
by a number of examples per operation and a time budget.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from shared.config import Settings
from tests.live import ROOT, live_api

MAX_EXAMPLES = os.environ.get("FUZZ_MAX_EXAMPLES", "25")
MAX_TIME_S = os.environ.get("FUZZ_MAX_TIME_S", "240")


async def _recreate(server_url: str, name: str, *, drop_only: bool = False) -> None:
    connection = await asyncpg.connect(server_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


def _oneworkforce(args: list[str], database_url: str) -> str:
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": "", "LOG_LEVEL": "WARNING"}
    command = [str(Path(sys.executable).parent / "oneworkforce"), *args]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def main() -> int:
    settings = Settings(_env_file=None)
    postgres_server: str | None = None
    fuzz_db = ""
    if settings.is_postgres:
        url = make_url(settings.database_url)
        fuzz_db = f"{url.database}_fuzz"
        postgres_server = url.set(drivername="postgresql", database="postgres").render_as_string(
            hide_password=False
        )
        asyncio.run(_recreate(postgres_server, fuzz_db))
        database_url = url.set(database=fuzz_db).render_as_string(hide_password=False)
    else:
        folder = ROOT / "var" / "fuzz"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        database_url = f"sqlite:///{folder / 'fuzz.db'}"
    try:
        _oneworkforce(["migrate", "--load-reference", "--seed-roles"], database_url)
        _oneworkforce(["demo"], database_url)
        key = _oneworkforce(["keys", "create", "--scope", "admin", "--name", "fuzz"], database_url)
        token = key.strip().splitlines()[-1].strip()
        with live_api(database_url, rate_limit_enabled="false", auto_recompute="false") as api:
            command = [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"{api.url}/openapi.json",
                "--header",
                f"Authorization: Bearer {token}",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                MAX_EXAMPLES,
                "--max-time",
                MAX_TIME_S,
                "--workers",
                "2",
                "--seed",
                "14",
                "--generation-allow-x00",
                "true",
            ]
            print(f"fuzzing on {'PostgreSQL' if postgres_server else 'SQLite'}", flush=True)
            return subprocess.run(command, cwd=ROOT, check=False).returncode
    finally:
        if postgres_server is not None:
            asyncio.run(_recreate(postgres_server, fuzz_db, drop_only=True))


if __name__ == "__main__":
    raise SystemExit(main())
