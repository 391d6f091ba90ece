"""The layout holds: `shared/` (what both services agree on, and data access) never imports
`services`, so either service can be built on it without the other; and the README's layout
table describes every package and module of `shared/`, `services/`, `services/domain/`,
`services/api/` (whose domain folders it describes together) and `services/projector/`."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import REPO_ROOT


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports, at any depth (function-level imports included)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_shared_never_imports_services() -> None:
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{line} imports {module}"
        for path in sorted((REPO_ROOT / "shared").rglob("*.py"))
        for line, module in imported_modules(path)
        if module == "services" or module.startswith("services.")
    ]
    assert offenders == []


def test_the_check_sees_function_level_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f() -> None:\n    from services.projector import jobs\n")
    assert imported_modules(module) == [(2, "services.projector")]


def layout_table() -> dict[str, str]:
    """The README's code layout table: path -> what it says."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("| path | what |", 1)[1].split("\n\n", 1)[0]
    rows = {}
    for line in table.splitlines()[2:]:
        path, what = (cell.strip() for cell in line.strip().strip("|").split("|", 1))
        rows[path.strip("`")] = what
    return rows


def _named(name: str, parent: str, rows: dict[str, str]) -> bool:
    """A path is named in the table by its own row or, by its name, in its folder's row; the
    API's domain folders (each with its `router.py`) by the row's "one folder per domain"."""
    full = f"{parent}{name}"
    if parent == "services/api/" and (REPO_ROOT / full / "router.py").exists():
        return "one folder per domain" in rows.get(parent, "")
    return full in rows or f"`{name}`" in rows.get(parent, "")


def test_the_readme_layout_table_matches_the_tree() -> None:
    rows = layout_table()
    missing_paths = [path for path in rows if not (REPO_ROOT / path).exists()]
    assert missing_paths == [], "rows for paths that do not exist"
    unnamed = []
    for parent in (
        "shared/",
        "services/",
        "services/domain/",
        "services/api/",
        "services/projector/",
    ):
        for child in sorted((REPO_ROOT / parent).iterdir()):
            if child.name.startswith(("_", ".")) or child.suffix not in ("", ".py"):
                continue
            name = f"{child.name}/" if child.is_dir() else child.name
            if not _named(name, parent, rows):
                unnamed.append(f"{parent}{name}")
    for child in sorted(REPO_ROOT.iterdir()):
        tracked_dir = (child.is_dir() and (child / "__init__.py").exists()) or child.name in (
            "migrations",
            "docs",
            "bench",
        )
        if tracked_dir and not any(path.startswith(f"{child.name}/") for path in rows):
            unnamed.append(f"{child.name}/")
    assert unnamed == [], "files and folders the README's layout table does not describe"
