"""Agreements, their parties and scope, and deployments under them.

Writers load the agreement through `get_agreement(..., lock=...)`, which serialises them:
row locks on PostgreSQL, the single database write lock on SQLite (taken by a write-first
statement, because pysqlite opens its transaction lazily at the first write).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Literal

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from shared.models import (
    Agreement,
    AgreementParty,
    AgreementScope,
    AgreementStatus,
    Area,
    AreaType,
    Deployment,
    DeploymentStatus,
    Role,
)
from shared.models.agreement import EXPIRING_STATUSES, AgreementMode
from shared.repositories.base import PageWindow, paginate
from shared.schemas.agreements import ActiveAgreement, AgreementState, LenderCap
from shared.schemas.keys import Principal

Lock = Literal["share", "update"]


def _is_sqlite(session: AsyncSession) -> bool:
    bind = session.bind
    assert bind is not None
    return bind.dialect.name == "sqlite"


async def _take_sqlite_write_lock(session: AsyncSession, *, agreement_id: uuid.UUID) -> None:
    # A no-op UPDATE begins the transaction with the database write lock held, so the reads that
    # follow and this request's writes cannot interleave with another writer's.
    await session.execute(
        update(Agreement)
        .where(Agreement.id == agreement_id)
        .values(version=Agreement.version, updated_at=Agreement.updated_at)
        .execution_options(synchronize_session=False)
    )


def readable_statement(principal: Principal) -> Select[Agreement]:
    """The agreements a key may see: those its organisation is a party to (an organisation's
    key), its ICS's (an ICS key), every one (a global key). An agreement's reads, its list and
    the reads of its deployments all start here."""
    query = select(Agreement)
    if principal.organisation_id is not None:
        return query.where(_is_party(principal.organisation_id))
    if principal.ics_code is not None:
        return query.where(Agreement.ics_code == principal.ics_code)
    return query


def _with_terms(query: Select[Agreement]) -> Select[Agreement]:
    """An agreement with its parties (and their organisations) and scope."""
    return query.options(
        selectinload(Agreement.parties).selectinload(AgreementParty.organisation),
        selectinload(Agreement.scope),
    )


async def get_agreement(
    session: AsyncSession,
    *,
    agreement_id: uuid.UUID,
    lock: Lock | None = None,
    principal: Principal | None = None,
) -> Agreement | None:
    """An agreement with its parties (and their organisations) and scope; with a `principal`,
    only if that key may see it (`readable_statement`).

    `lock="update"` for changes to the agreement; `lock="share"` for deployments, which must see
    a status that cannot change until they commit but may run beside each other.
    """
    query = select(Agreement) if principal is None else readable_statement(principal)
    query = _with_terms(query.where(Agreement.id == agreement_id)).execution_options(
        populate_existing=True
    )
    if lock is not None:
        if _is_sqlite(session):
            await _take_sqlite_write_lock(session, agreement_id=agreement_id)
        else:
            query = query.with_for_update(read=lock == "share", of=Agreement)
    return (await session.execute(query)).scalar_one_or_none()


def state_clause(state: AgreementState, *, today: date) -> ColumnElement[bool]:
    """SQL for "reads as `state` today" (see services/api/agreements/service.py state_of)."""
    if state == AgreementState.expired:
        return and_(Agreement.status.in_(list(EXPIRING_STATUSES)), Agreement.end_date < today)
    stored = AgreementStatus(state.value)
    if stored in EXPIRING_STATUSES:
        return and_(Agreement.status == stored, Agreement.end_date >= today)
    return Agreement.status == stored


def _is_party(organisation_id: uuid.UUID) -> ColumnElement[bool]:
    return exists().where(
        AgreementParty.agreement_id == Agreement.id,
        AgreementParty.organisation_id == organisation_id,
    )


async def list_agreements(
    session: AsyncSession,
    *,
    principal: Principal,
    today: date,
    ics_code: str | None = None,
    organisation_id: uuid.UUID | None = None,
    state: AgreementState | None = None,
    mode: AgreementMode | None = None,
    role_code: str | None = None,
    active_on: date | None = None,
    page: PageWindow,
) -> tuple[Sequence[Agreement], int]:
    """A page of the agreements the key may see (newest first) and the total matching the
    filters."""
    conditions: list[ColumnElement[bool]] = []
    if ics_code is not None:
        conditions.append(Agreement.ics_code == ics_code)
    if organisation_id is not None:
        conditions.append(_is_party(organisation_id))
    if state is not None:
        conditions.append(state_clause(state, today=today))
    if mode is not None:
        conditions.append(Agreement.mode == mode)
    if role_code is not None:
        conditions.append(
            exists().where(
                AgreementScope.agreement_id == Agreement.id, AgreementScope.role_code == role_code
            )
        )
    if active_on is not None:
        conditions.append(
            and_(
                Agreement.status == AgreementStatus.active,
                Agreement.start_date <= active_on,
                Agreement.end_date >= active_on,
            )
        )
    query = _with_terms(readable_statement(principal).where(*conditions)).order_by(
        Agreement.created_at.desc(), Agreement.id
    )
    return await paginate(session, query, page)


async def add_agreement(session: AsyncSession, agreement: Agreement) -> Agreement:
    session.add(agreement)
    await session.flush()
    return agreement


async def replace_parties(
    session: AsyncSession, agreement: Agreement, parties: Sequence[AgreementParty]
) -> None:
    """Swap the agreement's parties for new rows (the old ones go first: they share keys)."""
    agreement.parties.clear()
    await session.flush()
    for position, party in enumerate(parties):
        party.position = position
        agreement.parties.append(party)
    await session.flush()


async def replace_scope(
    session: AsyncSession, agreement: Agreement, scope: Sequence[AgreementScope]
) -> None:
    agreement.scope.clear()
    await session.flush()
    for position, entry in enumerate(scope):
        entry.position = position
        agreement.scope.append(entry)
    await session.flush()


async def lock_scope(
    session: AsyncSession,
    *,
    agreement_id: uuid.UUID,
    role_code: str,
    lending_organisation_id: uuid.UUID,
) -> AgreementScope | None:
    """The lender's cap row for a role, locked until commit so cap checks run one at a time."""
    query = select(AgreementScope).where(
        AgreementScope.agreement_id == agreement_id,
        AgreementScope.role_code == role_code,
        AgreementScope.lending_organisation_id == lending_organisation_id,
    )
    if not _is_sqlite(session):
        # SQLite needs no row lock: the agreement load already holds its one write lock.
        query = query.with_for_update()
    return (
        await session.execute(query.execution_options(populate_existing=True))
    ).scalar_one_or_none()


_EFFECTIVE_END = func.coalesce(Deployment.ended_early_on, Deployment.end_date)


async def lender_deployments(
    session: AsyncSession,
    *,
    agreement_id: uuid.UUID,
    role_code: str,
    lending_organisation_id: uuid.UUID,
    overlapping: tuple[date, date] | None = None,
    ending_on_or_after: date | None = None,
) -> Sequence[Deployment]:
    """Deployments from one lender in one role that occupy at least a day of the window."""
    query = select(Deployment).where(
        Deployment.agreement_id == agreement_id,
        Deployment.role_code == role_code,
        Deployment.from_organisation_id == lending_organisation_id,
        Deployment.start_date <= _EFFECTIVE_END,
    )
    if overlapping is not None:
        first, last = overlapping
        query = query.where(Deployment.start_date <= last, first <= _EFFECTIVE_END)
    if ending_on_or_after is not None:
        query = query.where(ending_on_or_after <= _EFFECTIVE_END)
    return (await session.execute(query)).scalars().all()


async def current_deployments(
    session: AsyncSession, *, agreement_id: uuid.UUID, today: date
) -> Sequence[Deployment]:
    """Deployments that run today or later (withdrawn ones excluded)."""
    query = (
        select(Deployment)
        .where(
            Deployment.agreement_id == agreement_id,
            today <= _EFFECTIVE_END,
            Deployment.start_date <= _EFFECTIVE_END,
        )
        .order_by(Deployment.start_date, Deployment.id)
    )
    return (await session.execute(query)).scalars().all()


async def add_deployment(session: AsyncSession, deployment: Deployment) -> Deployment:
    session.add(deployment)
    await session.flush()
    return deployment


async def get_deployment(
    session: AsyncSession, *, agreement_id: uuid.UUID, deployment_id: uuid.UUID, lock: bool = False
) -> Deployment | None:
    query = select(Deployment).where(
        Deployment.id == deployment_id, Deployment.agreement_id == agreement_id
    )
    if lock and not _is_sqlite(session):
        query = query.with_for_update()
    return (
        await session.execute(query.execution_options(populate_existing=True))
    ).scalar_one_or_none()


async def list_deployments(
    session: AsyncSession,
    *,
    agreement_id: uuid.UUID,
    today: date,
    organisation_id: uuid.UUID | None = None,
    role_code: str | None = None,
    status: DeploymentStatus | None = None,
    active_on: date | None = None,
    page: PageWindow,
) -> tuple[Sequence[Deployment], int]:
    conditions: list[ColumnElement[bool]] = [Deployment.agreement_id == agreement_id]
    if organisation_id is not None:
        conditions.append(
            or_(
                Deployment.from_organisation_id == organisation_id,
                Deployment.to_organisation_id == organisation_id,
            )
        )
    if role_code is not None:
        conditions.append(Deployment.role_code == role_code)
    if status == DeploymentStatus.active:
        conditions.append(
            and_(Deployment.status == DeploymentStatus.active, Deployment.end_date >= today)
        )
    elif status == DeploymentStatus.ended:
        conditions.append(
            or_(Deployment.status == DeploymentStatus.ended, Deployment.end_date < today)
        )
    if active_on is not None:
        conditions.append(and_(Deployment.start_date <= active_on, active_on <= _EFFECTIVE_END))
    query = (
        select(Deployment)
        .where(*conditions)
        .order_by(Deployment.start_date, Deployment.created_at, Deployment.id)
    )
    return await paginate(session, query, page)


async def roles_by_code(session: AsyncSession, *, codes: Iterable[str]) -> dict[str, Role]:
    wanted = set(codes)
    if not wanted:
        return {}
    rows = (await session.execute(select(Role).where(Role.code.in_(wanted)))).scalars()
    return {row.code: row for row in rows}


async def is_ics(session: AsyncSession, *, code: str) -> bool:
    area = await session.get(Area, code)
    return area is not None and area.type == AreaType.icb


async def active_agreements_for_ics(
    session: AsyncSession, *, ics_code: str, on: date
) -> list[ActiveAgreement]:
    """Agreements of an ICS in force on a date, with their parties and per-lender role caps.

    In force means active now (not suspended, awaiting signatures or terminated) and `on` within
    its dates; the projector uses the caps for "gap after sharing".
    """
    query = (
        select(Agreement)
        .where(
            Agreement.ics_code == ics_code,
            Agreement.status == AgreementStatus.active,
            Agreement.start_date <= on,
            Agreement.end_date >= on,
        )
        .options(selectinload(Agreement.parties), selectinload(Agreement.scope))
        .order_by(Agreement.start_date, Agreement.id)
    )
    agreements = (await session.execute(query)).scalars().all()
    return [
        ActiveAgreement(
            id=agreement.id,
            title=agreement.title,
            ics_code=agreement.ics_code,
            mode=AgreementMode(agreement.mode),
            start_date=agreement.start_date,
            end_date=agreement.end_date,
            party_organisation_ids=tuple(party.organisation_id for party in agreement.parties),
            caps=tuple(
                LenderCap(
                    role_code=entry.role_code,
                    lending_organisation_id=entry.lending_organisation_id,
                    fte_cap=entry.fte_cap,
                )
                for entry in agreement.scope
            ),
        )
        for agreement in agreements
    ]


# The calendar --------------------------------------------------------------------------------


async def claim_passed_deployment_ends(
    session: AsyncSession, *, today: date, at: datetime, limit: int
) -> list[uuid.UUID]:
    """Deployments whose last day was before `today`, not ended early and whose end is not yet
    announced: marked announced at `at`; their ids.

    The UPDATE re-checks the mark on each row it takes (under the row's lock on PostgreSQL, under
    the single write lock on SQLite), so sweeps running at once claim each end once between them.
    """
    candidates = (
        select(Deployment.id)
        .where(
            Deployment.end_announced_at.is_(None),
            Deployment.status == DeploymentStatus.active,
            Deployment.end_date < today,
        )
        .order_by(Deployment.end_date, Deployment.id)
        .limit(limit)
    )
    claimed = await session.execute(
        update(Deployment)
        .where(Deployment.id.in_(candidates))
        .where(Deployment.end_announced_at.is_(None))
        .values(end_announced_at=at)
        .returning(Deployment.id)
        .execution_options(synchronize_session=False)
    )
    return list(claimed.scalars())


async def claim_passed_agreement_ends(
    session: AsyncSession, *, today: date, at: datetime, limit: int
) -> list[uuid.UUID]:
    """Agreements that were in force and are past their end date (they read `expired`) whose
    end is not yet announced: marked announced at `at`; their ids. Claimed as
    `claim_passed_deployment_ends` claims deployments."""
    candidates = (
        select(Agreement.id)
        .where(
            Agreement.end_announced_at.is_(None),
            Agreement.status.in_(list(EXPIRING_STATUSES)),
            Agreement.end_date < today,
        )
        .order_by(Agreement.end_date, Agreement.id)
        .limit(limit)
    )
    claimed = await session.execute(
        update(Agreement)
        .where(Agreement.id.in_(candidates))
        .where(Agreement.end_announced_at.is_(None))
        .values(end_announced_at=at)
        .returning(Agreement.id)
        .execution_options(synchronize_session=False)
    )
    return list(claimed.scalars())


async def deployments_by_id(
    session: AsyncSession, *, deployment_ids: Sequence[uuid.UUID]
) -> Sequence[Deployment]:
    if not deployment_ids:
        return []
    query = (
        select(Deployment)
        .where(Deployment.id.in_(list(deployment_ids)))
        .order_by(Deployment.end_date, Deployment.id)
    )
    return (await session.execute(query)).scalars().all()


async def agreements_with_parties(
    session: AsyncSession, *, agreement_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Agreement]:
    """Agreements by id, with their parties (who hears of their events)."""
    wanted = sorted(set(agreement_ids))
    if not wanted:
        return {}
    query = (
        select(Agreement).where(Agreement.id.in_(wanted)).options(selectinload(Agreement.parties))
    )
    return {agreement.id: agreement for agreement in (await session.execute(query)).scalars()}
