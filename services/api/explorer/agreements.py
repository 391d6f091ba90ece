"""The agreements page: the ICS's staff-sharing agreements with their state, parties and
scope, and the FTE deployed today under each lender's cap, read through the agreements
service (so only what the key may see)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.agreements import service as agreements
from services.api.http import PageParams
from shared.models import DeploymentStatus
from shared.repositories import roles as roles_repo
from shared.schemas import agreements as schemas
from shared.schemas.keys import Principal

MODE_LABELS = {
    "crisis": "For a crisis",
    "business_as_usual": "For business as usual",
    "both": "For a crisis and for business as usual",
}


@dataclass(frozen=True)
class CapLine:
    role_code: str
    role_name: str
    lender: str
    fte_cap: float
    deployed_fte: float

    @property
    def headroom(self) -> float:
        return self.fte_cap - self.deployed_fte


@dataclass(frozen=True)
class AgreementView:
    agreement: schemas.Agreement
    caps: list[CapLine]
    deployments: list[schemas.Deployment]
    names: dict[str, str]
    role_names: dict[str, str]

    @property
    def mode(self) -> str:
        mode = str(self.agreement.mode)
        return MODE_LABELS.get(mode, mode.replace("_", " ").capitalize())


async def load(session: AsyncSession, *, principal: Principal, today: date) -> list[AgreementView]:
    page = await agreements.list_agreements(
        session, principal=principal, today=today, page=PageParams(page=1, limit=100)
    )
    role_names = {role.code: role.name for role in await roles_repo.all_roles(session)}
    views = []
    for agreement in page.items:
        deployments = await agreements.list_deployments(
            session,
            agreement_id=agreement.id,
            principal=principal,
            today=today,
            page=PageParams(page=1, limit=500),
            status=DeploymentStatus.active,
            active_on=today,
        )
        names = {str(p.organisation_id): p.organisation_name for p in agreement.parties}
        deployed: dict[tuple[str, str], float] = defaultdict(float)
        for d in deployments.items:
            deployed[(d.role_code, str(d.from_organisation_id))] += d.fte
        caps = [
            CapLine(
                role_code=entry.role_code,
                role_name=role_names.get(entry.role_code, entry.role_code),
                lender=names.get(str(entry.lending_organisation_id), "?"),
                fte_cap=entry.fte_cap,
                deployed_fte=deployed.get((entry.role_code, str(entry.lending_organisation_id)), 0),
            )
            for entry in agreement.scope
        ]
        views.append(AgreementView(agreement, caps, list(deployments.items), names, role_names))
    return views
