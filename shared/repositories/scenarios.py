"""Scenarios and their versions, and which of them a key may see."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import BASELINE, Scenario, ScenarioVersion
from shared.schemas.keys import Principal


def readable_statement(principal: Principal) -> Select[Scenario]:
    """The scenarios a key may see: the national ones, and its own ICS's (an ICS key) or every
    ICS's (a global key). A scenario's reads, the list, and naming a scenario for a run all
    start here."""
    query = select(Scenario)
    if principal.is_global:
        return query
    return query.where(or_(Scenario.ics_code.is_(None), Scenario.ics_code == principal.ics_code))


async def get_by_name(
    session: AsyncSession, *, name: str, for_update: bool = False
) -> Scenario | None:
    query = select(Scenario).where(Scenario.name == name)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def get_readable(
    session: AsyncSession, *, principal: Principal, name: str
) -> Scenario | None:
    query = readable_statement(principal).where(Scenario.name == name)
    return (await session.execute(query)).scalar_one_or_none()


async def get_version(
    session: AsyncSession, *, scenario_id: uuid.UUID, version: int
) -> ScenarioVersion | None:
    query = select(ScenarioVersion).where(
        ScenarioVersion.scenario_id == scenario_id, ScenarioVersion.version == version
    )
    return (await session.execute(query)).scalar_one_or_none()


async def list_versions(
    session: AsyncSession, *, scenario_id: uuid.UUID
) -> Sequence[ScenarioVersion]:
    query = (
        select(ScenarioVersion)
        .where(ScenarioVersion.scenario_id == scenario_id)
        .order_by(ScenarioVersion.version)
    )
    return (await session.execute(query)).scalars().all()


async def list_visible(session: AsyncSession, *, principal: Principal) -> Sequence[Scenario]:
    """The scenarios the key may see, by name."""
    query = readable_statement(principal).order_by(Scenario.name)
    return (await session.execute(query)).scalars().all()


async def add(
    session: AsyncSession,
    scenario: Scenario,
    *,
    parameters: dict[str, Any],
    rationale: dict[str, Any],
    key_id: uuid.UUID | None,
) -> ScenarioVersion:
    session.add(scenario)
    await session.flush()
    return await add_version(
        session, scenario, parameters=parameters, rationale=rationale, key_id=key_id
    )


async def add_version(
    session: AsyncSession,
    scenario: Scenario,
    *,
    parameters: dict[str, Any],
    rationale: dict[str, Any],
    key_id: uuid.UUID | None,
) -> ScenarioVersion:
    row = ScenarioVersion(
        scenario_id=scenario.id,
        version=scenario.version,
        parameters=parameters,
        rationale=rationale,
        created_by_key_id=key_id,
    )
    session.add(row)
    await session.flush()
    return row


async def ensure_baseline(
    session: AsyncSession, *, parameters: dict[str, Any]
) -> tuple[Scenario, ScenarioVersion]:
    """The baseline scenario always exists: created on first use with every lever off."""
    scenario = await get_by_name(session, name=BASELINE)
    if scenario is None:
        scenario = Scenario(
            name=BASELINE,
            title="Baseline",
            description="Every lever off: demand follows each role's demographic driver and "
            "supply follows the returns' own joining and leaving.",
        )
        version = await add(session, scenario, parameters=parameters, rationale={}, key_id=None)
        return scenario, version
    current = await get_version(session, scenario_id=scenario.id, version=scenario.version)
    assert current is not None
    return scenario, current
