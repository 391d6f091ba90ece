"""Processes that run projection models for a worker.

The model is NumPy work on many small arrays: it holds the GIL for most of its time, so jobs
that run side by side in one worker's threads take turns on one core. A worker with a pool of
model processes (`MODEL_PROCESSES`, one per CPU by default) runs the models of its concurrent
jobs on every core, while its event loop reads inputs and writes results meanwhile.

The processes are spawned (not forked: the worker holds threads and open connections) and
warmed at startup, so no job waits for NumPy to import. A process that dies (killed, out of
memory) breaks the pool: it is replaced, and the job that saw it fails this try and is retried.
A worker that dies takes its model processes with it: each watches its parent and exits when
the parent is gone (its task queue alone would not tell it, as every process holds that
queue's both ends).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

log = logging.getLogger("oneworkforce.projector")
T = TypeVar("T")


PARENT_CHECK_S = 0.5


def _exit_with_parent(parent: int) -> None:
    """In a model process: end it as soon as the worker that started it is gone."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _ready() -> bool:
    # Importing the model here, in each process, is the warm-up.
    import services.projector.pipeline  # noqa: F401

    return True


class ModelPool:
    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        )

    async def warm(self) -> None:
        """Start every process and import the model in each."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.run_in_executor(self._executor, _ready) for _ in range(self.processes))
        )

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` in a model process; arguments and result travel by pickle."""
        loop = asyncio.get_running_loop()
        executor = self._executor
        try:
            return await loop.run_in_executor(executor, function, *args)
        except BrokenProcessPool:
            if executor is self._executor:
                log.warning("a model process died; starting a new pool")
                self._executor = self._new_executor()
                executor.shutdown(wait=False, cancel_futures=True)
            raise

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
