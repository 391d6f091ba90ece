"""The shipped role catalogue: its content, and a seed that is idempotent and keeps edits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.api.roles import service
from shared.db.session import transaction
from shared.models import AuditEvent, Role
from shared.schemas.roles import AscWdsJobRole, NhsStaffGroup, is_snomed_concept_id
from tests.helpers import REPO_ROOT, KeyFactory

OWF = str(Path(sys.executable).with_name("oneworkforce"))


def test_shipped_catalogue_covers_health_social_care_primary_care_and_integration() -> None:
    catalogue = service.load_seed_catalogue()
    codes = [role.code for role in catalogue]
    assert len(codes) >= 40
    assert len(set(codes)) == len(codes)
    # every NHS HCHS staff group maps to at least one role, so NHS returns can be mapped
    assert {role.nhs_staff_group for role in catalogue} >= set(NhsStaffGroup)
    asc_roles = {role.asc_wds_job_role for role in catalogue if role.asc_wds_job_role}
    assert {
        AscWdsJobRole.care_worker,
        AscWdsJobRole.senior_care_worker,
        AscWdsJobRole.registered_manager,
        AscWdsJobRole.social_worker,
        AscWdsJobRole.occupational_therapist,
        AscWdsJobRole.registered_nurse,
        AscWdsJobRole.activities_worker,
        AscWdsJobRole.community_support_outreach,
        AscWdsJobRole.care_coordinator,
    } <= asc_roles
    assert {
        "general-practitioner",
        "practice-nurse",
        "clinical-pharmacist-primary-care",
        "physician-associate",
        "first-contact-physiotherapist",
        "primary-care-paramedic",
        "practice-healthcare-assistant",
    } <= set(codes)
    new_roles = {role.code for role in catalogue if role.is_new_role}
    assert {
        "care-coordinator",
        "care-navigator",
        "social-prescribing-link-worker",
        "health-and-wellbeing-coach",
        "community-facilitator",
        "integrated-team-support-worker",
        "learning-pastoral-support-worker",
        "mental-health-joint-response-practitioner",
    } <= new_roles
    for role in catalogue:
        assert role.snomed_ct_occupation is None or is_snomed_concept_id(role.snomed_ct_occupation)
        assert role.description, role.code
    drivers = {role.code: role.default_demand_driver for role in catalogue}
    assert drivers["care-worker"] in ("population_65_plus", "population_75_plus")
    assert drivers["dementia-care-worker"] == "dementia_65_plus"
    assert drivers["school-nurse"] == "population_0_17"
    assert drivers["learning-pastoral-support-worker"] == "population_0_17"
    assert drivers["consultant-doctor"] == "population_all"


async def _count(sessionmaker: async_sessionmaker[AsyncSession], model: type[object]) -> int:
    async with sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_seeding_twice_does_not_duplicate(
    sessionmaker: async_sessionmaker[AsyncSession], db: AsyncEngine
) -> None:
    shipped = len(service.load_seed_catalogue())
    async with transaction(sessionmaker) as session:
        first = await service.seed_roles(session, actor="test")
    assert (first.inserted, first.already_present, first.in_catalogue_file) == (shipped, 0, shipped)
    async with transaction(sessionmaker) as session:
        second = await service.seed_roles(session, actor="test")
    assert (second.inserted, second.already_present, second.inserted_codes) == (0, shipped, [])
    assert await _count(sessionmaker, Role) == shipped
    async with sessionmaker() as session:
        seeded = (await session.execute(select(Role).where(Role.is_seeded.is_(False)))).all()
        events = (
            (await session.execute(select(AuditEvent).where(AuditEvent.action == "role.seed")))
            .scalars()
            .all()
        )
    assert seeded == []
    assert len(events) == 1  # the no-op run writes nothing
    assert events[0].detail is not None
    assert len(events[0].detail["inserted"]) == shipped


async def test_reseed_keeps_admin_edits_and_restores_missing_roles(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    seeded_roles: list[str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    admin = await make_key("admin")
    edited = await client.patch(
        "/v1/roles/care-worker", json={"name": "Care and support worker"}, headers=admin
    )
    assert edited.status_code == 200
    assert (await client.delete("/v1/roles/midwife", headers=admin)).status_code == 204
    async with transaction(sessionmaker) as session:
        report = await service.seed_roles(session, actor="test")
    assert report.inserted_codes == ["midwife"]
    role = (await client.get("/v1/roles/care-worker", headers=admin)).json()
    assert (role["name"], role["version"]) == ("Care and support worker", 2)
    assert (await client.get("/v1/roles/midwife", headers=admin)).status_code == 200
    assert await _count(sessionmaker, Role) == len(seeded_roles)


def test_cli_seed_roles_is_a_no_op_the_second_time(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "LOG_JSON": "false"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [OWF, *args], env=env, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT
        )

    assert run("migrate").returncode == 0
    shipped = len(service.load_seed_catalogue())
    first = run("seed-roles")
    assert first.returncode == 0, first.stderr
    assert f"{shipped} added, 0 already present" in first.stdout
    second = run("seed-roles")
    assert second.returncode == 0, second.stderr
    assert f"0 added, {shipped} already present" in second.stdout
