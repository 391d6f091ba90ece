"""Scenarios: named, versioned projection parameters, each change with its rationale."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.areas.errors import UnknownIcs
from services.api.scenarios import errors
from services.domain.projections import runs as projection_runs
from shared.models import BASELINE, AreaType, Scenario, ScenarioVersion
from shared.repositories import areas, audit, roles
from shared.repositories import scenarios as repo
from shared.repositories.base import PageWindow
from shared.schemas.keys import Principal
from shared.schemas.scenario_parameters import BASELINE_PARAMETERS, ParameterError, parse_parameters
from shared.schemas.scenarios import ScenarioCreate, ScenarioRead, ScenarioUpdate


def changed_levers(parameters: dict[str, Any]) -> list[str]:
    return sorted(k for k, v in parameters.items() if BASELINE_PARAMETERS.get(k) != v)


async def ensure_baseline(session: AsyncSession) -> None:
    await repo.ensure_baseline(session, parameters=BASELINE_PARAMETERS)


async def _resolve(
    session: AsyncSession, base: dict[str, Any], changes: dict[str, Any], rationale: dict[str, Any]
) -> dict[str, Any]:
    """Full parameters from a base and changed levers, checked; 422 lists every problem."""
    merged = {**base, **changes}
    problems: list[dict[str, Any]] = []
    try:
        parsed = parse_parameters(merged, known_role_codes=await roles.all_codes(session))
    except ParameterError as exc:
        problems = [
            {"field": f"parameters.{p.path}", "code": "invalid_parameter", "message": p.message}
            for p in exc.problems
        ]
    else:
        merged = parsed.model_dump(mode="json")
    for lever in changed_levers(merged):
        if lever not in rationale and lever in changes:
            problems.append(
                {
                    "field": f"rationale.{lever}",
                    "code": "rationale_required",
                    "message": "Each changed lever needs a rationale and a source.",
                }
            )
    if problems:
        raise errors.InvalidScenario(
            f"The scenario has {len(problems)} problem(s).", errors=problems
        )
    return merged


async def get_visible(
    session: AsyncSession, *, principal: Principal, name: str, ics_code: str | None = None
) -> Scenario:
    """The scenario a name means to this key: its ICS's own (or that of `ics_code`, for a key
    that sees every ICS), else the national one. A key that sees every ICS and names none gets
    the national one, the only one of that name, or 409 listing the ICSs that hold it."""
    if name == BASELINE:
        await ensure_baseline(session)
    if not principal.is_global:
        # Another ICS's scenarios are not there for this key, whatever `ics_code` says.
        own = principal.ics_code if ics_code in (None, principal.ics_code) else None
        scenario = await repo.in_namespace(session, name=name, ics_code=own)
    elif ics_code is not None:
        scenario = await repo.in_namespace(session, name=name, ics_code=ics_code)
    else:
        found = await repo.named(session, name=name)
        if len(found) > 1 and found[0].ics_code is not None:
            holders = [str(s.ics_code) for s in found]
            raise errors.ScenarioAmbiguous(
                f"{len(found)} ICSs have a scenario named {name!r}: {', '.join(holders)}.",
                ics_codes=holders,
            )
        scenario = found[0] if found else None
    if scenario is None:
        raise errors.ScenarioNotFound(f"No scenario {name!r}.")
    return scenario


async def read(session: AsyncSession, scenario: Scenario) -> ScenarioRead:
    current = await repo.get_version(session, scenario_id=scenario.id, version=scenario.version)
    assert current is not None
    return _to_read(scenario, current)


def _to_read(scenario: Scenario, current: ScenarioVersion) -> ScenarioRead:
    return ScenarioRead(
        id=scenario.id,
        name=scenario.name,
        title=scenario.title,
        description=scenario.description,
        ics_code=scenario.ics_code,
        version=scenario.version,
        parameters=dict(current.parameters),
        changed=changed_levers(dict(current.parameters)),
        rationale=dict(current.rationale),
        updated_at=scenario.updated_at,
    )


async def list_visible(
    session: AsyncSession, *, principal: Principal, page: PageWindow
) -> tuple[list[ScenarioRead], int]:
    await ensure_baseline(session)
    found, total = await repo.list_visible(session, principal=principal, page=page)
    current = await repo.current_versions(session, scenarios=found)
    return [_to_read(scenario, current[scenario.id]) for scenario in found], total


async def _ensure_name_free(session: AsyncSession, *, name: str, ics_code: str | None) -> None:
    """409 unless the name is free where the scenario would live. An ICS's scenario may not
    take a national name (every key sees those, so the answer tells nothing private); a
    national one may take no name at all (only keys that see every ICS create those). Another
    ICS's private names are never looked at for an ICS's scenario: the answer for them is the
    answer for a free name."""
    await repo.lock_name(session, name=name)
    if name == BASELINE:
        raise errors.ScenarioNameTaken(f"A scenario named {name!r} exists.")
    if ics_code is not None:
        taken = await repo.in_namespace(session, name=name, ics_code=ics_code) is not None
    else:
        taken = bool(await repo.named(session, name=name))
    if taken:
        raise errors.ScenarioNameTaken(f"A scenario named {name!r} exists.")


async def create(
    session: AsyncSession, data: ScenarioCreate, *, principal: Principal
) -> ScenarioRead:
    """A new scenario, version 1; ICS admins create scenarios owned by their ICS."""
    ics_code = data.ics_code
    if not principal.is_global:
        if ics_code not in (None, principal.ics_code):
            raise errors.ScenarioOutOfScope("An ICS admin creates scenarios for its own ICS.")
        ics_code = principal.ics_code
    if ics_code is not None:
        area = await areas.get(session, code=ics_code)
        if area is None or area.type != AreaType.icb:
            raise UnknownIcs(f"{ics_code} is not an ICB.", field="ics_code")
    await _ensure_name_free(session, name=data.name, ics_code=ics_code)
    rationale = {k: v.model_dump() for k, v in data.rationale.items()}
    parameters = await _resolve(session, BASELINE_PARAMETERS, data.parameters, rationale)
    scenario = Scenario(
        name=data.name, title=data.title, description=data.description, ics_code=ics_code
    )
    try:
        version = await repo.add(
            session, scenario, parameters=parameters, rationale=rationale, key_id=principal.key_id
        )
    except IntegrityError as exc:
        # The name lock makes this unlikely; the unique indexes make it a conflict, not a 500.
        raise errors.ScenarioNameTaken(f"A scenario named {data.name!r} exists.") from exc
    await audit.record(
        session,
        key_id=principal.key_id,
        actor=principal.actor,
        action="scenario.create",
        resource_type="scenario",
        resource_id=data.name,
        detail={"ics_code": ics_code, "changed": changed_levers(parameters)},
    )
    return _to_read(scenario, version)


async def update(
    session: AsyncSession,
    scenario: Scenario,
    data: ScenarioUpdate,
    *,
    principal: Principal,
) -> ScenarioRead:
    """A new version; earlier versions stay readable and runs keep the version they used."""
    if scenario.name == BASELINE:
        raise errors.BaselineImmutable("The baseline scenario cannot be changed.")
    if not principal.is_global and scenario.ics_code != principal.ics_code:
        raise errors.ScenarioOutOfScope("This scenario belongs to another ICS.")
    current = await repo.get_version(session, scenario_id=scenario.id, version=scenario.version)
    assert current is not None
    rationale = {
        **dict(current.rationale),
        **{k: v.model_dump() for k, v in data.rationale.items()},
    }
    parameters = await _resolve(session, dict(current.parameters), data.parameters, rationale)
    if data.title is not None:
        scenario.title = data.title
    if data.description is not None:
        scenario.description = data.description
    scenario.version += 1
    version = await repo.add_version(
        session, scenario, parameters=parameters, rationale=rationale, key_id=principal.key_id
    )
    await audit.record(
        session,
        key_id=principal.key_id,
        actor=principal.actor,
        action="scenario.update",
        resource_type="scenario",
        resource_id=scenario.name,
        detail={"version": scenario.version, "changed": sorted(data.parameters)},
    )
    await projection_runs.scenario_changed(session, scenario=scenario)
    return _to_read(scenario, version)


async def versions(
    session: AsyncSession, scenario: Scenario, *, page: PageWindow
) -> tuple[Sequence[ScenarioVersion], int]:
    return await repo.list_versions(session, scenario_id=scenario.id, page=page)
