from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

from services.api.areas.errors import UnknownIcs
from services.api.deps import AdminKey, ReadKey, SessionDep
from services.api.errors import EtagMismatch, IfMatchRequired
from services.api.http import PageDep, etag_of, not_modified, require_if_match
from services.api.openapi import NOT_MODIFIED, raises
from services.api.scenarios import service
from services.api.scenarios.errors import (
    BaselineImmutable,
    InvalidScenario,
    ScenarioAmbiguous,
    ScenarioNameTaken,
    ScenarioNotFound,
    ScenarioOutOfScope,
)
from shared.models import Scenario
from shared.schemas.common import Page
from shared.schemas.keys import ICS_CODE_PATTERN
from shared.schemas.scenario_parameters import BASELINE_PARAMETERS, ScenarioParametersDocument
from shared.schemas.scenarios import (
    ScenarioCreate,
    ScenarioRead,
    ScenarioUpdate,
    ScenarioVersionRead,
)

router = APIRouter(prefix="/v1/scenarios", tags=["scenarios"])

# Built once: generating a JSON Schema is far slower than serving it.
PARAMETERS_SCHEMA: dict[str, Any] = {
    **ScenarioParametersDocument.model_json_schema(),
    "$id": "https://oneworkforce.nhs.example/schemas/scenario-parameters.json",
    "default": BASELINE_PARAMETERS,
}


# Names are unique per owner: two ICSs may each have a scenario of one name.
IcsCodeQuery = Annotated[
    str | None,
    Query(
        pattern=ICS_CODE_PATTERN,
        description="Whose scenario of this name: an ICS's own, else the national one. A key "
        "bound to an ICS means its own ICS; a key that sees every ICS names one when several "
        "have the name (409 scenario_ambiguous lists them).",
    ),
]


def _etag(scenario: Scenario | ScenarioRead) -> str:
    return etag_of("scenario", scenario.id, scenario.version)


def _location(scenario: ScenarioRead) -> str:
    url = f"/v1/scenarios/{scenario.name}"
    return f"{url}?ics_code={scenario.ics_code}" if scenario.ics_code else url


@router.get("", response_model=Page[ScenarioRead], summary="Scenarios this key can use")
async def list_scenarios(
    session: SessionDep, principal: ReadKey, page: PageDep
) -> Page[ScenarioRead]:
    found, total = await service.list_visible(session, principal=principal, page=page)
    return page.result(found, total)


@router.get(
    "/schema",
    summary="JSON Schema of scenario parameters (for editors and validation)",
    response_model=dict[str, Any],
)
async def parameters_schema(principal: ReadKey) -> dict[str, Any]:
    return PARAMETERS_SCHEMA


@router.post(
    "",
    response_model=ScenarioRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a scenario (admin); changed levers need a rationale and a source",
    responses=raises(ScenarioOutOfScope, UnknownIcs, ScenarioNameTaken, InvalidScenario),
)
async def create_scenario(
    body: ScenarioCreate, session: SessionDep, principal: AdminKey, response: Response
) -> ScenarioRead:
    created = await service.create(session, body, principal=principal)
    response.headers["Location"] = _location(created)
    response.headers["ETag"] = _etag(created)
    return created


@router.get(
    "/{name}",
    response_model=ScenarioRead,
    summary="A scenario's current version",
    responses={**NOT_MODIFIED, **raises(ScenarioNotFound, ScenarioAmbiguous)},
)
async def get_scenario(
    name: str,
    session: SessionDep,
    principal: ReadKey,
    request: Request,
    response: Response,
    ics_code: IcsCodeQuery = None,
) -> ScenarioRead | Response:
    scenario = await service.get_visible(session, principal=principal, name=name, ics_code=ics_code)
    etag = _etag(scenario)
    if (cached := not_modified(request, etag)) is not None:
        return cached
    response.headers["ETag"] = etag
    return await service.read(session, scenario)


@router.put(
    "/{name}",
    response_model=ScenarioRead,
    summary="Change a scenario (admin, If-Match): makes a new version",
    responses=raises(
        ScenarioNotFound,
        ScenarioAmbiguous,
        BaselineImmutable,
        ScenarioOutOfScope,
        InvalidScenario,
        IfMatchRequired,
        EtagMismatch,
    ),
)
async def update_scenario(
    name: str,
    body: ScenarioUpdate,
    session: SessionDep,
    principal: AdminKey,
    request: Request,
    response: Response,
    ics_code: IcsCodeQuery = None,
) -> ScenarioRead:
    scenario = await service.get_visible(session, principal=principal, name=name, ics_code=ics_code)
    require_if_match(request, _etag(scenario))
    updated = await service.update(session, scenario, body, principal=principal)
    response.headers["ETag"] = _etag(updated)
    return updated


@router.get(
    "/{name}/versions",
    response_model=Page[ScenarioVersionRead],
    summary="Every version of a scenario, oldest first",
    responses=raises(ScenarioNotFound, ScenarioAmbiguous),
)
async def list_versions(
    name: str,
    session: SessionDep,
    principal: ReadKey,
    page: PageDep,
    ics_code: IcsCodeQuery = None,
) -> Page[ScenarioVersionRead]:
    scenario = await service.get_visible(session, principal=principal, name=name, ics_code=ics_code)
    versions, total = await service.versions(session, scenario, page=page)
    return page.result(
        [
            ScenarioVersionRead(
                version=v.version,
                parameters=dict(v.parameters),
                rationale=dict(v.rationale),
                created_at=v.created_at,
            )
            for v in versions
        ],
        total,
    )
