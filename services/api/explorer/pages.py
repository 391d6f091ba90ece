"""Rendering helpers of the Explorer: templates, inline charts, redirects and error pages."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from services.api.explorer.errors import SignInRequired
from services.api.explorer.sessions import ExplorerSession
from shared.errors import DomainError

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")


def _fte(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _whole(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _about(value: float | None) -> str:
    """An estimate to three significant figures: 36,207 reads 36,200."""
    if value is None:
        return "-"
    if abs(value) < 1000:
        return f"{value:,.0f}"
    step = 10 ** (len(str(int(abs(value)))) - 3)
    return f"{math.copysign(math.floor(abs(value) / step + 0.5) * step, value):,.0f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+,.1f}"


def _cell(value: object, header: str = "") -> str:
    """A table cell as a page shows it: numbers with thousands separated (downloads keep
    them plain), years and ranks as they are."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if "year" in header or header == "rank":
        return str(value)
    return f"{value:,}"


_HEADING_WORDS = {"fte": "FTE", "pct": "%", "ods": "ODS", "lad": "LAD"}


def _heading(column: str) -> str:
    """A column name as a table heading: `vacancy_rate_pct` reads "vacancy rate %"."""
    return " ".join(_HEADING_WORDS.get(word, word) for word in column.split("_"))


templates.env.filters["cell"] = _cell
templates.env.filters["heading"] = _heading
templates.env.filters["fte"] = _fte
templates.env.filters["whole"] = _whole
templates.env.filters["about"] = _about
templates.env.filters["pct"] = _pct
templates.env.filters["signed"] = _signed

_SVG_START = re.compile(r"^.*?<svg ", re.S)
_SVG_ID = re.compile(r'\bid="([^"]+)"')
_SVG_REF = re.compile(r"url\(#([^)]+)\)|xlink:href=\"#([^\"]+)\"")


def inline_svg(svg: bytes, *, label: str, prefix: str) -> Markup:
    """A matplotlib SVG ready to sit in a page: no XML prolog, ids made unique to the chart,
    and exposed as one image with a label (its numbers are in the table beside it)."""
    text = _SVG_START.sub("<svg ", svg.decode("utf-8"), count=1)
    text = _SVG_ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', text)
    text = _SVG_REF.sub(
        lambda m: (
            f"url(#{prefix}-{m.group(1)})" if m.group(1) else f'xlink:href="#{prefix}-{m.group(2)}"'
        ),
        text,
    )
    escaped = Markup.escape(label)
    text = text.replace(
        "<svg ", f'<svg role="img" aria-label="{escaped}" focusable="false" class="chart" ', 1
    )
    return Markup(text)


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    explorer: ExplorerSession | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    response = templates.TemplateResponse(
        request,
        name,
        {"explorer": explorer, "principal": explorer.principal if explorer else None, **context},
        status_code=status_code,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def sign_in_redirect(request: Request, message: str | None = None) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"/explorer/sign-in?next={quote(target, safe='')}"
    if message:
        location += f"&reason={quote(message, safe='')}"
    return RedirectResponse(location, status_code=303)


def error_page(request: Request, *, status: int, title: str, message: str) -> HTMLResponse:
    return render(
        request,
        "error.html",
        {"title": title, "status": status, "message": message},
        status_code=status,
    )


class ExplorerRoute(APIRoute):
    """Routes of the Explorer answer in HTML: a missing session redirects to the sign-in form,
    and a refused request is a page saying why, with the same status the API would give."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired as exc:
                if request.method == "GET":
                    return sign_in_redirect(request, exc.message)
                return error_page(request, status=401, title="Signed out", message=exc.message)
            except DomainError as exc:
                return error_page(request, status=exc.status, title=exc.title, message=exc.message)
            except RequestValidationError as exc:
                fields = ", ".join(
                    str(error["loc"][-1]) for error in exc.errors() if error.get("loc")
                )
                return error_page(
                    request,
                    status=422,
                    title="Check the address",
                    message=f"Some of the values in the address are not valid ({fields}).",
                )

        return route
