"""Export: an England run's full results as CSV through the API against `psql \\copy`.

    python -m bench.export             # = make bench-export; needs PostgreSQL and psql

Builds a fresh PostgreSQL database (BENCH_EXPORT_DATABASE_URL, default
postgresql://postgres@127.0.0.1:5432/owf_export_bench; dropped and re-created) with the
reference data and the role catalogue, one care provider in each of England's 296 LADs (so
all 42 ICBs have returns) reporting 16 catalogue roles, and one England baseline projection run
in-process. Then serves the API (`oneworkforce serve`, one process) and, alternating, times:

- `psql -c "\\copy (SELECT ...) TO STDOUT WITH (FORMAT csv, HEADER)"` of the very rows the
  API exports (the same SELECT: role name and sector joined, figures rounded, and the same
  plan: `enable_sort = off`, so both walk the primary key), whole process;
- `GET /v1/projections/{id}/export?format=csv` read to the end: total time, time to the
  first byte, and the API process's resident memory growth while it streams (sampled every
  10 ms against the figure just before the request);
- the same export as JSON and NDJSON, for reference.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy.dialects import postgresql

from bench.ingest import OUT, _psql, _values
from shared.repositories import projections as projections_repo
from shared.vocab.return_lines import CORE_LINE_COLUMNS

OWF = str(Path(sys.executable).with_name("oneworkforce"))
PORT = 8301
ROLES = 16
AS_AT = "2025-03-31"
ENGLAND = "E92000001"


def _env(db_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": db_url,
        "REDIS_URL": "",
        "LOG_LEVEL": "WARNING",
        "LOAD_DEMO_DATA": "false",
        "AUTO_RECOMPUTE": "false",
        # One job at a time: the England fan-out is not what this benchmark measures.
        "INPROCESS_WORKERS": "1",
    }


def build(db_url: str, iterations: int) -> str:
    """A database holding one succeeded England run; its id."""
    admin_url = db_url.rsplit("/", 1)[0] + "/postgres"
    name = db_url.rsplit("/", 1)[1]
    _psql(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    _psql(admin_url, f"CREATE DATABASE {name}")
    env = _env(db_url)
    subprocess.run(
        [OWF, "migrate", "--load-reference", "--seed-roles"],
        env=env,
        check=True,
        capture_output=True,
    )
    _psql(
        db_url,
        "INSERT INTO organisations (id, name, kind, sector, ods_code, home_lad_code, ics_code, "
        "opened_on, version, created_at, updated_at) SELECT gen_random_uuid(), "
        "'Export bench provider ' || code, 'care_provider', 'social_care', 'XB' || "
        "lpad(row_number() OVER (ORDER BY code)::text, 4, '0'), code, parent_code, "
        "DATE '2000-04-01', 1, now(), now() FROM areas WHERE type = 'lad'",
    )
    roles = _psql(db_url, f"SELECT code FROM roles ORDER BY sector, code LIMIT {ROLES}").split()
    codes = _psql(db_url, "SELECT ods_code FROM organisations ORDER BY ods_code").split()
    OUT.mkdir(parents=True, exist_ok=True)
    returns = OUT / "export_returns.csv"
    with returns.open("w") as handle:
        handle.write(",".join(("organisation_code", "as_at", *CORE_LINE_COLUMNS)) + "\n")
        for index, code in enumerate(codes):
            for number, role in enumerate(roles):
                values = ",".join(_values(10 + (index * 7 + number) % 60))
                handle.write(f"{code},{AS_AT},{role},{values}\n")
    subprocess.run([OWF, "import-returns", str(returns)], env=env, check=True, capture_output=True)
    subprocess.run(
        [OWF, "project", "--scope", ENGLAND, "--iterations", str(iterations)],
        env=env,
        check=True,
        capture_output=True,
    )
    return _psql(
        db_url,
        f"SELECT id FROM projection_runs WHERE scope = '{ENGLAND}' AND status = 'succeeded'",
    ).strip()


def export_sql(run_id: str) -> str:
    """The API's export SELECT, with its parameters written in."""
    import uuid

    query = projections_repo.results_query(
        projections_repo.ResultFilter(run_id=uuid.UUID(run_id)), dialect="postgresql"
    )
    return str(
        query.compile(
            dialect=postgresql.dialect(),  # type: ignore[no-untyped-call]
            compile_kwargs={"literal_binds": True},
        )
    ).replace("\n", " ")


def run_psql(db_url: str, sql: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["psql", db_url, "-v", "ON_ERROR_STOP=1", "-c", "SET enable_sort = off", "-c",
         f"\\copy ({sql}) TO STDOUT WITH (FORMAT csv, HEADER)"],
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - started


class RssSampler:
    """The largest resident set size of a process while it runs, sampled every 10 ms."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.01)

    def __enter__(self) -> RssSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.running = False
        self.thread.join()


def run_api(
    pid: int, url: str, headers: dict[str, str], params: dict[str, str]
) -> dict[str, float]:
    before = psutil.Process(pid).memory_info().rss
    with httpx.Client(timeout=600) as http, RssSampler(pid) as sampler:
        started = time.perf_counter()
        first_byte = None
        size = 0
        with http.stream("GET", url, headers=headers, params=params) as response:
            response.raise_for_status()
            for chunk in response.iter_raw():
                if first_byte is None:
                    first_byte = time.perf_counter() - started
                size += len(chunk)
        elapsed = time.perf_counter() - started
    return {
        "seconds": elapsed,
        "first_byte_s": first_byte or elapsed,
        "bytes": size,
        "rss_growth_mb": max(0, sampler.peak - before) / 2**20,
        "rss_before_mb": before / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Export benchmark")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=20, help="Monte Carlo runs")
    parser.add_argument("--reuse", action="store_true", help="Keep the database if it has a run")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_EXPORT_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/owf_export_bench"
        ),
    )
    args = parser.parse_args()
    run_id = ""
    if args.reuse:
        try:
            run_id = _psql(
                args.database_url,
                f"SELECT id FROM projection_runs WHERE scope = '{ENGLAND}' "
                "AND status = 'succeeded' LIMIT 1",
            ).strip()
        except subprocess.CalledProcessError:
            run_id = ""
    if not run_id:
        run_id = build(args.database_url, args.iterations)
    rows = int(
        _psql(
            args.database_url,
            "SELECT coalesce(sum(cardinality(principal)), 0) FROM projection_series "
            f"WHERE run_id = '{run_id}'",
        )
    )
    env = {**_env(args.database_url), "PORT": str(PORT)}
    token = (
        subprocess.run(
            [OWF, "keys", "create", "--scope", "read", "--name", "bench-export"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"}
    api = subprocess.Popen(
        [OWF, "serve", "--port", str(PORT)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sql = export_sql(run_id)
    url = f"http://127.0.0.1:{PORT}/v1/projections/{run_id}/export"
    results: dict[str, list[Any]] = {"psql": [], "csv": [], "json": [], "ndjson": []}
    try:
        for _ in range(200):
            try:
                if httpx.get(f"http://127.0.0.1:{PORT}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        # Warm both sides once (caches, connection pool), untimed.
        run_psql(args.database_url, sql)
        run_api(api.pid, url, headers, {"format": "csv"})
        for _ in range(args.rounds):
            results["psql"].append(run_psql(args.database_url, sql))
            results["csv"].append(run_api(api.pid, url, headers, {"format": "csv"}))
            results["json"].append(run_api(api.pid, url, headers, {"format": "json"}))
            results["ndjson"].append(run_api(api.pid, url, headers, {"format": "ndjson"}))
        compressed = run_api(
            api.pid, url, {**headers, "Accept-Encoding": "gzip"}, {"format": "csv"}
        )
        api_peak_mb = psutil.Process(api.pid).memory_info().rss / 2**20
    finally:
        api.terminate()
        api.wait(timeout=30)

    def ratio(name: str) -> float:
        return round(
            float(
                statistics.median(
                    r["seconds"] / p for r, p in zip(results[name], results["psql"], strict=True)
                )
            ),
            3,
        )

    summary = {
        "run_id": run_id,
        "rows": rows,
        "psql_s": [round(s, 3) for s in results["psql"]],
        **{
            name: {
                "seconds": [round(r["seconds"], 3) for r in results[name]],
                "first_byte_s": [round(r["first_byte_s"], 3) for r in results[name]],
                "rss_growth_mb": [round(r["rss_growth_mb"], 1) for r in results[name]],
                "bytes": results[name][0]["bytes"],
                "ratio_to_psql_median": ratio(name),
            }
            for name in ("csv", "json", "ndjson")
        },
        "csv_gzip": {
            "seconds": round(compressed["seconds"], 3),
            "bytes": compressed["bytes"],
            "rss_growth_mb": round(compressed["rss_growth_mb"], 1),
        },
        "api_rss_at_end_mb": round(api_peak_mb, 1),
    }
    print(json.dumps(summary, indent=2))
    (OUT / "export.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
