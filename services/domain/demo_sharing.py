"""The demo ICB's staff-sharing agreement and a scenario of its own, so that a first run shows
every page with something in it: agreements with their parties, caps and deployments, and a
scenario compared with the baseline.

The agreement is between Cheshire East's two acute trusts, its council and two of its (demo)
care providers, signed by every party and in force from the last financial year end for three
years; two deployments run around today. The scenario raises recruitment by a fifth.
Both are written as they would be once the API had created, signed and activated them, and are
audited as the demo's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.domain.demo import DEMO_ICB, demo_dates
from shared.db.base import utcnow
from shared.models import (
    Agreement,
    AgreementMode,
    AgreementParty,
    AgreementScope,
    AgreementStatus,
    Deployment,
    DeploymentStatus,
    Organisation,
    Scenario,
)
from shared.repositories import audit, organisations, roles
from shared.repositories import scenarios as scenarios_repo
from shared.schemas.scenario_parameters import BASELINE_PARAMETERS, parse_parameters

DEMO_AGREEMENT_TITLE = "Cheshire East home-first mutual aid (demo)"
DEMO_SCENARIO = "recruit-more"
LAD_CHESHIRE_EAST = "E06000049"
# (party, signatory's role); parties are found by ODS code, CQC location id or kind.
PARTIES: tuple[tuple[dict[str, str], str], ...] = (
    ({"ods_code": "RBT"}, "Chief People Officer"),
    ({"ods_code": "RJN"}, "Director of Nursing"),
    ({"kind": "local_authority", "home_lad_code": LAD_CHESHIRE_EAST}, "Director of Care"),
    ({"cqc_location_id": "1-9000000128"}, "Registered Manager"),
    ({"cqc_location_id": "1-9000000129"}, "Registered Manager"),
)  # fmt: skip
# (lending party's index in PARTIES, role, FTE cap)
SCOPE: tuple[tuple[int, str, float], ...] = (
    (0, "healthcare-support-worker", 10.0),
    (0, "nurse-adult", 4.0),
    (1, "healthcare-support-worker", 6.0),
    (3, "care-worker", 5.0),
)
# (from, to, role, FTE, first day and last day from today, reason)
DEPLOYMENTS: tuple[tuple[int, int, str, float, int, int, str], ...] = (
    (0, 3, "healthcare-support-worker", 3.0, -30, 60, "Winter discharge support"),
    (3, 1, "care-worker", 2.0, -7, 84, "Discharge to assess pilot"),
)


@dataclass(frozen=True)
class DemoSharing:
    agreement: Agreement | None
    scenario: Scenario | None


async def _parties(session: AsyncSession, *, ics_code: str) -> list[Organisation] | None:
    found = []
    for where, _ in PARTIES:
        organisation = await organisations.find_by(session, ics_code=ics_code, **where)
        if organisation is None:
            return None
        found.append(organisation)
    return found


async def _agreement(session: AsyncSession, *, ics_code: str, today: date) -> Agreement | None:
    """The signed agreement in force with its deployments; None when the demo ICB's parties or
    roles are not there (another ICB, or the catalogue not seeded)."""
    parties = await _parties(session, ics_code=ics_code)
    needed = {role for _, role, _ in SCOPE}
    if parties is None or not needed <= await roles.all_codes(session):
        return None
    now = utcnow()
    start = demo_dates(today)[1] + timedelta(days=1)
    agreement = Agreement(
        title=DEMO_AGREEMENT_TITLE,
        ics_code=ics_code,
        mode=AgreementMode.both,
        status=AgreementStatus.active,
        start_date=start,
        end_date=start.replace(year=start.year + 3) - timedelta(days=1),
        risk_share="Each employer keeps its own staff's employment risk; the host directs "
        "day-to-day work.",
        indemnity="NHS Resolution schemes for NHS staff; each care provider's own insurance.",
        host_employer="The receiving organisation",
        notes="Demo agreement: staff move to where patients leaving hospital need care.",
        activated_at=now,
        parties=[
            AgreementParty(
                organisation=organisation,
                position=position,
                signatory_name="Demo signatory",
                signatory_role=role,
                signed_at=now,
            )
            for position, (organisation, (_, role)) in enumerate(zip(parties, PARTIES, strict=True))
        ],
        scope=[
            AgreementScope(
                role_code=role,
                lending_organisation_id=parties[lender].id,
                fte_cap=cap,
                position=position,
            )
            for position, (lender, role, cap) in enumerate(SCOPE)
        ],
    )
    session.add(agreement)
    await session.flush()
    for lender, receiver, role, fte, first, last, reason in DEPLOYMENTS:
        session.add(
            Deployment(
                agreement_id=agreement.id,
                from_organisation_id=parties[lender].id,
                to_organisation_id=parties[receiver].id,
                role_code=role,
                fte=fte,
                start_date=max(today + timedelta(days=first), agreement.start_date),
                end_date=min(today + timedelta(days=last), agreement.end_date),
                reason=reason,
                status=DeploymentStatus.active,
            )
        )
    await session.flush()
    return agreement


async def _scenario(session: AsyncSession, *, ics_code: str) -> Scenario | None:
    """The ICS's own 'recruit-more' scenario, unless the name is taken (by the ICS or
    nationally)."""
    if await scenarios_repo.in_namespace(session, name=DEMO_SCENARIO, ics_code=ics_code):
        return None
    changes = {"recruitment_change": {"default": 0.2, "by_role": {}}}
    parameters = parse_parameters({**BASELINE_PARAMETERS, **changes}).model_dump(mode="json")
    scenario = Scenario(
        name=DEMO_SCENARIO,
        title="Recruit a fifth more",
        description="Demo scenario: every role recruits 20% more each year than today.",
        ics_code=ics_code,
    )
    rationale = {
        "recruitment_change": {
            "rationale": "A recruitment drive across health and care (demo).",
            "source": "Demo scenario",
        }
    }
    await scenarios_repo.add(
        session, scenario, parameters=parameters, rationale=rationale, key_id=None
    )
    return scenario


async def load_demo_sharing(
    session: AsyncSession, *, ics_code: str = DEMO_ICB, today: date | None = None
) -> DemoSharing:
    """Add the demo agreement (with its deployments) and the demo scenario, with the demo's
    first load (the command line calls it only then)."""
    today = today or utcnow().date()
    agreement = await _agreement(session, ics_code=ics_code, today=today)
    scenario = await _scenario(session, ics_code=ics_code)
    await audit.record(
        session,
        key_id=None,
        actor="demo",
        action="demo.sharing",
        resource_type="area",
        resource_id=ics_code,
        detail={
            "agreement": None if agreement is None else str(agreement.id),
            "scenario": None if scenario is None else scenario.name,
        },
    )
    return DemoSharing(agreement=agreement, scenario=scenario)
