"""Staff-sharing agreements: who may see and change them, their lifecycle, their terms, and the
deployments made under them with their caps.

Lifecycle (stored status; `expired` is read from the end date, never stored):

    draft --sign (all parties, start date come)--> active <--suspend / resume--> suspended
    draft --sign (all)... then POST activate once the start date has come --> active
    active / suspended --change of parties, scope, dates or mode--> pending_resign
    pending_resign --every party signs again--> active
    any of the above --terminate--> terminated (final)
    active / suspended / pending_resign past end_date: reads as expired
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.agreements import errors
from services.api.http import PageParams, etag_of
from services.api.organisations import service as organisations
from services.api.organisations.errors import UnknownOrganisation
from services.api.roles.errors import UnknownRole
from services.domain.projections import runs as projection_runs
from services.domain.webhooks import events as webhook_events
from services.domain.webhooks.events import EventType
from shared.db.base import utcnow
from shared.errors import DomainError, FieldErrors, InsufficientScope
from shared.models import (
    Agreement,
    AgreementMode,
    AgreementParty,
    AgreementScope,
    AgreementStatus,
    Deployment,
    DeploymentStatus,
    KeyScope,
    Organisation,
    Role,
)
from shared.models.agreement import EXPIRING_STATUSES
from shared.repositories import agreements as repo
from shared.repositories import audit
from shared.repositories import organisations as organisations_repo
from shared.schemas import agreements as schemas
from shared.schemas.agreements import AgreementState
from shared.schemas.common import Page
from shared.schemas.keys import Principal

# FTE are floats; a cap filled exactly by several deployments must not fail on rounding.
FTE_TOLERANCE = 1e-9

Precondition = Callable[[str], None]

_IN_NEGOTIATION = frozenset({AgreementState.draft, AgreementState.pending_resign})
_CHANGEABLE = _IN_NEGOTIATION | {AgreementState.active, AgreementState.suspended}

_STATE_ERRORS: dict[AgreementState, type[DomainError]] = {
    AgreementState.draft: errors.AgreementNotActive,
    AgreementState.pending_resign: errors.AgreementNotActive,
    AgreementState.active: errors.AgreementAlreadyActive,
    AgreementState.suspended: errors.AgreementSuspended,
    AgreementState.expired: errors.AgreementExpired,
    AgreementState.terminated: errors.AgreementTerminated,
}


# Reading -----------------------------------------------------------------------------------


def state_of(agreement: Agreement, *, today: date) -> AgreementState:
    """The status a reader sees today: stored, except `expired` past the end date."""
    status = AgreementStatus(agreement.status)
    if status in EXPIRING_STATUSES and today > agreement.end_date:
        return AgreementState.expired
    return AgreementState(status.value)


def etag(agreement: Agreement, *, today: date) -> str:
    # The read status is part of the representation, and it changes at expiry without a write.
    return etag_of(
        "agreement", str(agreement.id), agreement.version, state_of(agreement, today=today)
    )


def fully_signed(agreement: Agreement) -> bool:
    return all(party.signed_at is not None for party in agreement.parties)


def to_schema(agreement: Agreement, *, today: date) -> schemas.Agreement:
    return schemas.Agreement(
        id=agreement.id,
        title=agreement.title,
        ics_code=agreement.ics_code,
        mode=AgreementMode(agreement.mode),
        status=state_of(agreement, today=today),
        start_date=agreement.start_date,
        end_date=agreement.end_date,
        governance=schemas.Governance(
            risk_share=agreement.risk_share,
            indemnity=agreement.indemnity,
            host_employer=agreement.host_employer,
            notes=agreement.notes,
        ),
        parties=[
            schemas.Party(
                organisation_id=party.organisation_id,
                organisation_name=party.organisation.name,
                ods_code=party.organisation.ods_code,
                signatory_name=party.signatory_name,
                signatory_role=party.signatory_role,
                signed_at=party.signed_at,
                signed_by_key_id=party.signed_by_key_id,
                signed_on_behalf=party.signed_on_behalf,
            )
            for party in agreement.parties
        ],
        scope=[
            schemas.ScopeEntry(
                role_code=entry.role_code,
                lending_organisation_id=entry.lending_organisation_id,
                fte_cap=entry.fte_cap,
            )
            for entry in agreement.scope
        ],
        fully_signed=fully_signed(agreement),
        version=agreement.version,
        created_at=agreement.created_at,
        updated_at=agreement.updated_at,
        activated_at=agreement.activated_at,
        suspended_at=agreement.suspended_at,
        terminated_at=agreement.terminated_at,
        termination_reason=agreement.termination_reason,
    )


def effective_end(deployment: Deployment) -> date:
    return deployment.ended_early_on or deployment.end_date


def deployment_to_schema(deployment: Deployment, *, today: date) -> schemas.Deployment:
    ended = deployment.status == DeploymentStatus.ended or deployment.end_date < today
    return schemas.Deployment(
        id=deployment.id,
        agreement_id=deployment.agreement_id,
        from_organisation_id=deployment.from_organisation_id,
        to_organisation_id=deployment.to_organisation_id,
        role_code=deployment.role_code,
        fte=deployment.fte,
        start_date=deployment.start_date,
        end_date=deployment.end_date,
        reason=deployment.reason,
        status=DeploymentStatus.ended if ended else DeploymentStatus.active,
        ended_early_on=deployment.ended_early_on,
        ended_at=deployment.ended_at,
        end_reason=deployment.end_reason,
        effective_end_date=effective_end(deployment),
        created_at=deployment.created_at,
        updated_at=deployment.updated_at,
    )


# Access -------------------------------------------------------------------------------------


def can_manage_agreement(principal: Principal, agreement: Agreement) -> bool:
    """A global admin, or an admin key bound to the agreement's ICS."""
    return principal.has(KeyScope.admin) and (
        principal.is_global or principal.ics_code == agreement.ics_code
    )


async def _load(
    session: AsyncSession,
    *,
    agreement_id: uuid.UUID,
    principal: Principal,
    lock: repo.Lock | None = None,
    manage: bool = False,
) -> Agreement:
    # What the key may not read is filtered in the query itself (the list's own statement), so
    # another ICS's agreement costs the same one query as an id that does not exist, and is
    # answered the same.
    agreement = await repo.get_agreement(
        session, agreement_id=agreement_id, lock=lock, principal=principal
    )
    if agreement is None:
        raise errors.AgreementNotFound("No such agreement.")
    if manage and not can_manage_agreement(principal, agreement):
        raise InsufficientScope("Only an admin of the agreement's ICS may change it.")
    return agreement


async def get_agreement(
    session: AsyncSession, *, agreement_id: uuid.UUID, principal: Principal
) -> Agreement:
    return await _load(session, agreement_id=agreement_id, principal=principal)


async def list_agreements(
    session: AsyncSession,
    *,
    principal: Principal,
    today: date,
    page: PageParams,
    organisation_id: uuid.UUID | None = None,
    ics_code: str | None = None,
    state: AgreementState | None = None,
    mode: AgreementMode | None = None,
    role_code: str | None = None,
    active_on: date | None = None,
) -> Page[schemas.Agreement]:
    """Agreements the key may see, filtered, newest first."""
    rows, total = await repo.list_agreements(
        session,
        principal=principal,
        today=today,
        ics_code=ics_code,
        organisation_id=organisation_id,
        state=state,
        mode=mode,
        role_code=role_code,
        active_on=active_on,
        page=page,
    )
    return page.result([to_schema(row, today=today) for row in rows], total)


async def visible_organisation(
    session: AsyncSession, *, organisation_id: uuid.UUID, principal: Principal
) -> Organisation:
    return await organisations.get_visible(
        session, principal=principal, organisation_id=organisation_id
    )


async def roles_for(session: AsyncSession, agreement: Agreement) -> dict[str, Role]:
    return await repo.roles_by_code(session, codes={entry.role_code for entry in agreement.scope})


# Rules ---------------------------------------------------------------------------------------


def _require_state(
    agreement: Agreement,
    *,
    today: date,
    allowed: Iterable[AgreementState],
    action: str,
    instead: dict[AgreementState, type[DomainError]] | None = None,
) -> AgreementState:
    state = state_of(agreement, today=today)
    if state in set(allowed):
        return state
    error = (instead or {}).get(state) or _STATE_ERRORS[state]
    raise error(
        f"Cannot {action} an agreement that is {state.value.replace('_', ' ')}.",
        agreement_status=state.value,
    )


def _check_dates(start_date: date, end_date: date) -> None:
    if end_date < start_date:
        raise errors.InvalidDateRange("The end date is before the start date.", field="end_date")


async def _check_terms(
    session: AsyncSession,
    *,
    principal: Principal,
    ics_code: str,
    parties: Sequence[schemas.PartyIn],
    scope: Sequence[schemas.ScopeIn],
    scope_field: str = "scope",
) -> dict[uuid.UUID, Organisation]:
    """Every broken rule in the parties and scope, reported together; the organisations."""
    problems = FieldErrors()
    # An organisation the key may not see is answered as one that does not exist.
    organisations = await organisations_repo.readable_by_id(
        session, principal=principal, organisation_ids=[party.organisation_id for party in parties]
    )
    seen: set[uuid.UUID] = set()
    for index, party in enumerate(parties):
        field = f"parties.{index}.organisation_id"
        organisation = organisations.get(party.organisation_id)
        if party.organisation_id in seen:
            problems.add(errors.DuplicateParty, field, "organisation listed twice")
        elif organisation is None:
            problems.add(UnknownOrganisation, field, "no such organisation")
        elif organisation.ics_code != ics_code:
            problems.add(
                errors.PartyOutsideIcs, field, f"the organisation is not in ICS {ics_code}"
            )
        seen.add(party.organisation_id)
    if len(seen) < 2:
        problems.add(
            errors.TooFewParties,
            "parties",
            "an agreement needs at least two parties",
            first=True,
        )
    if not scope:
        problems.add(errors.ScopeRequired, scope_field, "name at least one role and cap")
    roles = await repo.roles_by_code(session, codes={entry.role_code for entry in scope})
    scope_keys: set[tuple[str, uuid.UUID]] = set()
    for index, entry in enumerate(scope):
        key = (entry.role_code, entry.lending_organisation_id)
        if entry.role_code not in roles:
            problems.add(UnknownRole, f"{scope_field}.{index}.role_code", "no such role")
        if entry.lending_organisation_id not in seen:
            problems.add(
                errors.LenderNotParty,
                f"{scope_field}.{index}.lending_organisation_id",
                "the lending organisation must be a party",
            )
        if key in scope_keys:
            problems.add(
                errors.DuplicateScope, f"{scope_field}.{index}", "role and lender listed twice"
            )
        scope_keys.add(key)
    problems.raise_if_any("The agreement's parties or scope are not valid.")
    return organisations


def peak_fte(intervals: Iterable[tuple[date, date, float]], *, first: date, last: date) -> float:
    """The most FTE out at once on any day from `first` to `last` (inclusive)."""
    events: list[tuple[date, int, float]] = []
    for start, end, fte in intervals:
        lo, hi = max(start, first), min(end, last)
        if lo > hi:
            continue
        events.append((lo, 1, fte))
        events.append((hi + timedelta(days=1), 0, -fte))
    peak = running = 0.0
    # On one day, departures (0) are counted before arrivals (1).
    for _, _, delta in sorted(events):
        running += delta
        peak = max(peak, running)
    return peak


def _spans(deployments: Iterable[Deployment]) -> list[tuple[date, date, float]]:
    return [(d.start_date, effective_end(d), d.fte) for d in deployments]


def _deployment_conflicts(
    deployments: Sequence[Deployment],
    *,
    party_ids: set[uuid.UUID],
    caps: dict[tuple[str, uuid.UUID], float],
    start_date: date,
    end_date: date,
    today: date,
) -> list[dict[str, Any]]:
    """Current deployments that new terms would break, with the rule each would break."""
    conflicts: list[dict[str, Any]] = []
    grouped: dict[tuple[str, uuid.UUID], list[Deployment]] = defaultdict(list)
    for deployment in deployments:
        code = None
        if not {deployment.from_organisation_id, deployment.to_organisation_id} <= party_ids:
            code = "organisation_not_party"
        elif (deployment.role_code, deployment.from_organisation_id) not in caps:
            code = "role_not_in_scope"
        elif deployment.start_date < start_date or effective_end(deployment) > end_date:
            code = "deployment_outside_agreement_dates"
        if code:
            conflicts.append({"deployment_id": str(deployment.id), "code": code})
        else:
            grouped[(deployment.role_code, deployment.from_organisation_id)].append(deployment)
    for key, group in grouped.items():
        last = max(effective_end(d) for d in group)
        if peak_fte(_spans(group), first=today, last=last) > caps[key] + FTE_TOLERANCE:
            conflicts.extend({"deployment_id": str(d.id), "code": "cap_exceeded"} for d in group)
    return conflicts


async def _audit(
    session: AsyncSession,
    principal: Principal,
    action: str,
    resource: Agreement | Deployment,
    detail: dict[str, Any] | None = None,
    *,
    agreement: Agreement | None = None,
) -> None:
    """Audit the change; announce it if it is a webhook event. A deployment's change passes
    the `agreement` the caller already loaded (with its parties), so it is not read again."""
    await audit.record(
        session,
        key_id=principal.key_id,
        actor=principal.actor,
        action=action,
        resource_type="agreement" if isinstance(resource, Agreement) else "deployment",
        resource_id=str(resource.id),
        detail=detail,
    )
    event = _WEBHOOK_EVENTS.get(action)
    if event is not None:
        owner = resource if isinstance(resource, Agreement) else agreement
        assert owner is not None, "a deployment's change passes its agreement"
        resumed = action == "agreement.resume"
        await webhook_events.emit_many(
            session, [webhook_events.agreement_event_of(event, resource, owner, resumed=resumed)]
        )


# Audited actions that are also webhook events: a resumed agreement is in force again.
_WEBHOOK_EVENTS: dict[str, EventType] = {
    "agreement.activate": EventType.agreement_activated,
    "agreement.resume": EventType.agreement_activated,
    "agreement.suspend": EventType.agreement_suspended,
    "agreement.terminate": EventType.agreement_terminated,
    "deployment.create": EventType.deployment_created,
    "deployment.end": EventType.deployment_ended,
}


async def _changed(session: AsyncSession, agreement: Agreement) -> None:
    agreement.version += 1
    await session.flush()
    if agreement.status != AgreementStatus.draft:
        # An agreement that is or was in force: sharing in its ICS may have changed.
        await projection_runs.agreements_changed(session, ics_code=agreement.ics_code)


# Writes --------------------------------------------------------------------------------------


async def create_agreement(
    session: AsyncSession, body: schemas.AgreementCreate, *, principal: Principal, today: date
) -> Agreement:
    """Create a draft agreement with its parties and scope; nobody has signed yet."""
    ics_code = body.ics_code or principal.ics_code
    if ics_code is None:
        raise errors.IcsRequired("Name the ICS the agreement belongs to.", field="ics_code")
    if principal.ics_code is not None and ics_code != principal.ics_code:
        raise errors.IcsOutOfScope("An ICS admin key may only create agreements in its own ICS.")
    if not await repo.is_ics(session, code=ics_code):
        raise errors.IcsNotFound("No such ICS (ICB code).", field="ics_code")
    _check_dates(body.start_date, body.end_date)
    organisations = await _check_terms(
        session, principal=principal, ics_code=ics_code, parties=body.parties, scope=body.scope
    )
    agreement = Agreement(
        title=body.title,
        ics_code=ics_code,
        mode=body.mode,
        status=AgreementStatus.draft,
        start_date=body.start_date,
        end_date=body.end_date,
        risk_share=body.governance.risk_share,
        indemnity=body.governance.indemnity,
        host_employer=body.governance.host_employer,
        notes=body.governance.notes,
        version=1,
        parties=[
            AgreementParty(
                organisation=organisations[party.organisation_id],
                position=position,
                signatory_name=party.signatory_name,
                signatory_role=party.signatory_role,
            )
            for position, party in enumerate(body.parties)
        ],
        scope=[
            AgreementScope(
                role_code=entry.role_code,
                lending_organisation_id=entry.lending_organisation_id,
                fte_cap=entry.fte_cap,
                position=position,
            )
            for position, entry in enumerate(body.scope)
        ],
    )
    await repo.add_agreement(session, agreement)
    await _audit(
        session,
        principal,
        "agreement.create",
        agreement,
        {
            "title": agreement.title,
            "ics_code": ics_code,
            "parties": [str(p.organisation_id) for p in body.parties],
            "scope": [e.model_dump(mode="json") for e in body.scope],
        },
    )
    return agreement


@dataclass(frozen=True)
class TermsPlan:
    """What a change to an agreement does to its terms, decided before anything is written."""

    start_date: date
    end_date: date
    parties: list[schemas.PartyIn]
    scope: list[schemas.ScopeIn]
    party_set_changed: bool
    scope_changed: bool
    # Terms that change (mode, dates, parties, scope): any of them clears every signature.
    changed_terms: tuple[str, ...]


def plan_terms_change(agreement: Agreement, body: schemas.AgreementUpdate) -> TermsPlan:
    """The agreement's terms after the change, and which of them differ (pure)."""
    start_date = body.start_date if body.start_date is not None else agreement.start_date
    end_date = body.end_date if body.end_date is not None else agreement.end_date
    current_parties = [
        schemas.PartyIn(
            organisation_id=p.organisation_id,
            signatory_name=p.signatory_name,
            signatory_role=p.signatory_role,
        )
        for p in agreement.parties
    ]
    current_scope = [
        schemas.ScopeIn(
            role_code=e.role_code,
            lending_organisation_id=e.lending_organisation_id,
            fte_cap=e.fte_cap,
        )
        for e in agreement.scope
    ]
    parties = body.parties if body.parties is not None else current_parties
    scope = body.scope if body.scope is not None else current_scope
    party_set_changed = {p.organisation_id for p in parties} != {
        p.organisation_id for p in current_parties
    }
    scope_key = {(e.role_code, e.lending_organisation_id, e.fte_cap) for e in scope}
    scope_changed = scope_key != {
        (e.role_code, e.lending_organisation_id, e.fte_cap) for e in current_scope
    }
    changes = (
        ("mode", body.mode is not None and body.mode != agreement.mode),
        ("start_date", start_date != agreement.start_date),
        ("end_date", end_date != agreement.end_date),
        ("parties", party_set_changed),
        ("scope", scope_changed),
    )
    return TermsPlan(
        start_date=start_date,
        end_date=end_date,
        parties=list(parties),
        scope=list(scope),
        party_set_changed=party_set_changed,
        scope_changed=scope_changed,
        changed_terms=tuple(name for name, differs in changes if differs),
    )


async def update_agreement(
    session: AsyncSession,
    *,
    agreement_id: uuid.UUID,
    body: schemas.AgreementUpdate,
    principal: Principal,
    today: date,
    precondition: Precondition,
) -> Agreement:
    """Change an agreement. New parties, scope, dates or mode clear every signature, and an
    agreement in force goes back to `pending_resign` until every party signs again."""
    agreement = await _load(
        session, agreement_id=agreement_id, principal=principal, lock="update", manage=True
    )
    precondition(etag(agreement, today=today))
    state = _require_state(agreement, today=today, allowed=_CHANGEABLE, action="change")
    plan = plan_terms_change(agreement, body)
    _check_dates(plan.start_date, plan.end_date)
    parties, scope = plan.parties, plan.scope
    organisations: dict[uuid.UUID, Organisation] = {}
    if body.parties is not None or body.scope is not None:
        organisations = await _check_terms(
            session,
            principal=principal,
            ics_code=agreement.ics_code,
            parties=parties,
            scope=scope,
        )
    changed = list(plan.changed_terms)
    terms_changed = bool(changed)
    if terms_changed:
        await _ensure_deployments_fit(session, agreement, plan, today=today)
    had_signatures = any(p.signed_at is not None for p in agreement.parties)
    changed += _apply_details(agreement, body, plan)
    if plan.party_set_changed:
        await repo.replace_parties(session, agreement, _new_parties(plan, organisations))
    elif body.parties is not None and _apply_signatories(agreement, body.parties):
        changed.append("signatories")
    if plan.scope_changed:
        await repo.replace_scope(session, agreement, _new_scope(plan))
    if not changed:
        return agreement
    if terms_changed:
        _clear_signatures(agreement, state)
    await _changed(session, agreement)
    await _audit(
        session,
        principal,
        "agreement.update",
        agreement,
        {
            "changed": changed,
            "signatures_cleared": terms_changed and had_signatures,
            "status": agreement.status,
        },
    )
    return agreement


async def _ensure_deployments_fit(
    session: AsyncSession, agreement: Agreement, plan: TermsPlan, *, today: date
) -> None:
    """Refuse new terms that would break a current deployment under the agreement."""
    current = await repo.current_deployments(session, agreement_id=agreement.id, today=today)
    conflicts = _deployment_conflicts(
        current,
        party_ids={p.organisation_id for p in plan.parties},
        caps={(e.role_code, e.lending_organisation_id): e.fte_cap for e in plan.scope},
        start_date=plan.start_date,
        end_date=plan.end_date,
        today=today,
    )
    if conflicts:
        raise errors.TermsConflictWithDeployments(
            "The new terms would break current deployments; end them first.",
            deployments=conflicts,
        )


def _apply_details(
    agreement: Agreement, body: schemas.AgreementUpdate, plan: TermsPlan
) -> list[str]:
    """Set the title, governance, mode and dates; the names of the details (title and
    governance fields) that changed."""
    changed: list[str] = []
    if body.title is not None and body.title != agreement.title:
        agreement.title = body.title
        changed.append("title")
    if body.governance is not None:
        for name in body.governance.model_fields_set:
            value = getattr(body.governance, name)
            if getattr(agreement, name) != value:
                setattr(agreement, name, value)
                changed.append(f"governance.{name}")
    if body.mode is not None:
        agreement.mode = body.mode
    agreement.start_date, agreement.end_date = plan.start_date, plan.end_date
    return changed


def _new_parties(
    plan: TermsPlan, organisations: dict[uuid.UUID, Organisation]
) -> list[AgreementParty]:
    return [
        AgreementParty(
            organisation=organisations[p.organisation_id],
            signatory_name=p.signatory_name,
            signatory_role=p.signatory_role,
        )
        for p in plan.parties
    ]


def _new_scope(plan: TermsPlan) -> list[AgreementScope]:
    return [
        AgreementScope(
            role_code=e.role_code,
            lending_organisation_id=e.lending_organisation_id,
            fte_cap=e.fte_cap,
        )
        for e in plan.scope
    ]


def _apply_signatories(agreement: Agreement, parties: list[schemas.PartyIn]) -> bool:
    """Same organisations: only the named signatories of those yet to sign may change.
    Whether any did."""
    wanted = {p.organisation_id: p for p in parties}
    changed = False
    for party in agreement.parties:
        new = wanted[party.organisation_id]
        if party.signed_at is None and (
            (party.signatory_name, party.signatory_role) != (new.signatory_name, new.signatory_role)
        ):
            party.signatory_name, party.signatory_role = new.signatory_name, new.signatory_role
            changed = True
    return changed


def _clear_signatures(agreement: Agreement, state: AgreementState) -> None:
    """New terms clear every signature; an agreement in force waits for all parties again."""
    for party in agreement.parties:
        party.signed_at = None
        party.signed_by_key_id = None
        party.signed_on_behalf = False
    if state in (AgreementState.active, AgreementState.suspended):
        agreement.status = AgreementStatus.pending_resign
        agreement.suspended_at = None


def _activate(agreement: Agreement, *, today: date) -> None:
    unsigned = [str(p.organisation_id) for p in agreement.parties if p.signed_at is None]
    if unsigned:
        raise errors.AgreementNotFullySigned(
            "Every party must sign before the agreement can be activated.",
            unsigned_organisation_ids=unsigned,
        )
    if today < agreement.start_date:
        raise errors.AgreementNotStarted(
            f"The agreement starts on {agreement.start_date.isoformat()}.",
            start_date=agreement.start_date.isoformat(),
        )
    if today > agreement.end_date:
        raise errors.AgreementExpired(
            f"The agreement ended on {agreement.end_date.isoformat()}.",
            end_date=agreement.end_date.isoformat(),
        )
    agreement.status = AgreementStatus.active
    agreement.activated_at = utcnow()
    agreement.suspended_at = None


async def sign(
    session: AsyncSession,
    *,
    agreement_id: uuid.UUID,
    body: schemas.SignRequest,
    principal: Principal,
    today: date,
    precondition: Precondition,
) -> Agreement:
    """Record a party's signature: by the party's own submit key, or by an ICS admin on its
    behalf. The last signature activates the agreement when its start date has come."""
    agreement = await _load(session, agreement_id=agreement_id, principal=principal, lock="update")
    on_behalf = principal.has(KeyScope.admin)
    organisation_id: uuid.UUID | None
    if on_behalf:
        if not can_manage_agreement(principal, agreement):
            raise InsufficientScope(
                "Only an admin of the agreement's ICS may sign on a party's behalf."
            )
        if body.organisation_id is None:
            raise errors.OrganisationRequired(
                "Name the party you are signing for.", field="organisation_id"
            )
        organisation_id = body.organisation_id
    else:
        organisation_id = principal.organisation_id
        if body.organisation_id is not None and body.organisation_id != organisation_id:
            raise errors.NotYourOrganisation(
                "A party's key may only sign for its own organisation."
            )
    precondition(etag(agreement, today=today))
    _require_state(agreement, today=today, allowed=_IN_NEGOTIATION, action="sign")
    party = next((p for p in agreement.parties if p.organisation_id == organisation_id), None)
    if party is None:
        raise errors.OrganisationNotParty(
            "That organisation is not a party to the agreement.", field="organisation_id"
        )
    if party.signed_at is not None:
        raise errors.PartyAlreadySigned("This party has already signed.")
    party.signed_at = utcnow()
    party.signed_by_key_id = principal.key_id
    party.signed_on_behalf = on_behalf
    party.signatory_name, party.signatory_role = body.signatory_name, body.signatory_role
    activated = fully_signed(agreement) and agreement.start_date <= today <= agreement.end_date
    if activated:
        _activate(agreement, today=today)
    await _changed(session, agreement)
    await _audit(
        session,
        principal,
        "agreement.sign",
        agreement,
        {
            "organisation_id": str(organisation_id),
            "signed_on_behalf": on_behalf,
            "signatory_name": body.signatory_name,
            "signatory_role": body.signatory_role,
        },
    )
    if activated:
        await _audit(
            session, principal, "agreement.activate", agreement, {"on_last_signature": True}
        )
    return agreement


async def activate(
    session: AsyncSession,
    *,
    agreement_id: uuid.UUID,
    principal: Principal,
    today: date,
    precondition: Precondition,
) -> Agreement:
    """Put a fully signed agreement in force once its start date has come."""
    agreement = await _load(
        session, agreement_id=agreement_id, principal=principal, lock="update", manage=True
    )
    precondition(etag(agreement, today=today))
    _require_state(agreement, today=today, allowed=_IN_NEGOTIATION, action="activate")
    _activate(agreement, today=today)
    await _changed(session, agreement)
    await _audit(session, principal, "agreement.activate", agreement, {"on_last_signature": False})
    return agreement


async def suspend(
    session: AsyncSession,
    *,
    agreement_id: uuid.UUID,
    body: schemas.SuspendRequest,
    principal: Principal,
    today: date,
    precondition: Precondition,
) -> Agreement:
    """Stop new deployments under an active agreement until it is resumed."""
    agreement = await _load(
        session, agreement_id=agreement_id, principal=principal, lock="update", manage=True
    )
    precondition(etag(agreement, today=today))
    _require_state(
        agreement,
        today=today,
        allowed={AgreementState.active},
        action="suspend",
        instead={AgreementState.suspended: errors.AgreementAlreadySuspended},
    )
    agreement.status = AgreementStatus.suspended
    agreement.suspended_at = utcnow()
    await _changed(session, agreement)
    await _audit(session, principal, "agreement.suspend", agreement, {"reason": body.reason})
    return agreement


async def resume(
    session: AsyncSession,
    *,
    agreement_id: uuid.UUID,
    principal: Principal,
    today: date,
    precondition: Precondition,
) -> Agreement:
    """Put a suspended agreement back in force."""
    agreement = await _load(
        session, agreement_id=agreement_id, principal=principal, lock="update", manage=True
    )
    precondition(etag(agreement, today=today))
    not_suspended: dict[AgreementState, type[DomainError]] = {
        state: errors.AgreementNotSuspended for state in (AgreementState.active, *_IN_NEGOTIATION)
    }
    _require_state(
        agreement,
        today=today,
        allowed={AgreementState.suspended},
        action="resume",
        instead=not_suspended,
    )
    agreement.status = AgreementStatus.active
    agreement.suspended_at = None
    await _changed(session, agreement)
    await _audit(session, principal, "agreement.resume", agreement)
    return agreement


async def terminate(
    session: AsyncSession,
    *,
    agreement_id: uuid.UUID,
    body: schemas.TerminateRequest,
    principal: Principal,
    today: date,
    precondition: Precondition,
) -> Agreement:
    """End an agreement for good; deployments still running end today (or are withdrawn)."""
    agreement = await _load(
        session, agreement_id=agreement_id, principal=principal, lock="update", manage=True
    )
    precondition(etag(agreement, today=today))
    _require_state(agreement, today=today, allowed=_CHANGEABLE, action="terminate")
    now = utcnow()
    cut_short: list[Deployment] = []
    for deployment in await repo.current_deployments(
        session, agreement_id=agreement.id, today=today
    ):
        if effective_end(deployment) <= today:
            continue
        deployment.ended_early_on = max(today, deployment.start_date - timedelta(days=1))
        deployment.status = DeploymentStatus.ended
        deployment.ended_at = deployment.ended_at or now
        deployment.end_reason = deployment.end_reason or "The agreement was terminated."
        deployment.end_announced_at = now
        cut_short.append(deployment)
    agreement.status = AgreementStatus.terminated
    agreement.terminated_at = now
    agreement.end_announced_at = now
    agreement.termination_reason = body.reason
    await _changed(session, agreement)
    await _audit(
        session,
        principal,
        "agreement.terminate",
        agreement,
        {"reason": body.reason, "deployments_ended": [str(d.id) for d in cut_short]},
    )
    # Each deployment the termination cut short has ended, as if ended one by one.
    await webhook_events.emit_many(
        session,
        [
            webhook_events.agreement_event_of(EventType.deployment_ended, d, agreement)
            for d in cut_short
        ],
    )
    return agreement


# Deployments ---------------------------------------------------------------------------------


async def create_deployment(
    session: AsyncSession,
    *,
    agreement_id: uuid.UUID,
    body: schemas.DeploymentCreate,
    principal: Principal,
    today: date,
) -> Deployment:
    """Record staff lent under an active agreement, within the lender's cap for the role.

    The lender's cap row is locked until commit, so concurrent requests check the cap one at a
    time and together can never exceed it.
    """
    agreement = await _load(
        session, agreement_id=agreement_id, principal=principal, lock="share", manage=True
    )
    _check_dates(body.start_date, body.end_date)
    state = state_of(agreement, today=today)
    if state != AgreementState.active:
        raise errors.AgreementNotActive(
            f"Deployments need an active agreement; this one is {state.value}.",
            agreement_status=state.value,
        )
    if body.from_organisation_id == body.to_organisation_id:
        raise errors.DeploymentSameOrganisation(
            "A deployment moves staff between two different parties.", field="to_organisation_id"
        )
    party_ids = {party.organisation_id for party in agreement.parties}
    problems = FieldErrors()
    for field, organisation_id in (
        ("from_organisation_id", body.from_organisation_id),
        ("to_organisation_id", body.to_organisation_id),
    ):
        if organisation_id not in party_ids:
            problems.add(errors.OrganisationNotParty, field, "not a party to the agreement")
    problems.raise_if_any("Both organisations must be parties to the agreement.")
    if body.start_date < agreement.start_date or body.end_date > agreement.end_date:
        raise errors.DeploymentOutsideAgreementDates(
            "The deployment must fall within the agreement's dates "
            f"({agreement.start_date.isoformat()} to {agreement.end_date.isoformat()}).",
            field="start_date" if body.start_date < agreement.start_date else "end_date",
            agreement_start_date=agreement.start_date.isoformat(),
            agreement_end_date=agreement.end_date.isoformat(),
        )
    cap = await repo.lock_scope(
        session,
        agreement_id=agreement.id,
        role_code=body.role_code,
        lending_organisation_id=body.from_organisation_id,
    )
    if cap is None:
        raise errors.RoleNotInScope(
            "The role is not in the agreement's scope for the lending party.", field="role_code"
        )
    overlapping = await repo.lender_deployments(
        session,
        agreement_id=agreement.id,
        role_code=body.role_code,
        lending_organisation_id=body.from_organisation_id,
        overlapping=(body.start_date, body.end_date),
    )
    deployed = peak_fte(_spans(overlapping), first=body.start_date, last=body.end_date)
    if deployed + body.fte > cap.fte_cap + FTE_TOLERANCE:
        raise errors.CapExceeded(
            f"The lender's cap for {body.role_code} is {cap.fte_cap:g} FTE; "
            f"{deployed:g} FTE is already deployed over those dates.",
            fte_cap=cap.fte_cap,
            deployed_fte=round(deployed, 6),
            requested_fte=body.fte,
            available_fte=round(max(cap.fte_cap - deployed, 0.0), 6),
        )
    deployment = await repo.add_deployment(
        session,
        Deployment(
            agreement_id=agreement.id,
            from_organisation_id=body.from_organisation_id,
            to_organisation_id=body.to_organisation_id,
            role_code=body.role_code,
            fte=body.fte,
            start_date=body.start_date,
            end_date=body.end_date,
            reason=body.reason,
            status=DeploymentStatus.active,
        ),
    )
    await _audit(
        session,
        principal,
        "deployment.create",
        deployment,
        {"agreement_id": str(agreement.id), **body.model_dump(mode="json")},
        agreement=agreement,
    )
    return deployment


async def _load_deployment(
    session: AsyncSession,
    *,
    agreement_id: uuid.UUID,
    deployment_id: uuid.UUID,
    lock: bool = False,
) -> Deployment:
    deployment = await repo.get_deployment(
        session, agreement_id=agreement_id, deployment_id=deployment_id, lock=lock
    )
    if deployment is None:
        raise errors.DeploymentNotFound("No such deployment under this agreement.")
    return deployment


async def get_deployment(
    session: AsyncSession,
    *,
    agreement_id: uuid.UUID,
    deployment_id: uuid.UUID,
    principal: Principal,
) -> Deployment:
    await _load(session, agreement_id=agreement_id, principal=principal)
    return await _load_deployment(session, agreement_id=agreement_id, deployment_id=deployment_id)


async def list_deployments(
    session: AsyncSession,
    *,
    agreement_id: uuid.UUID,
    principal: Principal,
    today: date,
    page: PageParams,
    organisation_id: uuid.UUID | None = None,
    role_code: str | None = None,
    status: DeploymentStatus | None = None,
    active_on: date | None = None,
) -> Page[schemas.Deployment]:
    await _load(session, agreement_id=agreement_id, principal=principal)
    rows, total = await repo.list_deployments(
        session,
        agreement_id=agreement_id,
        today=today,
        organisation_id=organisation_id,
        role_code=role_code,
        status=status,
        active_on=active_on,
        page=page,
    )
    return page.result([deployment_to_schema(row, today=today) for row in rows], total)


async def end_deployment(
    session: AsyncSession,
    *,
    agreement_id: uuid.UUID,
    deployment_id: uuid.UUID,
    body: schemas.DeploymentEnd,
    principal: Principal,
) -> Deployment:
    """End a deployment before its planned end date (its last day is `ended_on`)."""
    agreement = await _load(
        session, agreement_id=agreement_id, principal=principal, lock="share", manage=True
    )
    deployment = await _load_deployment(
        session, agreement_id=agreement_id, deployment_id=deployment_id, lock=True
    )
    # Ended early, or past its end date and announced as ended: either way there is no second end.
    if deployment.status == DeploymentStatus.ended or deployment.end_announced_at is not None:
        raise errors.DeploymentAlreadyEnded("The deployment has already ended.")
    if body.ended_on >= deployment.end_date:
        raise errors.EndedOnNotEarly(
            "An early end must come before the planned end date.", field="ended_on"
        )
    if body.ended_on < deployment.start_date - timedelta(days=1):
        raise errors.EndedOnBeforeStart(
            "The deployment cannot end before it starts.", field="ended_on"
        )
    deployment.status = DeploymentStatus.ended
    deployment.ended_early_on = body.ended_on
    deployment.ended_at = deployment.end_announced_at = utcnow()
    deployment.end_reason = body.reason
    await session.flush()
    await _audit(
        session,
        principal,
        "deployment.end",
        deployment,
        {
            "agreement_id": str(agreement_id),
            "ended_on": body.ended_on.isoformat(),
            "reason": body.reason,
        },
        agreement=agreement,
    )
    return deployment
