"""Errors of API keys and authentication."""

from __future__ import annotations

from shared.errors import Conflict, Forbidden, NotFound, Unauthorized, Unprocessable


class MissingCredentials(Unauthorized):
    """The request has no API key."""

    code = "missing_credentials"
    fix = "Send 'Authorization: Bearer <key>'."


class KeyRevoked(Unauthorized):
    """The API key has been revoked."""

    code = "key_revoked"
    fix = "Ask an administrator for a new key."


class KeyOutOfScope(Forbidden):
    """An ICS admin key may only manage keys bound to its own ICS."""

    code = "key_out_of_scope"
    fix = "Bind the new key to your ICS or one of its organisations."


class KeyNotFound(NotFound):
    """No API key with this id is visible to the key."""

    code = "key_not_found"
    fix = "GET /v1/keys lists the keys you may manage."


class KeyAlreadyRevoked(Conflict):
    """The API key is already revoked."""

    code = "key_already_revoked"
    fix = "Nothing to do."


class KeyBindingConflict(Unprocessable):
    """A key is bound to an organisation or to an ICS, not both."""

    code = "key_binding_conflict"
    fix = "Send organisation_id or ics_code, not both."


class SubmitKeyNeedsOrganisation(Unprocessable):
    """A submit key must be bound to one organisation."""

    code = "submit_key_needs_organisation"
    fix = "Send organisation_id."


class AdminKeyBinding(Unprocessable):
    """An admin key is global or bound to an ICS, never to one organisation."""

    code = "admin_key_binding"
    fix = "Leave organisation_id out; send ics_code for an ICS admin."
