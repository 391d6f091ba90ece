"""England at scale in full mode: POST /v1/projections to `succeeded` with returns in all 42
ICBs, on PostgreSQL and Redis with 1 and then 2 `oneworkforce worker` processes, against the
engine alone on the same inputs, in the same go.

    python -m bench.scale                 # 42 ICBs, 200 iterations, 1 and 2 workers, 1 run each
    python -m bench.scale --runs 2 --iterations 100

Needs PostgreSQL (BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/
oneworkforce_bench: created if missing, loaded once and reused) and Redis (BENCH_REDIS_URL,
default redis://127.0.0.1:6379/0; the bench uses a queue of its own). The API
(`oneworkforce serve`) and the workers run as their own processes, as in a deployment; the
figures include HTTP, the outbox, the queue, reading each ICB's returns and population,
writing 650,000-odd result rows and combining England. "Engine alone" is the model run over
the same 42 ICBs' inputs (already in memory) one after the other in this process, plus
England's percentiles: the CPU work the deployment has to do. Peak memory is each process's
high-water resident set (VmHWM).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.keys import service as keys_service
from services.api.roles import service as roles_service
from services.domain.demo import demo_dates, load_demo
from services.domain.projections import runs as projection_runs
from services.domain.reference.loader import load_reference
from services.projector import pipeline
from shared.db import migrate
from shared.db.session import make_engine, make_sessionmaker, transaction
from shared.models import ENGLAND_CODE, Area, AreaType, KeyScope, Organisation, ProjectionRun
from shared.schemas.keys import ApiKeyCreate

PORT = int(os.environ.get("BENCH_PORT", "8290"))
DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/oneworkforce_bench"


@dataclass
class Outcome:
    workers: int
    seconds: float
    rows: int
    peak_mb: dict[str, float]


def _command() -> str:
    return str(Path(sys.executable).with_name("oneworkforce"))


def _ensure_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    server = url.rsplit("/", 1)[0]
    exists = subprocess.run(
        ["psql", f"{server}/postgres", "-tAc", f"SELECT 1 FROM pg_database WHERE datname='{name}'"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if exists != "1":
        subprocess.run(
            ["psql", f"{server}/postgres", "-qc", f'CREATE DATABASE "{name}"'], check=True
        )


async def _prepare(sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    """Reference data, roles and sized organisations with two years of returns in every ICB
    (once); an admin key."""
    await load_reference(sessionmaker, actor="bench")
    async with transaction(sessionmaker) as session:
        await roles_service.seed_roles(session, actor="bench")
        icbs = (
            (await session.execute(select(Area.code).where(Area.type == AreaType.icb)))
            .scalars()
            .all()
        )
    for code in sorted(icbs):
        async with transaction(sessionmaker) as session:
            report = await load_demo(session, ics_code=code, trusts=False)
        if report.created:
            print(f"  loaded {code}: {report.organisations} organisations", flush=True)
    async with transaction(sessionmaker) as session:
        _, secret = await keys_service.create_key(
            session,
            ApiKeyCreate(name=f"bench-{uuid.uuid4().hex[:6]}", scope=KeyScope.admin),
            actor="bench",
            actor_key_id=None,
        )
    return secret


async def _engine_alone(
    sessionmaker: async_sessionmaker[AsyncSession], iterations: int
) -> tuple[float, int]:
    """The model over every ICB's inputs (loaded first, untimed), then England's percentiles."""
    async with sessionmaker() as session:
        scenario = await projection_runs.baseline(session)
        base_year = demo_dates(date.today())[1].year
        run = ProjectionRun(
            scenario_id=scenario.id,
            scenario_name=scenario.name,
            scenario_version=scenario.version,
            scope=ENGLAND_CODE,
            base_year=base_year,
            horizon=min(projection_runs.DEFAULT_HORIZON, 2043 - base_year),
            iterations=iterations,
            seed=1,
        )
        icbs = (await session.execute(select(Organisation.ics_code).distinct())).scalars().all()
        loaded = [await pipeline.load_inputs(session, run, code) for code in sorted(icbs)]
    started = time.perf_counter()
    parts = []
    cells = 0
    for inputs in loaded:
        outputs = pipeline.compute(
            inputs, iterations=run.iterations, seed=run.seed, keep_iterations=pipeline.DRAW_LEVELS
        )
        icb_draws = pipeline.icb_draw_rows(uuid.uuid4(), "", inputs, outputs)[0]["values"]
        parts.append((list(inputs.inputs.role_codes), icb_draws, pipeline.run_totals(outputs)))
        cells += inputs.inputs.n_cells
    roles, total = pipeline.england_totals(parts)
    pipeline.england_rows(uuid.uuid4(), roles, total, first_year=run.base_year)
    return time.perf_counter() - started, cells


def _peak_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd="/tmp")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def _full_mode(
    database_url: str,
    redis_url: str,
    secret: str,
    *,
    workers: int,
    iterations: int,
    logs: Path,
) -> Outcome:
    queue = f"oneworkforce:bench:{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "QUEUE_NAME": queue,
        "AUTO_RECOMPUTE": "false",
        "LOG_LEVEL": "WARNING",
        "WORKER_METRICS_PORT": "0",
        "PORT": str(PORT),
    }
    api = _start([_command(), "serve", "--port", str(PORT)], env, logs / "api.log")
    started_workers = [
        _start([_command(), "worker"], env, logs / f"worker-{index}.log")
        for index in range(workers)
    ]
    headers = {"Authorization": f"Bearer {secret}"}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORT}", timeout=30) as http:
            for _ in range(300):
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            await asyncio.sleep(3)  # the workers import and connect
            began = time.perf_counter()
            response = await http.post(
                "/v1/projections",
                json={"scope": ENGLAND_CODE, "iterations": iterations, "seed": 1},
                headers=headers,
            )
            assert response.status_code == 202, response.text
            location = response.headers["location"]
            while True:
                body: dict[str, Any] = (await http.get(location, headers=headers)).json()
                if body["status"] in ("succeeded", "failed"):
                    break
                await asyncio.sleep(0.05)
            seconds = time.perf_counter() - began
            assert body["status"] == "succeeded", body
            results = await http.get(f"{location}/results", params={"limit": 1}, headers=headers)
            rows = int(results.json().get("total", 0))
        peak = {"api": _peak_mb(api.pid)}
        for index, process in enumerate(started_workers):
            peak[f"worker {index + 1}"] = _peak_mb(process.pid)
        return Outcome(workers=workers, seconds=seconds, rows=rows, peak_mb=peak)
    finally:
        for process in [*started_workers, api]:
            _stop(process)
        redis = Redis.from_url(redis_url)
        await redis.delete(queue)
        await redis.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE)
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    _ensure_database(database_url)
    async_url = database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    await asyncio.to_thread(migrate.upgrade, async_url)
    engine = make_engine(async_url)
    sessionmaker = make_sessionmaker(engine)
    print("preparing (first time: reference data and returns in all 42 ICBs)", flush=True)
    secret = await _prepare(sessionmaker)
    async with sessionmaker() as session:
        organisations = (
            await session.execute(select(func.count()).select_from(Organisation))
        ).scalar_one()
    logs = Path("var/bench-scale")
    logs.mkdir(parents=True, exist_ok=True)
    engine_s: list[float] = []
    outcomes: dict[int, list[Outcome]] = {1: [], 2: []}
    cells = 0
    for _ in range(args.runs):
        seconds, cells = await _engine_alone(sessionmaker, args.iterations)
        engine_s.append(seconds)
        print(f"engine alone: {seconds:.2f} s", flush=True)
        for workers in (1, 2):
            outcome = await _full_mode(
                database_url,
                redis_url,
                secret,
                workers=workers,
                iterations=args.iterations,
                logs=logs,
            )
            outcomes[workers].append(outcome)
            print(f"{workers} worker(s): {outcome.seconds:.2f} s, {outcome.rows} rows", flush=True)
    await engine.dispose()

    base = statistics.median(engine_s)
    print()
    print(
        f"England, 42 ICBs, {organisations:,} organisations, {cells:,} cells, "
        f"{args.iterations} iterations, median of {args.runs} run(s)"
    )
    print()
    print("| | seconds | x engine alone | result rows | peak RSS (MB) |")
    print("|---|---:|---:|---:|---|")
    print(f"| engine alone (one process, inputs in memory) | {base:.2f} | 1.00 | | |")
    for workers, runs in outcomes.items():
        seconds = statistics.median(o.seconds for o in runs)
        peak = ", ".join(
            f"{name} {max(o.peak_mb[name] for o in runs):.0f}" for name in runs[0].peak_mb
        )
        print(
            f"| full mode, {workers} worker process(es), POST to succeeded | {seconds:.2f} | "
            f"{seconds / base:.2f} | {runs[0].rows:,} | {peak} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
