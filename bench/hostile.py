"""Hostile uploads: the bulk CSV line splitter is linear in the input and refuses a long line at
once, and huge bodies without a key cost the API no memory.

1. Splitting: 32, 64 and 128 MiB of ordinary lines through `split_lines` (as the bulk import
   reads them, in 64 KiB chunks), against a baseline of `bytes.split` over the whole file held
   in memory, the least any splitter can do. Linear means the ratio stays flat as the file
   doubles.
2. No newline: a header then 32, 64 and 128 MiB without a line feed: the time until the
   splitter refuses it (it stops at the line limit, so the time does not grow with the file).
3. Memory: a live API process (SQLite) receives ten concurrent 300 MiB chunked `text/csv`
   bodies to JSON routes, without a key and with a read key; its RSS growth is reported.

    python -m bench.hostile
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from services.domain.returns.lines import DEFAULT_MAX_LINE_BYTES, split_lines
from shared.errors import CsvLineTooLong

MIB = 1024 * 1024
CHUNK = 64 * 1024
LINE = b"RBT,2025-03-31,care-worker,40,32.5,4,10,8,2,310,1.5,2,6,9,8,9,6,2,11.95\r\n"


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), CHUNK):
        yield bytes(view[start : start + CHUNK])


async def _split(data: bytes) -> int:
    count = 0
    async for _, lines in split_lines(_chunks(data), max_line_bytes=DEFAULT_MAX_LINE_BYTES):
        count += len(lines)
    return count


async def _refuse(data: bytes) -> float:
    started = time.perf_counter()
    try:
        await _split(data)
    except CsvLineTooLong:
        return time.perf_counter() - started
    raise AssertionError("a line without end was accepted")


def _median(runs: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def splitting(sizes: list[int], runs: int) -> None:
    print("| file | split_lines (s) | bytes.split baseline (s) | ratio |")
    print("|---|---|---|---|")
    for size in sizes:
        data = LINE * (size * MIB // len(LINE))

        def ours_run(data: bytes = data) -> object:
            return asyncio.run(_split(data))

        def base_run(data: bytes = data) -> object:
            return data.split(b"\n")

        ours = _median(runs, ours_run)
        base = _median(runs, base_run)
        print(f"| {size} MiB | {ours:.3f} | {base:.3f} | {ours / base:.2f}x |")


def no_newline(sizes: list[int]) -> None:
    print("\n| header + MiB without a newline | refused after (s) |")
    print("|---|---|")
    header = b"organisation_code,as_at,role_code\r\n"
    for size in sizes:
        data = header + b"x" * (size * MIB)
        print(f"| {size} MiB | {asyncio.run(_refuse(data)):.4f} |")


def memory() -> None:
    import os
    import subprocess
    import sys

    import psutil

    from tests.api.test_hostile_bodies import _send_huge_body, _send_small, _watch_rss
    from tests.live import live_api

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        cli = str(Path(sys.executable).parent / "oneworkforce")
        env = {**os.environ, "DATABASE_URL": url}
        subprocess.run([cli, "migrate"], check=True, capture_output=True, env=env)
        created = subprocess.run(
            [cli, "keys", "create", "--scope", "read", "--name", "bench"],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
        key = created.stdout.strip().splitlines()[-1].strip()
        print("\n| keys | API RSS before (MiB) | peak growth (MiB) | slowest answer (s) |")
        print("|---|---|---|---|")
        with live_api(url, rate_limit_enabled="false") as api:
            process = psutil.Process(api.process.pid)
            for label, headers in (("none", {}), ("read", {"Authorization": f"Bearer {key}"})):

                async def run(headers: dict[str, str] = headers) -> tuple[int, int, float]:
                    await _send_small(api, headers)
                    before = process.memory_info().rss
                    peak = [before]
                    stop = asyncio.Event()
                    watcher = asyncio.create_task(_watch_rss(api.process.pid, peak, stop))
                    answers = await asyncio.gather(
                        *(
                            _send_huge_body(api.port, "/v1/keys", headers, chunked=True)
                            for _ in range(10)
                        )
                    )
                    stop.set()
                    await watcher
                    return before, peak[0] - before, max(a[2] for a in answers)

                before, growth, slowest = asyncio.run(run())
                print(f"| {label} | {before / MIB:.0f} | {growth / MIB:.1f} | {slowest:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sizes = [32, 64, 128]
    splitting(sizes, args.runs)
    no_newline(sizes)
    memory()


if __name__ == "__main__":
    main()
