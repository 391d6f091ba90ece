"""The demo ICB: real trusts, sized care providers, returns that pass every rule, loaded once."""

from __future__ import annotations

from datetime import date

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.domain.demo import DEMO_ICB, TRUST_HOME_LAD, demo_dates, load_demo
from services.domain.demo_sharing import DEMO_AGREEMENT_TITLE, DEMO_SCENARIO, load_demo_sharing
from services.domain.reference.loader import ReferenceLoadSummary
from shared.db.session import transaction
from shared.models import Organisation, WorkforceReturn
from tests.helpers import KeyFactory


async def test_demo_loads_once_and_reads_back(
    reference: ReferenceLoadSummary,
    seeded_roles: list[str],
    sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    make_key: KeyFactory,
) -> None:
    async with transaction(sessionmaker) as session:
        first = await load_demo(session)
    assert first.created
    assert first.returns == 2 * first.organisations
    async with transaction(sessionmaker) as session:
        second = await load_demo(session)
    assert not second.created
    async with sessionmaker() as session:
        trusts = set(
            (
                await session.execute(
                    select(Organisation.ods_code).where(Organisation.kind == "nhs_trust")
                )
            ).scalars()
        )
        returns = (
            await session.execute(select(func.count()).select_from(WorkforceReturn))
        ).scalar()
    assert trusts == set(TRUST_HOME_LAD)
    assert returns == first.returns
    key = await make_key("read", ics_code=DEMO_ICB)
    workforce = (await client.get(f"/v1/areas/{DEMO_ICB}/workforce", headers=key)).json()
    assert workforce["completeness"]["rate"] == 1.0
    roles = {row["role_code"]: row for row in workforce["roles"]}
    assert roles["care-worker"]["headcount"] > 10_000
    assert 0.05 < roles["care-worker"]["vacancy_rate"] < 0.15
    assert roles["nurse-adult"]["organisations"] >= 10

    # The staff-sharing agreement and the ICS's scenario, read back through the API as any
    # created, signed and activated there would be.
    async with transaction(sessionmaker) as session:
        sharing = await load_demo_sharing(session, today=date(2026, 11, 30))
    assert sharing.agreement is not None
    assert sharing.scenario is not None
    listed = (await client.get("/v1/agreements", headers=key)).json()["items"]
    assert [a["title"] for a in listed] == [DEMO_AGREEMENT_TITLE]
    agreement = listed[0]
    assert agreement["fully_signed"]
    assert agreement["status"] == "active"
    assert len(agreement["parties"]) == 5
    deployments = (
        await client.get(f"/v1/agreements/{agreement['id']}/deployments", headers=key)
    ).json()["items"]
    assert {d["role_code"] for d in deployments} == {"healthcare-support-worker", "care-worker"}
    fhir = await client.get(f"/v1/agreements/{agreement['id']}/fhir", headers=key)
    assert fhir.status_code == 200
    scenario = (await client.get(f"/v1/scenarios/{DEMO_SCENARIO}", headers=key)).json()
    assert scenario["ics_code"] == DEMO_ICB
    assert scenario["parameters"]["recruitment_change"]["default"] == 0.2


def test_demo_dates_are_the_last_two_year_ends() -> None:
    assert demo_dates(date(2026, 11, 23)) == (date(2025, 3, 31), date(2026, 3, 31))
    assert demo_dates(date(2026, 3, 31)) == (date(2025, 3, 31), date(2026, 3, 31))
    assert demo_dates(date(2026, 3, 30)) == (date(2024, 3, 31), date(2025, 3, 31))
