"""Print the OpenAPI document; `make openapi` commits it as docs/openapi.json."""

from __future__ import annotations

import json
import sys

from services.api.main import create_app
from shared.config import Settings


def document() -> str:
    app = create_app(Settings(_env_file=None))
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(document())
