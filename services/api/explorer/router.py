"""The Explorer: server-rendered pages served by the API itself, signed in with an API key."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from services.api.charts import draw
from services.api.deps import SessionDep, SettingsDep
from services.api.explorer import exports, overview, sessions, views
from services.api.explorer.pages import ExplorerRoute, inline_svg, render
from services.api.explorer.sessions import ExplorerSession
from shared.db.base import utcnow
from shared.errors import NotFound, Unauthorized
from shared.models import ENGLAND_CODE
from shared.repositories import audit

router = APIRouter(prefix="/explorer", route_class=ExplorerRoute, include_in_schema=False)
root_router = APIRouter(include_in_schema=False)


@root_router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/explorer", status_code=307)


async def current_session(request: Request, session: SessionDep) -> ExplorerSession:
    return await sessions.current(session, request=request)


SignedIn = Annotated[ExplorerSession, Depends(current_session)]


def _safe_next(target: str | None) -> str:
    # Only a path inside the Explorer: never another site, never a scheme-relative URL.
    if target and target.startswith("/explorer") and not target.startswith("//"):
        return target
    return "/explorer"


def _home_of(explorer: ExplorerSession) -> str:
    principal = explorer.principal
    if principal.organisation_id is not None:
        return "/explorer/returns"
    if principal.ics_code is not None:
        return f"/explorer/areas/{principal.ics_code}"
    return f"/explorer/areas/{ENGLAND_CODE}"


@router.get("")
async def home(explorer: SignedIn) -> RedirectResponse:
    return RedirectResponse(_home_of(explorer), status_code=303)


@router.get("/sign-in")
async def sign_in_form(
    request: Request,
    settings: SettingsDep,
    next: Annotated[str | None, Query(max_length=2000)] = None,
    reason: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    token = sessions.login_csrf(request)
    response = render(
        request,
        "sign_in.html",
        {"csrf_token": token, "next": _safe_next(next), "reason": reason, "error": None},
    )
    sessions.set_login_csrf_cookie(response, token=token, settings=settings, request=request)
    return response


@router.post("/sign-in")
async def sign_in(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    api_key: Annotated[str, Form(max_length=300)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/explorer",
) -> Response:
    sessions.check_csrf(request.cookies.get(sessions.LOGIN_CSRF_COOKIE), csrf_token)
    try:
        token, row = await sessions.sign_in(session, api_key=api_key, settings=settings)
    except Unauthorized as exc:
        return render(
            request,
            "sign_in.html",
            {
                "csrf_token": csrf_token,
                "next": _safe_next(next),
                "reason": None,
                "error": exc.message if api_key.strip() else "Enter your API key.",
            },
            status_code=401,
        )
    await audit.record(
        session,
        key_id=row.key_id,
        actor="explorer",
        action="explorer.sign_in",
        resource_type="web_session",
        resource_id=str(row.id),
        detail={"expires_at": row.expires_at.isoformat()},
    )
    response = RedirectResponse(_safe_next(next), status_code=303)
    sessions.set_session_cookie(response, token=token, settings=settings, request=request)
    response.delete_cookie(sessions.LOGIN_CSRF_COOKIE, path="/explorer")
    return response


@router.post("/sign-out")
async def sign_out(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    explorer: SignedIn,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    sessions.check_csrf(explorer.csrf_token, csrf_token)
    await sessions.sign_out(session, explorer=explorer)
    await audit.record(
        session,
        key_id=explorer.principal.key_id,
        actor="explorer",
        action="explorer.sign_out",
        resource_type="web_session",
        resource_id=str(explorer.session_id),
    )
    response = RedirectResponse("/explorer/sign-in?reason=You%20have%20signed%20out.", 303)
    sessions.clear_session_cookie(response, settings=settings, request=request)
    return response


@router.get("/go")
async def go(
    explorer: SignedIn, area: Annotated[str, Query(max_length=9, pattern=r"^E\d{8}$")]
) -> RedirectResponse:
    """The area picker's target, so it works without JavaScript."""
    return RedirectResponse(f"/explorer/areas/{area}", status_code=303)


# ---------------------------------------------------------------------------------------------
# Area overview


async def _overview(
    request: Request, session: SessionDep, explorer: ExplorerSession, code: str
) -> overview.Overview:
    return await overview.overview(
        session, principal=explorer.principal, area_code=code, on=utcnow().date()
    )


@router.get("/areas/{code}")
async def area_page(
    code: str, request: Request, session: SessionDep, explorer: SignedIn
) -> Response:
    data = await _overview(request, session, explorer, code)
    chart = await asyncio.to_thread(views.population_chart, data, "svg")
    return render(
        request,
        "overview.html",
        {
            "data": data,
            "roles_table": views.workforce_roles_table(data),
            "sectors_table": views.workforce_sectors_table(data),
            "gaps_table": views.not_reporting_table(data),
            "population_table": views.population_table(data),
            "population_svg": inline_svg(
                chart, label=f"Population trend chart for {data.area.name}", prefix="pop"
            ),
        },
        explorer=explorer,
    )


_AREA_TABLES = {
    "workforce-roles": views.workforce_roles_table,
    "workforce-sectors": views.workforce_sectors_table,
    "data-gaps": views.not_reporting_table,
    "population": views.population_table,
}


def table_response(table: exports.Table, fmt: exports.TableFormat, stem: str) -> Response:
    return Response(
        exports.render(table, fmt),
        media_type=exports.MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{stem}-{table.name}.{fmt}"',
            "Cache-Control": "no-store",
        },
    )


def chart_response(body: bytes, fmt: draw.ImageFormat, filename: str) -> Response:
    return Response(
        body,
        media_type=draw.MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{filename}.{fmt}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/areas/{code}/tables/{name}")
async def area_table(
    code: str,
    name: str,
    request: Request,
    session: SessionDep,
    explorer: SignedIn,
    format: Annotated[Literal["csv", "xlsx"], Query()] = "csv",
) -> Response:
    builder = _AREA_TABLES.get(name)
    if builder is None:
        raise NotFound(f"There is no table named {name!r}.", code="table_not_found")
    data = await _overview(request, session, explorer, code)
    return table_response(builder(data), format, data.area.code)


@router.get("/areas/{code}/charts/population")
async def area_population_chart(
    code: str,
    request: Request,
    session: SessionDep,
    explorer: SignedIn,
    format: Annotated[Literal["svg", "png"], Query()] = "svg",
) -> Response:
    data = await _overview(request, session, explorer, code)
    body = await asyncio.to_thread(views.population_chart, data, format)
    return chart_response(body, format, f"{data.area.code}-population")
