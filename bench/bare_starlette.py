"""A bare Starlette app serving fixed bytes: the read-path benchmark's baseline.

BARE_BODY=path/to/body.json uvicorn bench.bare_starlette:app --port 8767  (gzip when accepted)
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY = Path(os.environ.get("BARE_BODY", "bench/out/latest.json")).read_bytes()
GZIP_BODY = gzip.compress(BODY, compresslevel=6, mtime=0)
ETAG = '"bare"'


async def latest(request: Request) -> Response:
    if request.headers.get("if-none-match") == ETAG:
        return Response(status_code=304, headers={"ETag": ETAG})
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(
            GZIP_BODY,
            media_type="application/json",
            headers={"ETag": ETAG, "Content-Encoding": "gzip"},
        )
    return Response(BODY, media_type="application/json", headers={"ETag": ETAG})


app = Starlette(routes=[Route("/latest", latest)])
