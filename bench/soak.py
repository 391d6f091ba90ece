"""Soak: mixed traffic against the full mode for minutes on end, with errors and memory watched.

    python -m bench.soak                 # make bench-soak: 300 s, 16 clients

Builds a fresh PostgreSQL database (SOAK_DATABASE_URL, default
postgresql://postgres@127.0.0.1:5432/owf_reliab_soak; dropped and re-created) with the reference
data, the role catalogue and the demo ICB, and starts `oneworkforce serve` and one
`oneworkforce worker` on Redis (SOAK_REDIS_URL, default redis://127.0.0.1:6379/5, on a queue of
its own). Then 16 clients, each with its own connection, send requests back to back:

- reads: the latest projection of the demo ICB, its workforce summary, roles, organisations,
  projection runs and an organisation's returns;
- return posts: a JSON return of 8 lines for a demo organisation (each a new version);
- imports: a bulk CSV of 400 lines (40 organisations x 10 roles), at most one every 5 s;
- projection requests: an ICB run of 50 iterations, at most one every 5 s.

New returns queue the coalesced automatic recompute, as in production (`--no-auto-recompute`
turns it off). Rate limiting is off: the soak measures capacity, and its 16 clients share one
key, which the per-key limit would throttle.

Any answer other than the expected status, and any transport error, counts as an error. The
API's and the worker's resident memory is sampled every 5 s; the first `--warmup` seconds are
warm-up. At the end every run and import must have finished `succeeded`. Writes
bench/out/soak.json and prints a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.ingest import OUT, _psql

OWF = str(Path(sys.executable).with_name("oneworkforce"))
PORT = 8601
AREA = "E54000008"
KINDS = ("read", "return_post", "import", "projection_request")
# Work that queues jobs is paced, so the worker's backlog stays bounded and the soak measures
# a steady state rather than a growing queue.
MIN_INTERVAL_S = {"import": 5.0, "projection_request": 5.0}
WEIGHTS = {"read": 0.70, "return_post": 0.20, "import": 0.05, "projection_request": 0.05}
LINE = {
    "headcount": 40, "fte_in_post": 32.5, "vacant_fte": 4, "starters_12m": 10,
    "leavers_12m": 8, "leavers_to_health_care_12m": 2, "sickness_days_12m": 310,
    "agency_fte": 1.5, "bank_fte": 2, "age_under_25": 6, "age_25_34": 9, "age_35_44": 8,
    "age_45_54": 9, "age_55_64": 6, "age_65_plus": 2, "mean_hourly_pay": 11.95,
}  # fmt: skip


@dataclass
class Tally:
    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    error_samples: list[str] = field(default_factory=list)
    last_sent: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Fixture:
    organisations: list[tuple[str, str]]  # (id, ODS code or CQC location id)
    roles: list[str]
    as_at: str


def _fixture(database_url: str) -> Fixture:
    rows = _psql(
        database_url,
        "SELECT id, coalesce(ods_code, cqc_location_id) FROM organisations "
        f"WHERE ics_code = '{AREA}' AND coalesce(ods_code, cqc_location_id) IS NOT NULL "
        "AND (opened_on IS NULL OR opened_on < '2020-01-01') ORDER BY 2",
    ).split()
    organisations = [tuple(row.split("|")) for row in rows]
    roles = _psql(
        database_url,
        "SELECT role_code FROM return_lines GROUP BY role_code ORDER BY count(*) DESC LIMIT 12",
    ).split()
    as_at = _psql(database_url, "SELECT max(as_at) FROM workforce_returns").strip()
    return Fixture(organisations=[(o[0], o[1]) for o in organisations], roles=roles, as_at=as_at)


def _import_body(fixture: Fixture, rng: random.Random) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["organisation_code", "as_at", "role_code", *LINE])
    for _, ods in rng.sample(fixture.organisations, 40):
        for role in fixture.roles[:10]:
            writer.writerow([ods, fixture.as_at, role, *LINE.values()])
    return out.getvalue().encode()


async def _one(
    client: httpx.AsyncClient, kind: str, fixture: Fixture, rng: random.Random
) -> tuple[int, tuple[int, ...]]:
    if kind == "read":
        org_id = rng.choice(fixture.organisations)[0]
        path = rng.choice(
            [
                f"/v1/areas/{AREA}/projections/latest",
                f"/v1/areas/{AREA}/workforce",
                "/v1/roles?limit=50",
                f"/v1/organisations?ics={AREA}&limit=50",
                "/v1/projections?limit=20",
                f"/v1/organisations/{org_id}/returns",
            ]
        )
        response = await client.get(path)
        return response.status_code, (200,)
    if kind == "return_post":
        org_id = rng.choice(fixture.organisations)[0]
        lines = [{"role_code": role, **LINE} for role in rng.sample(fixture.roles, 8)]
        response = await client.post(
            f"/v1/organisations/{org_id}/returns",
            json={"as_at": fixture.as_at, "lines": lines},
        )
        return response.status_code, (201,)
    if kind == "import":
        response = await client.post(
            "/v1/imports/returns",
            content=_import_body(fixture, rng),
            headers={"Content-Type": "text/csv"},
        )
        return response.status_code, (202,)
    response = await client.post(
        "/v1/projections", json={"scope": AREA, "iterations": 50, "seed": rng.randint(1, 10**6)}
    )
    return response.status_code, (202,)


def _pick(tally: Tally, rng: random.Random) -> str:
    kind = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
    interval = MIN_INTERVAL_S.get(kind)
    if interval is not None:
        now = time.monotonic()
        if now - tally.last_sent.get(kind, 0.0) < interval:
            return "read"
        tally.last_sent[kind] = now
    return kind


async def _client(
    index: int, base: str, token: str, fixture: Fixture, tally: Tally, stop_at: float
) -> None:
    rng = random.Random(index)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        while time.monotonic() < stop_at:
            kind = _pick(tally, rng)
            started = time.perf_counter()
            try:
                status, expected = await _one(client, kind, fixture, rng)
            except httpx.HTTPError as exc:
                status, expected = -1, (0,)
                detail = f"{kind}: {type(exc).__name__}: {exc}"
            else:
                detail = f"{kind}: HTTP {status}"
            tally.latencies_ms[kind].append((time.perf_counter() - started) * 1000)
            if status not in expected:
                tally.errors[kind] += 1
                if len(tally.error_samples) < 20:
                    tally.error_samples.append(detail)


async def _sample_memory(
    processes: dict[str, psutil.Process], samples: list[dict[str, float]], stop_at: float
) -> None:
    started = time.monotonic()
    while time.monotonic() < stop_at:
        samples.append(
            {
                "t_s": round(time.monotonic() - started, 1),
                **{
                    name: round(process.memory_info().rss / 2**20, 1)
                    for name, process in processes.items()
                },
            }
        )
        await asyncio.sleep(5)


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _wait_up(url: str) -> None:
    for _ in range(600):
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def _finished_work(database_url: str) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {"runs": {}, "imports": {}}
    for table, key in (("projection_runs", "runs"), ("return_imports", "imports")):
        for row in _psql(database_url, f"SELECT status, count(*) FROM {table} GROUP BY 1").split():
            status, count = row.split("|")
            counts[key][status] = int(count)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description="Soak benchmark (full mode)")
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before steady state")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "SOAK_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/owf_reliab_soak"
        ),
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("SOAK_REDIS_URL", "redis://127.0.0.1:6379/5")
    )
    parser.add_argument(
        "--auto-recompute",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="let new returns queue the coalesced automatic recompute, as in production",
    )
    args = parser.parse_args()
    admin_url = args.database_url.rsplit("/", 1)[0] + "/postgres"
    name = args.database_url.rsplit("/", 1)[1]
    _psql(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    _psql(admin_url, f"CREATE DATABASE {name}")
    queue = f"oneworkforce:soak:{os.getpid()}"
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "QUEUE_NAME": queue,
        "LOG_LEVEL": "WARNING",
        "LOAD_DEMO_DATA": "true",
        "RECOMPUTE_DELAY_S": "10",
        "AUTO_RECOMPUTE": "true" if args.auto_recompute else "false",
        "RATE_LIMIT_ENABLED": "false",
    }
    setup_started = time.monotonic()
    for command in (["migrate", "--load-reference", "--seed-roles"], ["demo"]):
        subprocess.run([OWF, *command], env=env, check=True, capture_output=True)
    token = (
        subprocess.run(
            [OWF, "keys", "create", "--scope", "admin", "--name", "soak"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    fixture = _fixture(args.database_url)
    OUT.mkdir(parents=True, exist_ok=True)
    api_log = (OUT / "soak-api.log").open("wb")
    worker_log = (OUT / "soak-worker.log").open("wb")
    api = subprocess.Popen(
        [OWF, "serve", "--port", str(PORT)], env=env, stdout=api_log, stderr=api_log
    )
    worker = subprocess.Popen([OWF, "worker"], env=env, stdout=worker_log, stderr=worker_log)
    base = f"http://127.0.0.1:{PORT}"
    try:
        _wait_up(f"{base}/healthz")
        # The demo queued a first baseline run: let it finish, so the reads have a projection.
        deadline = time.monotonic() + 300
        while _finished_work(args.database_url)["runs"].get("succeeded", 0) < 1:
            if time.monotonic() > deadline:
                raise SystemExit("the demo's first projection did not finish")
            time.sleep(1)
        setup_s = time.monotonic() - setup_started
        tally = Tally()
        samples: list[dict[str, float]] = []
        processes = {"api_mb": psutil.Process(api.pid), "worker_mb": psutil.Process(worker.pid)}

        async def soak() -> None:
            stop_at = time.monotonic() + args.duration
            await asyncio.gather(
                _sample_memory(processes, samples, stop_at),
                *(_client(i, base, token, fixture, tally, stop_at) for i in range(args.clients)),
            )

        started = time.monotonic()
        asyncio.run(soak())
        load_s = time.monotonic() - started
        # Everything queued during the soak must finish, and finish well.
        drain_started = time.monotonic()
        while True:
            work = _finished_work(args.database_url)
            pending = sum(
                count
                for kind in work.values()
                for status, count in kind.items()
                if status in ("queued", "running")
            )
            if pending == 0 or time.monotonic() - drain_started > 600:
                break
            time.sleep(2)
        drain_s = time.monotonic() - drain_started
        alive = {"api": api.poll() is None, "worker": worker.poll() is None}
    finally:
        for process in (api, worker):
            process.terminate()
        for process in (api, worker):
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        api_log.close()
        worker_log.close()
        subprocess.run(
            ["redis-cli", "-u", args.redis_url, "DEL", queue], check=False, capture_output=True
        )

    steady = [s for s in samples if s["t_s"] >= args.warmup]
    first, last = (steady[0], steady[-1]) if steady else (samples[0], samples[-1])
    result: dict[str, Any] = {
        "date": date.today().isoformat(),
        "duration_s": round(load_s, 1),
        "clients": args.clients,
        "setup_s": round(setup_s, 1),
        "kinds": {
            kind: {
                "requests": len(tally.latencies_ms[kind]),
                "errors": tally.errors[kind],
                "p50_ms": round(_percentile(tally.latencies_ms[kind], 0.50), 1),
                "p99_ms": round(_percentile(tally.latencies_ms[kind], 0.99), 1),
                "mean_ms": round(statistics.fmean(tally.latencies_ms[kind]), 1)
                if tally.latencies_ms[kind]
                else None,
            }
            for kind in KINDS
        },
        "errors_total": sum(tally.errors.values()),
        "error_samples": tally.error_samples,
        "rss_mb": {
            "warmup_s": args.warmup,
            "api_steady_start": first["api_mb"],
            "api_end": last["api_mb"],
            "api_max_steady": max(s["api_mb"] for s in steady) if steady else None,
            "worker_steady_start": first["worker_mb"],
            "worker_end": last["worker_mb"],
            "worker_max_steady": max(s["worker_mb"] for s in steady) if steady else None,
        },
        "rss_samples": samples,
        "work_after_drain": work,
        "drain_s": round(drain_s, 1),
        "processes_alive_at_end": alive,
    }
    (OUT / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    summary = {k: v for k, v in result.items() if k != "rss_samples"}
    print(json.dumps(summary, indent=2))
    if result["errors_total"] or not all(alive.values()):
        raise SystemExit("soak: errors or a process died")


if __name__ == "__main__":
    main()
