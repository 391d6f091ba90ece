"""Errors of the organisation register."""

from __future__ import annotations

from shared.errors import Conflict, Forbidden, NotFound, Unprocessable


class OrganisationNotFound(NotFound):
    """No organisation with this id is visible to the key."""

    code = "organisation_not_found"
    fix = "Check the id; a key sees the organisations of its ICS, or its own organisation."


class OrganisationOutOfScope(Forbidden):
    """The organisation (or its new home area) is outside this key's ICS."""

    code = "organisation_out_of_scope"
    fix = "Use a key bound to the organisation's ICS, or a global admin key."


class OrganisationInUse(Conflict):
    """The organisation has workforce returns, so it cannot be deleted."""

    code = "organisation_in_use"
    fix = "Keep the organisation; set closed_on when it closes."


class OdsCodeTaken(Conflict):
    """Another organisation already has this ODS code."""

    code = "ods_code_taken"
    fix = "Check the register for the existing organisation."


class CqcLocationIdTaken(Conflict):
    """Another organisation already has this CQC location id."""

    code = "cqc_location_id_taken"
    fix = "Check the register for the existing organisation."


class UnknownLad(Unprocessable):
    """home_lad_code is not a known local authority district."""

    code = "unknown_lad"
    fix = "Send an ONS LAD code (E06, E07, E08 or E09)."


class UnknownOrganisation(Unprocessable):
    """The body names an organisation that does not exist."""

    code = "unknown_organisation"
    fix = "Use the id (or, in a CSV, the ODS code or CQC location id) of a registered organisation."


class FieldNotNullable(Unprocessable):
    """A required field was set to null."""

    code = "field_not_nullable"
    fix = "Leave the field out to keep its value, or send a value."
