"""Scenarios and their versions, and which of them a key may see."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import BASELINE, Scenario, ScenarioVersion
from shared.repositories.base import PageWindow, paginate
from shared.schemas.keys import Principal


def _namespace(ics_code: str | None) -> ColumnElement[bool]:
    """The scenarios an ICS sees: the national ones and its own (`ics_code` None: the national
    ones only)."""
    owners: list[ColumnElement[bool]] = [Scenario.ics_code.is_(None)]
    if ics_code is not None:
        owners.append(Scenario.ics_code == ics_code)
    return or_(*owners)


def readable_statement(principal: Principal) -> Select[Scenario]:
    """The scenarios a key may see: every one (a global key); otherwise its ICS's namespace,
    the national ones and (an ICS key) its own. A scenario's reads and the list start here."""
    query = select(Scenario)
    if principal.is_global:
        return query
    return query.where(_namespace(principal.ics_code))


async def in_namespace(
    session: AsyncSession, *, name: str, ics_code: str | None
) -> Scenario | None:
    """What a name means for an ICS: the ICS's own scenario of that name, else the national
    one (`ics_code` None: the national one only)."""
    query = (
        select(Scenario)
        .where(Scenario.name == name, _namespace(ics_code))
        # The ICS's own first (False sorts before True on both databases).
        .order_by(Scenario.ics_code.is_(None))
        .limit(1)
    )
    return (await session.execute(query)).scalars().first()


async def named(session: AsyncSession, *, name: str) -> Sequence[Scenario]:
    """Every scenario of this name, whoever owns it: the national one first, then by ICS."""
    query = (
        select(Scenario)
        .where(Scenario.name == name)
        .order_by(Scenario.ics_code.is_not(None), Scenario.ics_code)
    )
    return (await session.execute(query)).scalars().all()


async def lock_name(session: AsyncSession, *, name: str) -> None:
    """Serialise the creators of one name until the transaction ends, so the check that an
    ICS does not take a national name (or the nation an ICS's) cannot race: an advisory lock
    on PostgreSQL, the database write lock on SQLite (taken by a write-first statement)."""
    if session.get_bind().dialect.name == "postgresql":
        key = func.hashtext(literal("scenario-name:") + name)
        await session.execute(select(func.pg_advisory_xact_lock(key)))
        return
    await session.execute(
        update(Scenario)
        .where(Scenario.name == name)
        .values(version=Scenario.version, updated_at=Scenario.updated_at)
        .execution_options(synchronize_session=False)
    )


async def get_version(
    session: AsyncSession, *, scenario_id: uuid.UUID, version: int
) -> ScenarioVersion | None:
    query = select(ScenarioVersion).where(
        ScenarioVersion.scenario_id == scenario_id, ScenarioVersion.version == version
    )
    return (await session.execute(query)).scalar_one_or_none()


async def current_versions(
    session: AsyncSession, *, scenarios: Sequence[Scenario]
) -> dict[uuid.UUID, ScenarioVersion]:
    """The current version of each scenario, by scenario id, in one query."""
    if not scenarios:
        return {}
    query = select(ScenarioVersion).where(
        or_(
            *(
                and_(ScenarioVersion.scenario_id == s.id, ScenarioVersion.version == s.version)
                for s in scenarios
            )
        )
    )
    return {v.scenario_id: v for v in (await session.execute(query)).scalars()}


async def list_versions(
    session: AsyncSession, *, scenario_id: uuid.UUID, page: PageWindow
) -> tuple[Sequence[ScenarioVersion], int]:
    """One page of a scenario's versions, oldest first, and how many there are."""
    query = (
        select(ScenarioVersion)
        .where(ScenarioVersion.scenario_id == scenario_id)
        .order_by(ScenarioVersion.version)
    )
    return await paginate(session, query, page)


async def list_visible(
    session: AsyncSession, *, principal: Principal, page: PageWindow
) -> tuple[Sequence[Scenario], int]:
    """One page of the scenarios the key may see, by name, the national one of a name first,
    and how many there are."""
    query = readable_statement(principal).order_by(
        Scenario.name, Scenario.ics_code.is_not(None), Scenario.ics_code, Scenario.id
    )
    return await paginate(session, query, page)


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
    scenario = await in_namespace(session, name=BASELINE, ics_code=None)
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
