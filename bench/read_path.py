"""Read path: the latest projection for one ICB through the API against bare Starlette.

    python -m bench.read_path            # needs PostgreSQL and `wrk`

Builds a fresh PostgreSQL database (BENCH_READ_DATABASE_URL, default
postgresql://postgres@127.0.0.1:5432/oneworkforce_readbench; dropped and re-created) with the
reference data, the role catalogue, the demo ICB and its baseline projection, then serves
`GET /v1/areas/E54000008/projections/latest` from `oneworkforce serve` and the very same bytes
from a bare Starlette app (bench/bare_starlette.py), both on uvicorn with one process, and
drives each with wrk in turn (A B A B ...). Reports requests per second for full responses and
for 304s (If-None-Match), and the API/bare ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.ingest import OUT, _psql

OWF = str(Path(sys.executable).with_name("oneworkforce"))
UVICORN = str(Path(sys.executable).with_name("uvicorn"))
API_PORT, BARE_PORT = 8766, 8767  # --api-port / --bare-port
AREA = "E54000008"


def _wait(url: str, headers: dict[str, str] | None = None) -> None:
    for _ in range(200):
        try:
            if httpx.get(url, headers=headers).status_code in (200, 304):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def _wrk(url: str, headers: dict[str, str], seconds: int) -> float:
    args = ["wrk", "-t1", "-c8", f"-d{seconds}s"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, url], check=True, capture_output=True, text=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise SystemExit(out)
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description="Read-path benchmark")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--api-port", type=int, default=API_PORT)
    parser.add_argument("--bare-port", type=int, default=BARE_PORT)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_READ_DATABASE_URL",
            "postgresql://postgres@127.0.0.1:5432/oneworkforce_readbench",
        ),
    )
    args = parser.parse_args()
    admin_url = args.database_url.rsplit("/", 1)[0] + "/postgres"
    name = args.database_url.rsplit("/", 1)[1]
    _psql(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    _psql(admin_url, f"CREATE DATABASE {name}")
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": "",
        "LOG_LEVEL": "WARNING",
        "LOAD_DEMO_DATA": "true",
        # The read path itself is measured, not the per-key rate limit (which would answer
        # 429 within the first second of wrk).
        "RATE_LIMIT_ENABLED": "false",
    }
    # The demo queues the ICB's first baseline run (200 Monte Carlo runs); the API's embedded
    # projector computes it when it starts, and the measurements begin once it has finished,
    # so nothing else runs in the API process meanwhile.
    for command in (
        ["migrate", "--load-reference", "--seed-roles"],
        ["demo"],
    ):
        subprocess.run([OWF, *command], env=env, check=True, capture_output=True)
    token = (
        subprocess.run(
            [OWF, "keys", "create", "--scope", "read", "--name", "bench"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    auth = {"Authorization": f"Bearer {token}"}
    api = subprocess.Popen(
        [OWF, "serve", "--port", str(args.api_port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    bare = None
    try:
        api_url = f"http://127.0.0.1:{args.api_port}/v1/areas/{AREA}/projections/latest"
        _wait(api_url, auth)
        while (
            _psql(
                args.database_url,
                "SELECT count(*) FROM projection_runs WHERE status IN ('queued', 'running')",
            ).strip()
            != "0"
        ):
            time.sleep(0.5)
        time.sleep(3)  # past LATEST_CACHE_S, so every request sees the same latest run
        first = httpx.get(api_url, headers=auth)
        first.raise_for_status()
        OUT.mkdir(parents=True, exist_ok=True)
        body_file = OUT / "latest.json"
        body_file.write_bytes(first.content)
        etag = first.headers["etag"]
        bare = subprocess.Popen(
            [
                UVICORN,
                "bench.bare_starlette:app",
                "--port",
                str(args.bare_port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env={**env, "BARE_BODY": str(body_file)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        bare_url = f"http://127.0.0.1:{args.bare_port}/latest"
        _wait(bare_url)
        gzip_headers = {"Accept-Encoding": "gzip"}
        zipped = httpx.get(api_url, headers={**auth, **gzip_headers})
        rows: dict[str, list[float]] = {
            "api": [],
            "bare": [],
            "api_304": [],
            "bare_304": [],
            "api_gzip": [],
            "bare_gzip": [],
        }
        # Warm both servers (first-request work, caches, connection pools), untimed.
        _wrk(api_url, {**auth, "If-None-Match": etag}, 2)
        _wrk(api_url, {**auth, **gzip_headers}, 2)
        _wrk(bare_url, {}, 2)
        for _ in range(args.rounds):
            rows["api"].append(_wrk(api_url, auth, args.seconds))
            rows["bare"].append(_wrk(bare_url, {}, args.seconds))
            rows["api_304"].append(_wrk(api_url, {**auth, "If-None-Match": etag}, args.seconds))
            rows["bare_304"].append(_wrk(bare_url, {"If-None-Match": '"bare"'}, args.seconds))
            rows["api_gzip"].append(_wrk(api_url, {**auth, **gzip_headers}, args.seconds))
            rows["bare_gzip"].append(_wrk(bare_url, gzip_headers, args.seconds))
        result = {
            "body_bytes": len(first.content),
            "gzip_body_bytes": int(zipped.headers.get("content-length", 0)),
            "rps": {k: [round(v, 1) for v in vals] for k, vals in rows.items()},
            "ratio_full_median": round(
                statistics.median(a / b for a, b in zip(rows["api"], rows["bare"], strict=True)), 3
            ),
            "ratio_304_median": round(
                statistics.median(
                    a / b for a, b in zip(rows["api_304"], rows["bare_304"], strict=True)
                ),
                3,
            ),
            "ratio_gzip_median": round(
                statistics.median(
                    a / b for a, b in zip(rows["api_gzip"], rows["bare_gzip"], strict=True)
                ),
                3,
            ),
        }
    finally:
        for process in (api, bare):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
    print(json.dumps(result, indent=2))
    (OUT / "read_path.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
