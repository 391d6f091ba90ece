"""Private servers and processes for fault tests: break these, never the shared ones.

- `PrivateRedis`: a `redis-server` that keeps nothing (no RDB, no AOF), on a free port. Stopping
  it loses every key, as a non-persistent Redis does when it dies.
- `PrivatePostgres`: a throwaway cluster in a temporary directory (initdb, pg_ctl), run as the
  `postgres` OS user when the tests run as root (initdb refuses root). It can be restarted,
  stopped and started while clients are connected.
- `ProjectorWorker`: `oneworkforce worker` as its own process, with its own environment and log.

In CI (REQUIRE_SERVICES=1) a missing binary fails the test; elsewhere it skips.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self

from tests.helpers import unavailable

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def _require(condition: bool, what: str) -> None:
    if condition:
        return
    unavailable(what, why=f"{what} not found: fault tests need it")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, *, timeout_s: float, process: subprocess.Popen[bytes] | None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port} after {timeout_s}s")


class PrivateRedis:
    """A non-persistent redis-server for one test; `stop()` loses all data, `start()` is empty."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        _require(binary is not None, "redis-server")
        assert binary is not None
        self._binary = binary
        self._workdir = workdir
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        assert self._process is None or self._process.poll() is not None
        self._workdir.mkdir(parents=True, exist_ok=True)
        log = (self._workdir / "redis.log").open("ab")
        self._process = subprocess.Popen(
            [
                self._binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self._workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        _wait_for_port(self.port, timeout_s=10, process=self._process)

    def stop(self, *, kill: bool = True) -> None:
        """SIGKILL (or SIGTERM): the server dies with everything it held."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        self._process.wait(timeout=30)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PrivatePostgres:
    """A PostgreSQL cluster of its own, in a temporary directory, for one test module.

    The directory is made directly under the system temp directory: the `postgres` user must
    be able to reach it, which pytest's private temp directories do not allow.
    """

    def __init__(self) -> None:
        _require(bool(PG_BIN_DIRS), "PostgreSQL server binaries (initdb, pg_ctl)")
        self._bin = PG_BIN_DIRS[0]
        self._workdir = Path(tempfile.mkdtemp(prefix="oneworkforce-pg-"))
        self._data = self._workdir / "data"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            _require(shutil.which("runuser") is not None, "runuser")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(self._bin / command[0]), *command[1:]]
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def init(self) -> None:
        if self._as_postgres:
            shutil.chown(self._workdir, "postgres", "postgres")
            self._workdir.chmod(0o700)
        self._run("initdb", "-D", str(self._data), "-A", "trust", "-U", "postgres", "-E", "UTF8")

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self._workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self._data),
            "-o",
            options,
            "-l",
            str(self._workdir / "postgres.log"),
            "-w",
            "-t",
            "60",
            *extra,
            action,
        )

    def start(self) -> None:
        self._pg_ctl("start")

    def stop(self, mode: str = "fast") -> None:
        """`fast` disconnects every client (what a restart does to them); `immediate` is a crash."""
        self._pg_ctl("stop", "-m", mode)

    def restart(self, mode: str = "fast") -> None:
        self._pg_ctl("restart", "-m", mode)

    def create_database(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url(name)

    def log(self) -> str:
        path = self._workdir / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def __enter__(self) -> Self:
        self.init()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self._workdir, ignore_errors=True)


def oneworkforce_command() -> str:
    script = Path(sys.executable).with_name("oneworkforce")
    assert script.exists(), f"the oneworkforce command is not installed beside {sys.executable}"
    return str(script)


class ProjectorWorker:
    """`oneworkforce worker` in its own process; killed at exit if still alive."""

    def __init__(self, log_path: Path, **environment: str) -> None:
        self.log_path = log_path
        # cwd outside the checkout, so no .env file there can change the worker's settings.
        self._env = {**os.environ, "LOG_JSON": "true", **environment}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [oneworkforce_command(), "worker"],
                env=self._env,
                cwd=self.log_path.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        return self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def private_redis(workdir: Path) -> Iterator[PrivateRedis]:
    with PrivateRedis(workdir) as redis:
        yield redis
