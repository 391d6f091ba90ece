"""Errors of the role catalogue."""

from __future__ import annotations

from shared.errors import Conflict, Forbidden, NotFound, Unprocessable


class RoleNotFound(NotFound):
    """No role with this code is in the catalogue."""

    code = "role_not_found"
    fix = "GET /v1/roles lists the catalogue."


class CatalogueAdminOnly(Forbidden):
    """The role catalogue is shared by every ICS; only a global admin key may change it."""

    code = "catalogue_admin_only"
    fix = "Ask a global administrator to make the change."


class RoleCodeTaken(Conflict):
    """The role code is already in use."""

    code = "role_code_taken"
    fix = "Choose another code, or update the existing role."


class RoleChangedConcurrently(Conflict):
    """Another request changed the role at the same time."""

    code = "role_changed_concurrently"
    fix = "Read the role again and retry."


class RoleInUse(Conflict):
    """The role is still used (by returns, agreements or runs); `usage` counts where."""

    code = "role_in_use"
    fix = "Remove those references first, or keep the role."


class UnknownRole(Unprocessable):
    """The body names a role code that is not in the catalogue."""

    code = "unknown_role"
    fix = "Use a code from GET /v1/roles."
