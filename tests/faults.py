"""Private servers for fault tests: a PostgreSQL cluster or a Redis server of the test's own,
which the test may stop, kill or restart. The shared servers are never touched.

PostgreSQL runs as the `postgres` OS user (initdb refuses root) in a temporary directory, on a
free port, with trust authentication; Redis keeps nothing on disk.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_BIN_ROOT = Path("/usr/lib/postgresql")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bin(name: str) -> str:
    candidates = sorted(PG_BIN_ROOT.glob(f"*/bin/{name}"), reverse=True)
    found = str(candidates[0]) if candidates else shutil.which(name)
    if not found:
        pytest.fail(f"the PostgreSQL server binaries ({name}) are needed for this fault test")
    return found


def _wait_for_port(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port} after {timeout_s} s")


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of one test's own."""

    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *command: str, timeout_s: float = 60) -> None:
        runner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*runner, *command], check=True, capture_output=True, timeout=timeout_s)

    def _ctl(self, action: str, *extra: str) -> None:
        self._as_postgres(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.directory / "data"),
            "-l",
            str(self.directory / "server.log"),
            "-o",
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=100",
            "-w",
            action,
            *extra,
        )

    def start(self) -> None:
        self._ctl("start")
        _wait_for_port(self.port, 30)

    def stop(self, mode: str = "fast") -> None:
        self._ctl("stop", "-m", mode)

    def restart(self, mode: str = "fast") -> None:
        """Every connection is cut; the server is back (with its data) when this returns."""
        self._ctl("restart", "-m", mode)
        _wait_for_port(self.port, 30)

    def log(self) -> str:
        path = self.directory / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """initdb + start a private cluster; stopped (immediately) and removed at exit."""
    # Its own directory under the system temp dir: pytest's are private to root, and the
    # server runs as postgres.
    directory = Path(tempfile.mkdtemp(prefix="oneworkforce-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    server = PrivatePostgres(directory=directory, port=free_port())
    try:
        server._as_postgres(
            _pg_bin("initdb"), "-D", str(directory / "data"), "-A", "trust", "-U", "postgres"
        )
        server.start()
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class PrivateRedis:
    """A Redis server of one test's own, keeping nothing on disk."""

    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is needed for this fault test")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, 10)

    def stop(self, *, kill: bool = False) -> None:
        """Stop it (SIGTERM, or SIGKILL); everything it held is lost."""
        if self.process is not None and self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis(port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop(kill=True)
