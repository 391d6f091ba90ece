"""Bulk returns ingestion: N lines through the running API against `psql \\copy` of the same rows.

    python -m bench.ingest                       # 1,000,000 lines, 3 runs each, PostgreSQL
    python -m bench.ingest --lines 100000 --runs 1

Needs PostgreSQL (BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/
oneworkforce_bench; the database is dropped and re-created) and `psql` on the PATH. The API is
started as its own process (`oneworkforce serve`, embedded projector), so the figures include
HTTP streaming, COPY into staging, set-based validation and the move into return_lines; the
baseline is `psql \\copy` of the same rows, already resolved to return ids, into return_lines.
Runs alternate (baseline, API, baseline, API, ...) and the ratio is taken per pair.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from shared.vocab.return_lines import LINE_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
OWF = str(Path(sys.executable).with_name("oneworkforce"))
ROLES = 200
AS_AT = "2025-03-31"
PORT = 8765


def _psql(db_url: str, sql: str) -> str:
    result = subprocess.run(
        ["psql", db_url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


def _values(headcount: int) -> list[str]:
    leavers = headcount // 5
    ages = [headcount // 6] * 5
    ages.append(headcount - sum(ages))
    return [
        str(headcount),
        f"{headcount * 0.8:.1f}",
        "1.5",
        str(headcount // 4),
        str(leavers),
        str(leavers // 3),
        str(headcount * 6),
        "0.5",
        "1",
        *map(str, ages),
        "12.5",
    ]


def generate(lines: int) -> tuple[Path, Path, int]:
    """The bulk CSV for the API and the equivalent return_lines CSV for psql."""
    organisations = max(1, lines // ROLES)
    api_file = OUT / f"returns_{lines}.csv"
    copy_file = OUT / f"return_lines_{lines}.csv"
    if api_file.exists() and copy_file.exists():
        return api_file, copy_file, organisations
    OUT.mkdir(parents=True, exist_ok=True)
    with api_file.open("w") as api, copy_file.open("w") as copy:
        api.write(",".join(("organisation_code", "as_at", *LINE_COLUMNS)) + "\n")
        copy.write(",".join(("return_id", *LINE_COLUMNS)) + "\n")
        written = 0
        for org in range(organisations):
            return_id = uuid.UUID(int=org + 1)
            for role in range(ROLES):
                if written == lines:
                    break
                values = ",".join(_values(5 + (org * 7 + role) % 60))
                api.write(f"B{org:05d},{AS_AT},bench-role-{role:03d},{values}\n")
                copy.write(f"{return_id},bench-role-{role:03d},{values}\n")
                written += 1
    return api_file, copy_file, organisations


def setup_database(db_url: str, organisations: int) -> None:
    admin_url = db_url.rsplit("/", 1)[0] + "/postgres"
    name = db_url.rsplit("/", 1)[1]
    _psql(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    _psql(admin_url, f"CREATE DATABASE {name}")
    env = {**os.environ, "DATABASE_URL": db_url}
    subprocess.run([OWF, "migrate"], env=env, check=True, capture_output=True)
    _psql(
        db_url,
        "INSERT INTO areas (code, name, type) VALUES ('E92000001', 'England', 'country');"
        "INSERT INTO areas (code, name, type, parent_code) VALUES "
        "('E54000008', 'Bench ICB', 'icb', 'E92000001');"
        "INSERT INTO areas (code, name, type, parent_code) VALUES "
        "('E06000049', 'Bench LAD', 'lad', 'E54000008');"
        "INSERT INTO roles (code, name, sector, staff_group, registration_body, is_new_role, "
        "description, capabilities, training_requirements, default_demand_driver, is_seeded, "
        "version, created_at, updated_at) SELECT 'bench-role-' || lpad(g::text, 3, '0'), "
        "'Bench role ' || g, 'health', 'Bench', 'none', false, '', '[]', '[]', "
        f"'population_all', false, 1, now(), now() FROM generate_series(0, {ROLES - 1}) g;"
        "INSERT INTO organisations (id, name, kind, sector, ods_code, home_lad_code, ics_code, "
        "version, created_at, updated_at) SELECT "
        "('00000000-0000-0000-0000-' || lpad(to_hex(g + 1), 12, '0'))::uuid, "
        "'Bench org ' || g, 'care_provider', 'social_care', 'B' || lpad(g::text, 5, '0'), "
        "'E06000049', 'E54000008', 1, now(), now() "
        f"FROM generate_series(0, {organisations - 1}) g;",
    )


def reset_returns(db_url: str) -> None:
    _psql(
        db_url,
        "TRUNCATE return_lines, return_warnings, workforce_returns, return_staging, "
        "return_imports, outbox_messages, audit_events CASCADE",
    )


def baseline_returns(db_url: str) -> None:
    """The return rows the baseline's lines belong to (not timed)."""
    _psql(
        db_url,
        "INSERT INTO workforce_returns (id, organisation_id, as_at, version, status, source, "
        "submitted_at, line_count, warning_count) SELECT id, id, DATE '2025-03-31', 1, "
        "'current', 'bulk', now(), 0, 0 FROM organisations",
    )


def run_copy(db_url: str, copy_file: Path) -> float:
    reset_returns(db_url)
    baseline_returns(db_url)
    columns = ",".join(("return_id", *LINE_COLUMNS))
    started = time.perf_counter()
    _psql(db_url, f"\\copy return_lines ({columns}) FROM '{copy_file}' WITH (FORMAT csv, HEADER)")
    return time.perf_counter() - started


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            yield block


def run_api(db_url: str, api_file: Path, token: str) -> tuple[float, dict[str, Any]]:
    reset_returns(db_url)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}
    base = f"http://127.0.0.1:{PORT}"
    with httpx.Client(base_url=base, timeout=3600) as http:
        started = time.perf_counter()
        accepted = http.post("/v1/imports/returns", content=_file_chunks(api_file), headers=headers)
        accepted.raise_for_status()
        location = accepted.headers["location"]
        while True:
            status = http.get(location, headers=headers).json()
            if status["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    if status["status"] != "succeeded":
        raise SystemExit(f"import failed: {status['errors'][:5]}")
    return elapsed, status


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/oneworkforce_bench"
        ),
    )
    args = parser.parse_args()
    api_file, copy_file, organisations = generate(args.lines)
    setup_database(args.database_url, organisations)
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": "",
        "LOG_LEVEL": "WARNING",
        "PORT": str(PORT),
    }
    created = subprocess.run(
        [OWF, "keys", "create", "--scope", "admin", "--name", "bench"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    token = created.stdout.strip().splitlines()[-1]
    server = subprocess.Popen(
        [OWF, "serve", "--port", str(PORT)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{PORT}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        copies, apis, ratios, phases = [], [], [], []
        for run in range(args.runs):
            copy_s = run_copy(args.database_url, copy_file)
            api_s, status = run_api(args.database_url, api_file, token)
            copies.append(copy_s)
            apis.append(api_s)
            ratios.append(api_s / copy_s)
            phases.append(status["timings"])
            print(
                f"run {run + 1}: psql \\copy {copy_s:.2f} s, API {api_s:.2f} s, "
                f"ratio {api_s / copy_s:.2f}, phases {status['timings']}",
                flush=True,
            )
        result = {
            "lines": args.lines,
            "organisations": organisations,
            "runs": args.runs,
            "copy_s_median": round(statistics.median(copies), 2),
            "api_s_median": round(statistics.median(apis), 2),
            "ratio_median": round(statistics.median(ratios), 2),
            "ratio_min": round(min(ratios), 2),
            "ratio_max": round(max(ratios), 2),
            "api_peak_rss_mb": round(peak_rss_mb(server.pid), 1),
            "phases": phases,
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(json.dumps(result, indent=2))
    (OUT / f"ingest_{args.lines}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
