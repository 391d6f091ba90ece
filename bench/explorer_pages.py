"""Explorer pages on the demo: time to a complete HTML page (and its charts) in the API
process, against the JSON reads of the same data as the baseline, in the same run.

    python -m bench.explorer_pages            # make bench-explorer

Builds a throwaway SQLite database under var/bench-explorer with the reference data, the role
catalogue, the demo ICB (NHS Cheshire and Merseyside: 1,031 organisations) and one baseline
projection, signs in with a read key of the ICB and requests each page `--rounds` times through
the ASGI app (no network). A page's first request renders its charts; later ones reuse them for
two minutes, so both the first and the median of the others are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from services.api.main import create_app
from shared.config import Settings

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "var" / "bench-explorer"
OWF = str(Path(sys.executable).with_name("oneworkforce"))
AREA, LAD = "E54000008", "E08000012"


def _owf(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [OWF, *args], check=True, env={**os.environ, **env}, capture_output=True, text=True
    )
    return done.stdout


def _prepare() -> tuple[str, str]:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    url = f"sqlite:///{WORK / 'bench.db'}"
    env = {"DATABASE_URL": url, "LOAD_DEMO_DATA": "true", "LOG_LEVEL": "WARNING"}
    _owf("migrate", "--load-reference", "--seed-roles", env=env)
    _owf("demo", env=env)
    _owf("project", "--scope", AREA, env=env)
    out = _owf("keys", "create", "--scope", "read", "--ics", AREA, "--name", "bench", env=env)
    return url, out.strip().splitlines()[-1].strip()


async def _time(
    client: httpx.AsyncClient, url: str, rounds: int, headers: dict[str, str] | None = None
) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        response = await client.get(url, headers=headers)
        times.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise SystemExit(f"{url}: {response.status_code}")
    return times


async def _bench(url: str, key: str, rounds: int) -> list[tuple[str, float, float, float]]:
    settings = Settings(_env_file=None, database_url=url, log_level="WARNING", load_demo_data=False)
    app = create_app(settings)
    rows = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            form = await client.get("/explorer/sign-in")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert token is not None
            await client.post(
                "/explorer/sign-in", data={"api_key": key, "csrf_token": token.group(1)}
            )
            bearer = {"Authorization": f"Bearer {key}"}
            # The demo queued a first run: let the embedded projector finish it first.
            for _ in range(600):
                runs = (await client.get("/v1/projections", headers=bearer)).json()["items"]
                if all(r["status"] in ("succeeded", "failed", "cancelled") for r in runs):
                    break
                await asyncio.sleep(0.5)
            latest = await client.get(f"/v1/areas/{AREA}/projections/latest", headers=bearer)
            run = latest.json()["run"]["id"]
            page = f"/explorer/projections/{run}?area={AREA}"
            pages = [
                ("overview ICB", f"/explorer/areas/{AREA}", f"/v1/areas/{AREA}/workforce"),
                ("overview LAD", f"/explorer/areas/{LAD}", f"/v1/areas/{LAD}/workforce"),
                ("projection", page, f"/v1/projections/{run}/results?area={AREA}&limit=500"),
                ("fan chart (SVG)", f"/explorer/projections/{run}/charts/projection?area={AREA}",
                 f"/v1/projections/{run}/results?area={AREA}&role=all&limit=500"),
                ("population chart (SVG)", f"/explorer/areas/{AREA}/charts/population",
                 f"/v1/areas/{AREA}/population"),
                ("agreements", "/explorer/agreements", "/v1/agreements"),
            ]  # fmt: skip
            for name, explorer_url, api_url in pages:
                first = await _time(client, explorer_url, 1)
                rest = await _time(client, explorer_url, rounds)
                base = await _time(client, api_url, rounds, headers=bearer)
                rows.append(
                    (name, first[0] * 1000, statistics.median(rest) * 1000,
                     statistics.median(base) * 1000)
                )  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description="Explorer page timings on the demo")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    url, key = _prepare()
    rows = asyncio.run(_bench(url, key, args.rounds))
    print(
        "| page | first request (ms) | median of later requests (ms) "
        "| JSON read of the same data (ms) | page / JSON |"
    )
    print("|---|---|---|---|---|")
    for name, first, median, base in rows:
        print(f"| {name} | {first:.0f} | {median:.1f} | {base:.1f} | {median / base:.2f}x |")


if __name__ == "__main__":
    main()
