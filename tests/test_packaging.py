"""The package's metadata is what the API reports about itself."""

from __future__ import annotations

import tomllib
from importlib.metadata import version

from services.api.main import create_app
from tests.helpers import REPO_ROOT


def test_the_api_version_is_the_package_version() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert version("oneworkforce") == project["version"]
    assert create_app().openapi()["info"]["version"] == project["version"]
