"""Errors of the track record (backtesting)."""

from __future__ import annotations

from shared.errors import Unprocessable


class NotAnIcb(Unprocessable):
    """A track record is kept for an ICB."""

    code = "not_an_icb"
    fix = "Send an ICB's E54 code (GET /v1/areas?type=icb lists them)."


class UnknownTrackRecordRole(Unprocessable):
    """A role code in `roles` is not in the catalogue."""

    code = "unknown_roles"
    fix = "Send role codes from GET /v1/roles, separated by commas."


class NoLaterReturns(Unprocessable):
    """The ICB has no returns in two years: nothing to compare a projection with."""

    code = "no_later_returns"
    fix = "Wait for (or post) returns in a later year than the earliest."


class PopulationNotLoaded(Unprocessable):
    """The population projections the baseline needs are not loaded."""

    code = "population_not_loaded"
    fix = "Load them with `oneworkforce load-reference`."
