"""TypeScript types generated from the committed docs/openapi.json by openapi-typescript compile
under `tsc --strict` with a file that uses them as a portal would (clients/typescript/check.ts).

The two npm packages, pinned by clients/typescript/package-lock.json, are installed once into
var/typescript-check (again only when the lock file changes)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from tests.contract import DOCUMENT
from tests.helpers import unavailable

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "clients" / "typescript"
CACHE = ROOT / "var" / "typescript-check"


def _tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        unavailable("node and npm", why="node and npm are not installed")
    return node, npm


def _installed(npm: str) -> Path:
    """The node_modules holding the pinned openapi-typescript and typescript."""
    lock = (SOURCES / "package-lock.json").read_bytes()
    stamp = CACHE / ".lock-sha256"
    modules = CACHE / "node_modules"
    digest = hashlib.sha256(lock).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and (modules / ".bin" / "tsc").exists():
        return modules
    CACHE.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(SOURCES / name, CACHE / name)
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"],
        cwd=CACHE,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    stamp.write_text(digest)
    return modules


def test_generated_typescript_types_compile_strictly(tmp_path: Path) -> None:
    node, npm = _tools()
    modules = _installed(npm)
    for name in ("check.ts", "tsconfig.json"):
        shutil.copy(SOURCES / name, tmp_path / name)
    generated = subprocess.run(
        [
            node,
            str(modules / "openapi-typescript" / "bin" / "cli.js"),
            str(DOCUMENT),
            "--output",
            str(tmp_path / "schema.d.ts"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = generated.stdout + generated.stderr
    assert generated.returncode == 0, output
    assert "warn" not in output.lower(), output
    assert "⚠" not in output, output
    assert "export interface operations" in (tmp_path / "schema.d.ts").read_text()
    compiled = subprocess.run(
        [node, str(modules / "typescript" / "bin" / "tsc"), "-p", str(tmp_path / "tsconfig.json")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # check.ts also holds lines marked @ts-expect-error: were the types loose, they would not
    # fail and tsc would report the unused markers.
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    assert compiled.stdout + compiled.stderr == ""
