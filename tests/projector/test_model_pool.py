"""A worker's model processes: work runs there, and a process that dies is replaced."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool

import pytest

from services.projector.model_pool import ModelPool


def _pid() -> int:
    return os.getpid()


def _die() -> None:
    os._exit(9)  # a process killed mid-model (out of memory, SIGKILL)


async def test_work_runs_in_other_processes_and_a_dead_one_is_replaced() -> None:
    pool = ModelPool(2)
    try:
        await pool.warm()
        pids = {await pool.run(_pid) for _ in range(6)}
        assert os.getpid() not in pids
        assert 1 <= len(pids) <= 2
        with pytest.raises(BrokenProcessPool):
            await pool.run(_die)
        # The next job gets a new pool; the retried job would succeed.
        after = await pool.run(_pid)
        assert after not in pids
    finally:
        pool.close()


# A process owning a pool, as a worker does: it prints its model processes' ids, then waits.
_OWNER = """
import asyncio, os, sys
from services.projector.model_pool import ModelPool

async def main():
    pool = ModelPool(2)
    await pool.warm()
    pids = {await pool.run(os.getpid) for _ in range(8)}
    print(" ".join(map(str, sorted(pids))), flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_a_killed_owner_takes_its_model_processes_with_it() -> None:
    owner = subprocess.Popen([sys.executable, "-c", _OWNER], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(owner.stdout.readline), timeout=60)
        pids = [int(pid) for pid in line.split()]
        assert pids
        assert all(_alive(pid) for pid in pids)
        owner.send_signal(signal.SIGKILL)  # no shutdown hook runs
        owner.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not any(_alive(pid) for pid in pids), "model processes outlived their worker"
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        if owner.stdout is not None:
            owner.stdout.close()
