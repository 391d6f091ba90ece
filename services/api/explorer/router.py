"""The Explorer: server-rendered pages served by the API itself, signed in with an API key."""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from collections.abc import Callable
from datetime import date
from typing import Annotated, Literal, Protocol
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from services.api.cache import TtlCache
from services.api.charts import draw
from services.api.deps import SessionDep, SettingsDep
from services.api.explorer import agreements as agreements_view
from services.api.explorer import exports, overview, projection, sessions, upload, views
from services.api.explorer.errors import FormDamaged, PageItemNotFound, UploadFileRequired
from services.api.explorer.pages import ExplorerRoute, render
from services.api.explorer.sessions import ExplorerSession
from services.api.projections import service as projections_service
from services.api.returns import service as returns_service
from shared.db.base import utcnow
from shared.errors import Unauthorized
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


async def _overview(session: SessionDep, explorer: ExplorerSession, code: str) -> overview.Overview:
    return await overview.overview(
        session, principal=explorer.principal, area_code=code, on=utcnow().date()
    )


@router.get("/areas/{code}")
async def area_page(
    code: str, request: Request, session: SessionDep, explorer: SignedIn
) -> Response:
    data = await _overview(session, explorer, code)
    return render(
        request,
        "overview.html",
        {
            "data": data,
            "roles_table": views.workforce_roles_table(data),
            "sectors_table": views.workforce_sectors_table(data),
            "gaps_table": views.not_reporting_table(data),
            "population_table": views.population_table(data),
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


# "narrow" draws a chart for a phone screen (the pages ask for it below 40rem).
ChartLayout = Annotated[Literal["wide", "narrow"], Query()]


def chart_response(
    body: bytes, fmt: draw.ImageFormat, filename: str, *, inline: bool = False
) -> Response:
    disposition = "inline" if inline else "attachment"
    return Response(
        body,
        media_type=draw.MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'{disposition}; filename="{filename}.{fmt}"',
            "Cache-Control": "private, no-store",
        },
    )


def _cache(request: Request) -> TtlCache:
    cache: TtlCache = request.app.state.explorer_cache
    return cache


async def _drawn(
    request: Request, cache_key: tuple[object, ...], drawing: Callable[[], bytes]
) -> bytes:
    """A chart from the cache, or drawn off the event loop (drawing is CPU work) and kept."""
    cached = _cache(request).get(cache_key)
    if isinstance(cached, bytes):
        return cached
    body = await asyncio.to_thread(drawing)
    _cache(request).put(cache_key, body)
    return body


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
        raise PageItemNotFound(f"There is no table named {name!r}.")
    data = await _overview(session, explorer, code)
    return table_response(builder(data), format, data.area.code)


@router.get("/areas/{code}/charts/population")
async def area_population_chart(
    code: str,
    request: Request,
    session: SessionDep,
    explorer: SignedIn,
    format: Annotated[Literal["svg", "png"], Query()] = "svg",
    layout: ChartLayout = "wide",
) -> Response:
    data = await _overview(session, explorer, code)
    # Population is reference data: the same chart for every key that may read the area.
    body = await _drawn(
        request,
        ("population-chart", data.area.code, format, layout),
        lambda: views.population_chart(data, format, narrow=layout == "narrow"),
    )
    return chart_response(body, format, f"{data.area.code}-population", inline=True)


# ---------------------------------------------------------------------------------------------
# Projections


@router.get("/projections")
async def projections_page(
    request: Request,
    session: SessionDep,
    explorer: SignedIn,
    area: Annotated[str | None, Query(max_length=9)] = None,
) -> Response:
    if area:
        found = await projections_service.latest_for_area(
            session, principal=explorer.principal, area_code=area.upper(), scenario="baseline"
        )
        if found is not None:
            run_id, area_code, _, _ = found
            return RedirectResponse(
                f"/explorer/projections/{run_id}?area={area_code}", status_code=303
            )
    runs = await projection.visible_runs(session, principal=explorer.principal)
    return render(request, "projections.html", {"runs": runs, "area": area}, explorer=explorer)


class ProjectionQuery:
    """The projection page's form: area, role or sector, years and the run compared."""

    def __init__(
        self,
        area: Annotated[str | None, Query(max_length=9)] = None,
        role: Annotated[str | None, Query(max_length=64)] = None,
        sector: Annotated[str | None, Query(max_length=32)] = None,
        year_from: Annotated[int | None, Query(alias="from", ge=1900, le=2200)] = None,
        year_to: Annotated[int | None, Query(alias="to", ge=1900, le=2200)] = None,
        lad_year: Annotated[int | None, Query(ge=1900, le=2200)] = None,
        compare: Annotated[uuid.UUID | None, Query()] = None,
    ) -> None:
        self.area, self.role, self.sector = area, role, sector
        self.year_from, self.year_to, self.lad_year, self.compare = (
            year_from,
            year_to,
            lad_year,
            compare,
        )


ProjectionParams = Annotated[ProjectionQuery, Depends()]


async def _projection(
    request: Request,
    session: SessionDep,
    explorer: ExplorerSession,
    run_id: uuid.UUID,
    q: ProjectionQuery,
) -> projection.ProjectionView:
    """The page's data, kept briefly for its images and downloads (a finished run never
    changes; the session, and so the key, is still checked on every request)."""
    cache_key = ("projection", explorer.principal.key_id, run_id, *vars(q).values())
    cached = _cache(request).get(cache_key)
    if isinstance(cached, projection.ProjectionView):
        return cached
    view = await projection.load(
        session,
        principal=explorer.principal,
        run_id=run_id,
        area=q.area,
        role=q.role,
        sector=q.sector,
        year_from=q.year_from,
        year_to=q.year_to,
        lad_year=q.lad_year,
        compare=q.compare,
    )
    _cache(request).put(cache_key, view)
    return view


# Parameters of one image or download, not of the page's selection.
_NOT_QUERY = ("format", "layout")


def _query_string(request: Request) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in _NOT_QUERY and v]
    return urlencode(params)


@router.get("/projections/{run_id}")
async def projection_page(
    run_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    explorer: SignedIn,
    q: ProjectionParams,
) -> Response:
    view = await _projection(request, session, explorer, run_id, q)
    charts = {name: available(view) for name, (_, available) in _PROJECTION_CHARTS.items()}
    return render(
        request,
        "projection.html",
        {
            "view": view,
            "charts": charts,
            "query": _query_string(request),
            "fan_table": projection.fan_table(view),
            "explain_table": projection.explain_table(view),
            "lad_table": projection.lad_table(view),
            "comparison_table": projection.comparison_table(view),
        },
        explorer=explorer,
    )


_PROJECTION_TABLES = {
    "projection": projection.fan_table,
    "explanation": projection.explain_table,
    "gap-by-lad": projection.lad_table,
    "comparison": projection.comparison_table,
}


class _Drawer(Protocol):
    def __call__(
        self, view: projection.ProjectionView, fmt: draw.ImageFormat, *, narrow: bool = False
    ) -> bytes: ...


_PROJECTION_CHARTS: dict[str, tuple[_Drawer, Callable[[projection.ProjectionView], bool]]] = {
    "projection": (projection.fan_chart, lambda v: bool(v.fan)),
    "explanation": (projection.waterfall_chart, lambda v: v.explanation is not None),
    "gap-by-lad": (projection.lad_chart, lambda v: bool(v.lad_gaps)),
    "comparison": (projection.comparison_chart, lambda v: v.comparison is not None),
}


@router.get("/projections/{run_id}/tables/{name}")
async def projection_table(
    run_id: uuid.UUID,
    name: str,
    request: Request,
    session: SessionDep,
    explorer: SignedIn,
    q: ProjectionParams,
    format: Annotated[Literal["csv", "xlsx"], Query()] = "csv",
) -> Response:
    builder = _PROJECTION_TABLES.get(name)
    if builder is None:
        raise PageItemNotFound(f"There is no table named {name!r}.")
    view = await _projection(request, session, explorer, run_id, q)
    return table_response(builder(view), format, f"projection-{str(run_id)[:8]}")


@router.get("/projections/{run_id}/charts/{name}")
async def projection_chart(
    run_id: uuid.UUID,
    name: str,
    request: Request,
    session: SessionDep,
    explorer: SignedIn,
    q: ProjectionParams,
    format: Annotated[Literal["svg", "png"], Query()] = "svg",
    layout: ChartLayout = "wide",
) -> Response:
    found = _PROJECTION_CHARTS.get(name)
    if found is None:
        raise PageItemNotFound(f"There is no chart named {name!r}.")
    view = await _projection(request, session, explorer, run_id, q)
    drawer, available = found
    if not available(view):
        raise PageItemNotFound("There is nothing to draw for this selection.")
    key_id = explorer.principal.key_id
    body = await _drawn(
        request,
        ("chart", key_id, run_id, name, format, layout, *vars(q).values()),
        lambda: drawer(view, format, narrow=layout == "narrow"),
    )
    return chart_response(body, format, f"projection-{str(run_id)[:8]}-{name}", inline=True)


# ---------------------------------------------------------------------------------------------
# Returns: upload, check, submit, diff


def _last_31_march(today: date) -> date:
    year = today.year if (today.month, today.day) >= (3, 31) else today.year - 1
    return date(year, 3, 31)


@router.get("/returns")
async def returns_page(request: Request, session: SessionDep, explorer: SignedIn) -> Response:
    organisation = await upload.organisation_of(session, principal=explorer.principal)
    versions = await upload.history(
        session, principal=explorer.principal, organisation=organisation
    )
    return render(
        request,
        "returns.html",
        {
            "organisation": organisation,
            "versions": versions,
            "default_as_at": _last_31_march(utcnow().date()),
        },
        explorer=explorer,
    )


@router.get("/returns/template.csv")
async def returns_template(session: SessionDep, explorer: SignedIn) -> Response:
    organisation = await upload.organisation_of(session, principal=explorer.principal)
    body = await upload.prefilled_template(
        session, principal=explorer.principal, organisation=organisation
    )
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="return.csv"',
            "Cache-Control": "no-store",
        },
    )


async def _upload_body(file: UploadFile | None, csv_b64: str | None) -> bytes:
    if file is not None and file.filename:
        return await file.read()
    if csv_b64:
        try:
            return base64.b64decode(csv_b64, validate=True)
        except binascii.Error as exc:
            raise FormDamaged("The form was damaged; upload the file again.") from exc
    raise UploadFileRequired("Choose the CSV file to upload.")


@router.post("/returns/check")
async def returns_check(
    request: Request,
    session: SessionDep,
    explorer: SignedIn,
    as_at: Annotated[date, Form()],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    file: Annotated[UploadFile | None, File()] = None,
    csv_b64: Annotated[str | None, Form()] = None,
) -> Response:
    sessions.check_csrf(explorer.csrf_token, csrf_token)
    organisation = await upload.organisation_of(session, principal=explorer.principal)
    body = await _upload_body(file, csv_b64)
    report = await upload.check(
        session, principal=explorer.principal, organisation=organisation, as_at=as_at, body=body
    )
    return render(
        request,
        "returns_check.html",
        {
            "organisation": organisation,
            "report": report,
            "csv_b64": base64.b64encode(body).decode("ascii"),
            "filename": file.filename if file is not None else "return.csv",
        },
        explorer=explorer,
        status_code=200 if report.valid else 422,
    )


@router.post("/returns/submit")
async def returns_submit(
    session: SessionDep,
    explorer: SignedIn,
    as_at: Annotated[date, Form()],
    csv_b64: Annotated[str, Form()],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    sessions.check_csrf(explorer.csrf_token, csrf_token)
    organisation = await upload.organisation_of(session, principal=explorer.principal)
    body = await _upload_body(None, csv_b64)
    stored = await upload.submit(
        session, principal=explorer.principal, organisation=organisation, as_at=as_at, body=body
    )
    return RedirectResponse(f"/explorer/returns/{stored.id}", status_code=303)


@router.get("/returns/{return_id}")
async def return_page(
    return_id: uuid.UUID, request: Request, session: SessionDep, explorer: SignedIn
) -> Response:
    diff = await returns_service.diff(session, principal=explorer.principal, return_id=return_id)
    stored = await returns_service.read_return(session, return_id=return_id)
    organisation = await upload.organisation_of(session, principal=explorer.principal)
    return render(
        request,
        "return.html",
        {"organisation": organisation, "stored": stored, "diff": diff},
        explorer=explorer,
    )


# ---------------------------------------------------------------------------------------------
# Agreements


@router.get("/agreements")
async def agreements_page(request: Request, session: SessionDep, explorer: SignedIn) -> Response:
    today = utcnow().date()
    items = await agreements_view.load(session, principal=explorer.principal, today=today)
    return render(request, "agreements.html", {"items": items, "today": today}, explorer=explorer)
