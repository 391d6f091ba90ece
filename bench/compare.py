"""Scenario comparison: the paired comparison endpoint against what a client did before it.

    python -m bench.compare [--rounds 5] [--iterations 200]

Builds a throwaway SQLite database under var/bench-compare with the reference data, the role
catalogue and the demo ICB, runs the baseline and a scenario with more international
recruitment (same seed and iterations) through the embedded projector, then times, in turn:

- A: `GET /v1/projections/compare?base=...&other=...` (JSON: every role and all roles, four
  measures, every year, with the paired p10/p50/p90 and share of draws better);
- B: what a client had to do without it: `GET /v1/projections/{id}/results?format=csv` for
  both runs (every area, role, measure and year), which gives the difference of principals
  but no paired spread at all.

Both go through the same in-process ASGI app, so the ratio A/B is the cost of the paired
answer relative to downloading the two runs. Also reports the stored draws per run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
OWF = str(Path(sys.executable).with_name("oneworkforce"))
ICB = "E54000008"


def _owf(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([OWF, *args], env=env, check=True, capture_output=True, text=True)
    return done.stdout


async def _measure(database_url: str, key: str, rounds: int, iterations: int) -> None:
    from services.api.main import create_app
    from tests.helpers import settings_for

    app = create_app(settings_for(database_url))
    headers = {"Authorization": f"Bearer {key}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            scenario = {
                "name": "bench-international",
                "title": "More international recruitment",
                "parameters": {
                    "international_recruitment": [{"role": "care-worker", "headcount_per_year": 50}]
                },
                "rationale": {
                    "international_recruitment": {"rationale": "bench", "source": "bench"}
                },
            }
            await client.post("/v1/scenarios", json=scenario, headers=headers)
            runs = []
            for name in ("baseline", "bench-international"):
                body = {"scope": ICB, "scenario": name, "iterations": iterations, "seed": 1}
                created = await client.post("/v1/projections", json=body, headers=headers)
                created.raise_for_status()
                runs.append(created.json()["id"])
            await app.state.sender.join(timeout_s=1800)
            for run in runs:
                status = (await client.get(f"/v1/projections/{run}", headers=headers)).json()
                if status["status"] != "succeeded":
                    raise SystemExit(f"run {run} did not succeed: {status}")
            compare_url = f"/v1/projections/compare?base={runs[0]}&other={runs[1]}"

            async def paired() -> int:
                response = await client.get(compare_url, headers=headers)
                response.raise_for_status()
                return len(response.content)

            async def downloads() -> int:
                size = 0
                for run in runs:
                    response = await client.get(
                        f"/v1/projections/{run}/results?format=csv", headers=headers
                    )
                    response.raise_for_status()
                    size += len(response.content)
                return size

            ratios, times_a, times_b = [], [], []
            for _ in range(rounds):
                started = time.perf_counter()
                size_a = await paired()
                times_a.append(time.perf_counter() - started)
                started = time.perf_counter()
                size_b = await downloads()
                times_b.append(time.perf_counter() - started)
                ratios.append(times_a[-1] / times_b[-1])
            print(f"A paired comparison: median {statistics.median(times_a):.3f} s ({size_a:,} B)")
            print(f"B two CSV downloads: median {statistics.median(times_b):.3f} s ({size_b:,} B)")
            print(f"ratio A/B: median {statistics.median(ratios):.2f} over {rounds} rounds")


def main() -> None:
    parser = argparse.ArgumentParser(description="Scenario comparison benchmark")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()
    folder = ROOT / "var" / "bench-compare"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    database_url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    env = {**os.environ, "DATABASE_URL": database_url, "LOAD_DEMO_DATA": "true"}
    _owf(env, "migrate", "--load-reference", "--seed-roles")
    _owf(env, "demo")
    key = (
        _owf(env, "keys", "create", "--scope", "admin", "--name", "bench").strip().splitlines()[-1]
    )
    asyncio.run(_measure(database_url, key.strip(), args.rounds, args.iterations))
    import sqlite3

    with sqlite3.connect(folder / "bench.db") as db:
        rows = db.execute(
            'SELECT run_id, COUNT(*), SUM(LENGTH("values")) FROM projection_draws GROUP BY run_id'
        ).fetchall()
    for run_id, areas, size in rows:
        print(f"stored draws of run {run_id}: {areas} areas, {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
