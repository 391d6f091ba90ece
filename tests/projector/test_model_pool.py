"""A worker's model processes: work runs there, and a process that dies is replaced."""

from __future__ import annotations

import os
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
