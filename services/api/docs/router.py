"""API documentation that works offline: Swagger UI and ReDoc from packaged assets, and a page
for every problem code (the `type` of each problem+json answer)."""

from __future__ import annotations

import html
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from services.api.openapi import raises
from shared.errors import TITLES, DomainError, NotFound
from shared.schemas.problem import ProblemDoc

ASSETS_PATH = "/docs/assets"
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"

router = APIRouter(tags=["documentation"])


def assets() -> StaticFiles:
    """Swagger UI and ReDoc's files, shipped in a package: no CDN needed."""
    return StaticFiles(directory=ASSETS_DIR)


@router.get("/docs", include_in_schema=False)
async def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
        swagger_ui_parameters={"persistAuthorization": True},
    )


@router.get("/redoc", include_in_schema=False)
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(
        openapi_url="/openapi.json",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{ASSETS_PATH}/redoc.standalone.js",
        redoc_favicon_url=f"{ASSETS_PATH}/favicon.png",
        with_google_fonts=False,
    )


def _doc(error: type[DomainError]) -> ProblemDoc:
    return ProblemDoc(
        code=error.code,
        status=error.status,
        title=TITLES[error.status],
        meaning=error.meaning(),
        fix=error.fix,
        type=f"/problems/{error.code}",
    )


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}}
code{{background:#f3f3f3;padding:0 .2rem}}</style></head>
<body>{body}<p><a href="/problems">All problem codes</a> · <a href="/docs">API reference</a></p>
</body></html>"""


def _section(doc: ProblemDoc) -> str:
    return (
        f'<h2 id="{html.escape(doc.code)}"><code>{html.escape(doc.code)}</code> '
        f"({doc.status} {html.escape(doc.title)})</h2>"
        f"<p>{html.escape(doc.meaning)}</p><p><strong>Fix:</strong> {html.escape(doc.fix)}</p>"
    )


@router.get(
    "/problems",
    response_model=list[ProblemDoc],
    summary="Every problem code the API answers with: what it means and how to fix it",
    responses={200: {"content": {"text/html": {}}}},
)
async def list_problems(request: Request) -> Response:
    docs = [_doc(error) for _, error in sorted(DomainError.registry.items())]
    if _wants_html(request):
        body = "<h1>Problem codes</h1>" + "".join(_section(doc) for doc in docs)
        return HTMLResponse(_PAGE.format(title="Problem codes", body=body))
    return Response(
        "[" + ",".join(doc.model_dump_json() for doc in docs) + "]",
        media_type="application/json",
    )


@router.get(
    "/problems/{code}",
    response_model=ProblemDoc,
    summary="One problem code: what it means and how to fix it",
    responses={200: {"content": {"text/html": {}}}, **raises(NotFound)},
)
async def get_problem(code: str, request: Request) -> Response:
    error = DomainError.registry.get(code)
    if error is None:
        raise NotFound(f"No problem code {code!r}; GET /problems lists them.")
    doc = _doc(error)
    if _wants_html(request):
        return HTMLResponse(_PAGE.format(title=html.escape(code), body=_section(doc)))
    return Response(doc.model_dump_json(), media_type="application/json")
