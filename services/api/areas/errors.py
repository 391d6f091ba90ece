"""Errors of areas and their population."""

from __future__ import annotations

from shared.errors import NotFound, Unprocessable


class AreaNotFound(NotFound):
    """No area with this code is visible to the key."""

    code = "area_not_found"
    fix = "Use an ONS code from GET /v1/areas (E92 England, E54 ICBs, E06-E10 areas)."


class PopulationNotFound(NotFound):
    """The population dataset has no figures for this area."""

    code = "population_not_found"
    fix = "Choose another dataset or area; GET /v1/population/datasets lists the datasets."


class UnknownIcs(Unprocessable):
    """The code given as an ICS is not an ICB's code."""

    code = "unknown_ics"
    fix = "Send an ICB's E54 code (GET /v1/areas?type=icb lists them)."


class AreaTypeNotSupported(Unprocessable):
    """This figure is not available for this kind of area."""

    code = "area_type_not_supported"
    fix = "Ask for a local authority district, an ICB or England."


class UnknownIndicator(Unprocessable):
    """No need indicator by this name; `known_indicators` lists those there are."""

    code = "unknown_indicator"
    fix = "Send one of the indicators listed in known_indicators."
