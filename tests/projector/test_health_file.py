"""The worker's health file, as a container healthcheck reads it while the worker writes it."""

from __future__ import annotations

import threading
from pathlib import Path

from arq.connections import RedisSettings

from services.projector.resilient import ResilientWorker, check_health
from tests.helpers import settings_for


async def _noop(ctx: dict[str, object]) -> None:
    return None


def _worker(path: Path) -> ResilientWorker:
    # Built (inside the test's event loop, which it takes), never started: marking alive
    # needs no Redis.
    return ResilientWorker(
        functions=[_noop],
        redis_settings=RedisSettings(host="127.0.0.1", port=1),
        health_path=path,
        handle_signals=False,
    )


async def test_a_reader_never_sees_the_health_file_empty_or_torn(tmp_path: Path) -> None:
    path = tmp_path / "worker.alive"
    worker = _worker(path)
    worker._mark_alive("up")
    seen: set[str] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.add(path.read_text(encoding="utf-8"))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for turn in range(3000):
            worker._mark_alive("down" if turn % 3 == 0 else "up")
    finally:
        stop.set()
        reader.join()
    assert seen == {"up", "down"}
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left beside it


async def test_an_unchanged_state_only_touches_the_file(tmp_path: Path) -> None:
    path = tmp_path / "worker.alive"
    worker = _worker(path)
    worker._mark_alive("down")
    inode = path.stat().st_ino
    worker._mark_alive("down")
    assert path.stat().st_ino == inode
    healthy, detail = check_health(settings_for("sqlite://", worker_health_file=str(path)))
    assert healthy
    assert detail.endswith("redis down")
    worker._mark_alive("up")
    assert path.read_text(encoding="utf-8") == "up"
