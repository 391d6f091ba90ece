"""What a deployment builds and runs is what was tested: the Docker build context, the image's
default command, compose's restart policies and healthchecks, and the lock files that both the
image and `make setup` (so CI) install from.

There is no Docker engine in CI: these check what can be checked without one, against the real
CLI, the real routes and the real files."""

from __future__ import annotations

import ast
import asyncio
import fnmatch
import json
import os
import shlex
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from services.api.main import create_app
from services.cli import app as cli_app
from services.projector.resilient import check_health
from tests.helpers import REPO_ROOT, settings_for

OWF = str(Path(sys.executable).with_name("oneworkforce"))


# ---------------------------------------------------------------------------------------------
# The Dockerfile and its build context


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in logical]


def _ignore_patterns() -> list[str]:
    lines = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, for the patterns this project uses: the last matching pattern wins, a
    pattern matches the path or any directory above it, `**/` matches at any depth."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.removeprefix("!").strip("/")
        candidates = [body]
        if body.startswith("**/"):
            candidates.append(body.removeprefix("**/"))
        for candidate in candidates:
            if any(
                fnmatch.fnmatchcase(prefix, candidate)
                or ("/" not in candidate and prefix == candidate)
                for prefix in prefixes
            ) or ("/" not in candidate and any(fnmatch.fnmatchcase(p, candidate) for p in parts)):
                excluded = not negate
                break
    return excluded


def _context(root: Path) -> dict[str, int]:
    """The files `docker build .` would send from this directory, with their sizes."""
    patterns = _ignore_patterns()
    sent: dict[str, int] = {}
    for directory, dirnames, filenames in os.walk(root):
        relative_dir = Path(directory).relative_to(root).as_posix()
        prefix = "" if relative_dir == "." else relative_dir + "/"
        dirnames[:] = [d for d in dirnames if not _ignored(prefix + d, patterns)]
        for name in filenames:
            path = prefix + name
            if not _ignored(path, patterns):
                sent[path] = (Path(directory) / name).stat().st_size
    return sent


def test_the_build_context_leaves_local_state_out(tmp_path: Path) -> None:
    # A checkout after `make run`: a virtualenv, the embedded database, caches, a .env file.
    for path, size in {
        ".venv/lib/python3.11/site-packages/numpy/core.so": 4096,
        "var/oneworkforce.db": 8192,
        ".git/objects/pack/pack-1.pack": 1024,
        "shared/__pycache__/config.cpython-311.pyc": 100,
        "services/api/__pycache__/main.cpython-311.pyc": 100,
        ".mypy_cache/3.11/cache.json": 100,
        ".env": 10,
        "oneworkforce.egg-info/PKG-INFO": 10,
        "shared/config.py": 10,
        "services/cli.py": 10,
        "migrations/env.py": 10,
        "requirements.lock": 10,
        "pyproject.toml": 10,
        "README.md": 10,
        "alembic.ini": 10,
        ".env.example": 10,
    }.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b"x" * size)
    assert sorted(_context(tmp_path)) == [
        ".env.example",
        "README.md",
        "alembic.ini",
        "migrations/env.py",
        "pyproject.toml",
        "requirements.lock",
        "services/cli.py",
        "shared/config.py",
    ]
    # This checkout itself (with its .venv, when there is one) sends only what the image needs.
    sent = _context(REPO_ROOT)
    assert not [p for p in sent if p.split("/")[0] in {".venv", "var", ".git", "tests"}]
    assert sum(sent.values()) < 20 * 1024 * 1024, f"{sum(sent.values()):,} bytes of context"
    # Everything the Dockerfile copies is in the context.
    for instruction, arguments in _dockerfile():
        if instruction == "COPY":
            for source in shlex.split(arguments)[:-1]:
                assert any(p == source or p.startswith(source + "/") for p in sent), source


def test_the_image_is_pinned_installs_the_lock_and_runs_as_a_user() -> None:
    instructions = _dockerfile()
    base = [arguments for instruction, arguments in instructions if instruction == "FROM"]
    assert len(base) == 1
    image = base[0].split()[0]
    # An exact Python release (or a digest), the same minor version the project targets.
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    target = pyproject["tool"]["mypy"]["python_version"]
    assert "@sha256:" in image or image.startswith(f"python:{target}."), image
    tag = image.split(":", 1)[1]
    release = tag.split("-")[0]
    assert release.count(".") == 2, image
    assert release.replace(".", "").isdigit(), image
    installs = [a for i, a in instructions if i == "RUN" and "pip install" in a]
    assert installs, "the image installs nothing"
    for command in installs:
        # Every install is either the hash-checked lock or the package alone.
        assert "--require-hashes -r requirements.lock" in command or "--no-deps" in command, command
    assert any("--require-hashes -r requirements.lock" in a for a in installs)
    users = [a for i, a in instructions if i == "USER"]
    assert users, "the image must not run as root"
    assert users[-1] not in ("root", "0"), "the image must not run as root"
    user = users[-1]
    # The embedded database's directory belongs to that user before it takes over.
    setup = " ".join(a for i, a in instructions[: instructions.index(("USER", user))] if i == "RUN")
    assert "useradd" in setup
    assert f"chown {user}:{user} /app/var" in setup
    workdir = [a for i, a in instructions if i == "WORKDIR"][-1]
    assert workdir == "/app"
    assert ("VOLUME", '["/app/var"]') in instructions


def _cli_accepts(args: list[str]) -> None:
    """Parse a command line with the real CLI without running it: unknown commands and options
    fail here exactly as they would in the container."""
    command: Any = typer.main.get_command(cli_app)
    context = command.make_context("oneworkforce", list(args), resilient_parsing=False)
    name, sub, rest = command.resolve_command(context, list(args))
    assert name is not None, args
    assert sub is not None, args
    sub.make_context(name, rest, parent=context)


def test_the_image_default_command_is_a_real_cli_invocation() -> None:
    instructions = dict(_dockerfile())
    assert json.loads(instructions["ENTRYPOINT"]) == ["oneworkforce"]
    default = json.loads(instructions["CMD"])
    _cli_accepts(default)
    # It migrates on its own, so it works on an empty volume; it listens beyond localhost.
    assert default[0] == "serve"
    assert "--migrate" in default
    assert default[default.index("--host") + 1] == "0.0.0.0"
    healthcheck = json.loads(instructions["HEALTHCHECK"].split("CMD", 1)[1])
    _assert_probe_hits_a_route(healthcheck, port=int(default[default.index("--port") + 1]))
    with pytest.raises(Exception, match="No such option"):
        _cli_accepts(["serve", "--no-such-option"])
    with pytest.raises(Exception, match="No such command"):
        _cli_accepts(["no-such-command"])


def _assert_probe_hits_a_route(test: list[str], *, port: int) -> None:
    """A `python -c "urlopen(...)"` probe: valid Python, the right port, a real GET route."""
    assert test[:2] == ["python", "-c"], test
    tree = ast.parse(test[2])
    urls = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "://" in node.value
    ]
    assert len(urls) == 1, test
    assert urls[0].startswith(f"http://127.0.0.1:{port}/"), urls[0]
    path = "/" + urls[0].split("/", 3)[3]
    assert _answers_get(path) not in (404, 405), f"{path} is not a GET route of the API"


def _answers_get(path: str) -> int:
    """The status of GET path on the app (no database behind it: a route answers, 404 not)."""

    async def get() -> int:
        transport = httpx.ASGITransport(app=create_app(), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
            return (await client.get(path)).status_code

    return asyncio.run(get())


# ---------------------------------------------------------------------------------------------
# docker-compose.yml


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    return loaded


def test_compose_restarts_and_health_checks_the_api_and_the_workers() -> None:
    services = _compose()["services"]
    for name in ("api", "projector", "postgres", "redis"):
        assert services[name]["restart"] in ("always", "unless-stopped"), name
    # The one-shot migration retries a few times, then stays down (others wait for it).
    assert services["migrate"]["restart"].startswith("on-failure")
    # Each app service runs a real CLI command line.
    for name in ("migrate", "api", "projector"):
        assert services[name]["build"] == "."
        _cli_accepts(services[name]["command"])
    api = services["api"]
    port = int(api["command"][api["command"].index("--port") + 1])
    assert f"{port}:{port}" in api["ports"]
    assert api["healthcheck"]["test"][0] == "CMD"
    _assert_probe_hits_a_route(api["healthcheck"]["test"][1:], port=port)
    worker_check = services["projector"]["healthcheck"]["test"]
    assert worker_check[:2] == ["CMD", "oneworkforce"], worker_check
    _cli_accepts(worker_check[2:])
    assert worker_check[2:] == ["worker", "--check"]
    for name in ("api", "projector"):
        check = services[name]["healthcheck"]
        assert {"interval", "timeout", "retries"} <= set(check), name
    # Dependencies name real services with conditions compose knows.
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            assert rule["condition"] in (
                "service_started",
                "service_healthy",
                "service_completed_successfully",
            )
    # Service images are pinned to a release, not a moving major tag.
    for name in ("postgres", "redis"):
        tag = services[name]["image"].split(":", 1)[1]
        assert tag.split("-")[0].count(".") >= 1, services[name]["image"]


def test_the_worker_healthcheck_answers(tmp_path: Path) -> None:
    env = {**os.environ, "WORKER_HEALTH_FILE": str(tmp_path / "worker.alive")}
    missing = subprocess.run(
        [OWF, "worker", "--check"], env=env, capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 1
    assert "no worker has started here" in missing.stderr
    (tmp_path / "worker.alive").write_text("up")
    fresh = subprocess.run(
        [OWF, "worker", "--check"], env=env, capture_output=True, text=True, timeout=60
    )
    assert fresh.returncode == 0, fresh.stderr
    assert "redis up" in fresh.stdout
    stale = time.time() - 3600
    os.utime(tmp_path / "worker.alive", (stale, stale))
    healthy, detail = check_health(
        settings_for("sqlite://", worker_health_file=env["WORKER_HEALTH_FILE"])
    )
    assert not healthy
    assert "has not turned for 3600s" in detail


# ---------------------------------------------------------------------------------------------
# The lock files


def _pins(path: Path) -> dict[str, list[tuple[str, Marker | None, int]]]:
    """name -> [(version, marker, number of hashes)] from a hash-checked requirements file."""
    pins: dict[str, list[tuple[str, Marker | None, int]]] = {}
    text = path.read_text(encoding="utf-8")
    for block in text.split("\n"):
        if not block or block[0] in "# " or "==" not in block:
            continue
        requirement = Requirement(block.rstrip(" \\"))
        specifier = str(requirement.specifier)
        assert specifier.startswith("=="), f"{path.name}: {block} is not an exact pin"
        pins.setdefault(str(canonicalize_name(requirement.name)), []).append(
            (specifier[2:], requirement.marker, 0)
        )
    # Hashes follow their requirement; count them per pin.
    current: tuple[str, int] | None = None
    counted: dict[tuple[str, int], int] = {}
    seen: dict[str, int] = {}
    for raw in text.splitlines():
        if raw and raw[0] not in "# " and "==" in raw:
            name = str(canonicalize_name(Requirement(raw.rstrip(" \\")).name))
            current = (name, seen.get(name, 0))
            seen[name] = seen.get(name, 0) + 1
        elif raw.strip().startswith("--hash=sha256:") and current is not None:
            counted[current] = counted.get(current, 0) + 1
    return {
        name: [(v, m, counted.get((name, i), 0)) for i, (v, m, _) in enumerate(entries)]
        for name, entries in pins.items()
    }


def _for_this_python(entries: list[tuple[str, Marker | None, int]]) -> str | None:
    chosen = [v for v, marker, _ in entries if marker is None or marker.evaluate()]
    assert len(chosen) <= 1, entries
    return chosen[0] if chosen else None


def test_the_lock_files_pin_every_dependency_and_are_what_is_installed() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = [Requirement(item) for item in project["dependencies"]]
    dev = [Requirement(item) for item in project["optional-dependencies"]["dev"]]
    lock = _pins(REPO_ROOT / "requirements.lock")
    dev_lock = _pins(REPO_ROOT / "requirements-dev.lock")
    stale = "run `make lock` after changing pyproject.toml's dependencies"
    for requirement, pins in [(r, lock) for r in runtime] + [(r, dev_lock) for r in runtime + dev]:
        name = str(canonicalize_name(requirement.name))
        assert name in pins, f"{requirement.name} is not in the lock: {stale}"
        for pinned, marker, _ in pins[name]:
            if marker is None or marker.evaluate():
                assert requirement.specifier.contains(Version(pinned), prereleases=True), (
                    f"{name}=={pinned} does not satisfy {requirement}: {stale}"
                )
    for name, entries in list(lock.items()) + list(dev_lock.items()):
        for pinned, _, hashes in entries:
            assert hashes >= 1, f"{name}=={pinned} has no hash"
    # The image's lock is the tested lock, minus the development tools: the same pins under
    # the same markers, except that a development tool may need unconditionally what the image
    # needs on one platform only (radon needs colorama everywhere, the CLI only on Windows).
    for name, entries in lock.items():
        tested = [(v, str(m)) for v, m, _ in dev_lock[name]]
        image = [(v, str(m)) for v, m, _ in entries]
        if tested != image:
            assert [v for v, _ in tested] == [v for v, _ in image], name
            assert all(m == "None" for _, m in tested), name
    # And this environment (CI's, via `make setup`) runs exactly the locked versions.
    mismatched = []
    for name, entries in dev_lock.items():
        wanted = _for_this_python(entries)
        if wanted is None:
            continue
        try:
            installed = version(name)
        except PackageNotFoundError:
            mismatched.append(f"{name}: not installed, locked {wanted}")
            continue
        if Version(installed) != Version(wanted):
            mismatched.append(f"{name}: {installed} installed, locked {wanted}")
    assert mismatched == [], "run `make setup`: " + "; ".join(mismatched)


# ---------------------------------------------------------------------------------------------
# The default command, for real


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _embedded_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "REQUIRE_SERVICES")
    }
    return {**env, "LOG_JSON": "true", "LOAD_DEMO_DATA": "false", **extra}


def test_an_unwritable_embedded_database_fails_clearly(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    env = _embedded_env(DATABASE_URL=f"sqlite:///{blocker}/var/oneworkforce.db")
    for command in (["serve", "--migrate"], ["migrate"]):
        result = subprocess.run(
            [OWF, *command], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
        )
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "cannot be written by user" in result.stderr
        assert "mount a volume" in result.stderr
        assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.slow
def test_the_default_command_serves_from_an_empty_directory(tmp_path: Path) -> None:
    """What the image does on first start: `serve --migrate` on the embedded default, run from
    a directory with nothing in it, as the user the test runs as."""
    port = _free_port()
    default = json.loads(dict(_dockerfile())["CMD"])
    default[default.index("--host") + 1] = "127.0.0.1"  # the test's own loopback only
    default[default.index("--port") + 1] = str(port)
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [OWF, *default], env=_embedded_env(), cwd=tmp_path, stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + 180
            while True:
                assert process.poll() is None, (tmp_path / "serve.log").read_text()
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                        assert r.status == 200
                        break
                except OSError:
                    assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                    time.sleep(0.5)
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert (tmp_path / "var" / "oneworkforce.db").stat().st_size > 1_000_000  # reference data
