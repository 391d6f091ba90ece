from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import BASELINE, Scenario, ScenarioVersion


def _readable(*, every_ics: bool, ics_code: str | None) -> Select[Scenario]:
    """Scenarios of every ICS (`every_ics`), else the national ones and those of `ics_code`."""
    query = select(Scenario)
    if not every_ics:
        query = query.where(or_(Scenario.ics_code.is_(None), Scenario.ics_code == ics_code))
    return query


async def in_namespace(
    session: AsyncSession, *, name: str, ics_code: str | None
) -> Scenario | None:
    """What a name means for an ICS: the ICS's own scenario of that name, else the national
    one (`ics_code` None: the national one only)."""
    owners: list[ColumnElement[bool]] = [Scenario.ics_code.is_(None)]
    if ics_code is not None:
        owners.append(Scenario.ics_code == ics_code)
    query = (
        select(Scenario)
        .where(Scenario.name == name, or_(*owners))
        # The ICS's own first (False sorts before True on both databases).
        .order_by(Scenario.ics_code.is_(None))
        .limit(1)
    )
    return (await session.execute(query)).scalars().first()


async def named(
    session: AsyncSession, *, name: str, every_ics: bool, ics_code: str | None
) -> Sequence[Scenario]:
    """Every readable scenario of this name: the national one first, then by ICS."""
    query = (
        _readable(every_ics=every_ics, ics_code=ics_code)
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


async def list_versions(
    session: AsyncSession, *, scenario_id: uuid.UUID
) -> Sequence[ScenarioVersion]:
    query = (
        select(ScenarioVersion)
        .where(ScenarioVersion.scenario_id == scenario_id)
        .order_by(ScenarioVersion.version)
    )
    return (await session.execute(query)).scalars().all()


async def list_visible(
    session: AsyncSession, *, every_ics: bool, ics_code: str | None
) -> Sequence[Scenario]:
    """Scenarios of every ICS (`every_ics`), else the national ones and those of `ics_code`;
    by name, the national one of a name first."""
    query = _readable(every_ics=every_ics, ics_code=ics_code).order_by(
        Scenario.name, Scenario.ics_code.is_not(None), Scenario.ics_code
    )
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
