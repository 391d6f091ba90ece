"""Errors of staff-sharing agreements and their deployments."""

from __future__ import annotations

from shared.errors import Conflict, Forbidden, NotFound, Unprocessable


class AgreementNotFound(NotFound):
    """No agreement with this id is visible to the key."""

    code = "agreement_not_found"
    fix = "Check the id; a key sees its ICS's agreements and those its organisation is party to."


class DeploymentNotFound(NotFound):
    """No deployment with this id exists under the agreement."""

    code = "deployment_not_found"
    fix = "List the agreement's deployments to find the id."


class IcsOutOfScope(Forbidden):
    """An ICS admin key may only create agreements in its own ICS."""

    code = "ics_out_of_scope"
    fix = "Leave ics_code out (it defaults to the key's ICS) or use a global admin key."


class NotYourOrganisation(Forbidden):
    """A party's key may only sign for its own organisation."""

    code = "not_your_organisation"
    fix = "Sign with the key of the organisation named, or leave organisation_id out."


class AgreementNotActive(Conflict):
    """The agreement is not active (still a draft or awaiting signatures)."""

    code = "agreement_not_active"
    fix = "Have every party sign and activate the agreement first."


class AgreementAlreadyActive(Conflict):
    """The agreement is already active."""

    code = "agreement_already_active"
    fix = "Nothing to do; read the agreement for its current state."


class AgreementSuspended(Conflict):
    """The agreement is suspended."""

    code = "agreement_suspended"
    fix = "Resume the agreement first."


class AgreementExpired(Conflict):
    """The agreement's end date has passed."""

    code = "agreement_expired"
    fix = "Create a new agreement, or extend the end date while it is still active."


class AgreementTerminated(Conflict):
    """The agreement was terminated; it cannot change any more."""

    code = "agreement_terminated"
    fix = "Create a new agreement."


class AgreementNotFullySigned(Conflict):
    """Every party must sign before the agreement can be activated."""

    code = "agreement_not_fully_signed"
    fix = "Collect the signatures of the parties in unsigned_organisation_ids."


class AgreementNotStarted(Conflict):
    """The agreement's start date has not come yet."""

    code = "agreement_not_started"
    fix = "Activate it on or after start_date; signing on that day activates it too."


class PartyAlreadySigned(Conflict):
    """This party has already signed the current terms."""

    code = "party_already_signed"
    fix = "Nothing to do; a change of terms asks for signatures again."


class TermsConflictWithDeployments(Conflict):
    """The new terms would break current deployments; `deployments` lists them."""

    code = "terms_conflict_with_deployments"
    fix = "End the listed deployments first, or choose terms that still cover them."


class CapExceeded(Conflict):
    """The deployment would take the lender above its FTE cap for the role."""

    code = "cap_exceeded"
    fix = "Deploy at most available_fte, or raise the cap by changing the agreement's scope."


class DeploymentAlreadyEnded(Conflict):
    """The deployment has already ended."""

    code = "deployment_already_ended"
    fix = "Nothing to do."


class InvalidDateRange(Unprocessable):
    """The end date is before the start date."""

    code = "invalid_date_range"
    fix = "Send an end_date on or after start_date."


class IcsRequired(Unprocessable):
    """A global admin must name the ICS the agreement belongs to."""

    code = "ics_required"
    fix = "Send ics_code (the ICB's E54 code)."


class IcsNotFound(Unprocessable):
    """ics_code is not the code of an ICB."""

    code = "ics_not_found"
    fix = "Send an ICB's E54 code (GET /v1/areas?type=icb lists them)."


class TooFewParties(Unprocessable):
    """An agreement needs at least two different parties."""

    code = "too_few_parties"
    fix = "List at least two different organisations in parties."


class DuplicateParty(Unprocessable):
    """The same organisation is listed twice in parties."""

    code = "duplicate_party"
    fix = "List each organisation once."


class PartyOutsideIcs(Unprocessable):
    """A party is not in the agreement's ICS."""

    code = "party_outside_ics"
    fix = "Every party must be registered in the agreement's ICS."


class ScopeRequired(Unprocessable):
    """The agreement's scope names no role and cap."""

    code = "scope_required"
    fix = "Add at least one {role_code, lending_organisation_id, fte_cap} to scope."


class LenderNotParty(Unprocessable):
    """A scope entry's lending organisation is not a party to the agreement."""

    code = "lender_not_party"
    fix = "Lend only from organisations listed in parties."


class DuplicateScope(Unprocessable):
    """The same role and lender appear twice in the scope."""

    code = "duplicate_scope"
    fix = "List each role and lender once, with one cap."


class OrganisationRequired(Unprocessable):
    """An admin signing on a party's behalf must name the party."""

    code = "organisation_required"
    fix = "Send organisation_id."


class OrganisationNotParty(Unprocessable):
    """The organisation is not a party to the agreement."""

    code = "organisation_not_party"
    fix = "Use one of the agreement's parties."


class DeploymentSameOrganisation(Unprocessable):
    """A deployment moves staff between two different parties."""

    code = "deployment_same_organisation"
    fix = "Send different from_organisation_id and to_organisation_id."


class DeploymentOutsideAgreementDates(Unprocessable):
    """The deployment does not fall within the agreement's dates."""

    code = "deployment_outside_agreement_dates"
    fix = "Keep start_date and end_date within agreement_start_date and agreement_end_date."


class RoleNotInScope(Unprocessable):
    """The role is not in the agreement's scope for the lending party."""

    code = "role_not_in_scope"
    fix = "Deploy a role the lender's scope covers, or add it to the scope."


class EndedOnNotEarly(Unprocessable):
    """An early end must come before the planned end date."""

    code = "ended_on_not_early"
    fix = "Send an ended_on before the deployment's end_date."


class EndedOnBeforeStart(Unprocessable):
    """A deployment cannot end before the day before it starts (a withdrawal)."""

    code = "ended_on_before_start"
    fix = "Send an ended_on no earlier than the day before start_date."


class AgreementAlreadySuspended(Conflict):
    """The agreement is already suspended."""

    code = "agreement_already_suspended"
    fix = "Nothing to do; resume it when deployments may start again."


class AgreementNotSuspended(Conflict):
    """Only a suspended agreement can be resumed."""

    code = "agreement_not_suspended"
    fix = "Read the agreement's state; nothing to resume."
