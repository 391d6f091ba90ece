"""Errors of projection runs and their results."""

from __future__ import annotations

from shared.errors import NotFound, Unprocessable


class ProjectionNotFound(NotFound):
    """No projection run with this id, or no finished run for this area, is visible."""

    code = "projection_not_found"
    fix = "Check the run id (GET /v1/projections lists runs), or request a run for the area."


class ExplanationNotFound(NotFound):
    """The run has no explanation for this area and role."""

    code = "explanation_not_found"
    fix = "Ask for an area and role the run covers."


class InvalidScope(Unprocessable):
    """A run's scope must be an ICB or England."""

    code = "invalid_scope"
    fix = "Send an ICB's E54 code or E92000001."


class NoPopulation(Unprocessable):
    """The population projections are not loaded."""

    code = "no_population"
    fix = "Load them with `oneworkforce load-reference`."


class NoReturns(Unprocessable):
    """There are no workforce returns in the run's scope."""

    code = "no_returns"
    fix = "Submit workforce returns for the scope's organisations first."


class BaseYearOutOfRange(Unprocessable):
    """base_year is outside the years of the population data."""

    code = "base_year_out_of_range"
    fix = "Choose a base_year within the population dataset's years."


class HorizonBeyondPopulation(Unprocessable):
    """The horizon reaches past the last year of the population data."""

    code = "horizon_beyond_population"
    fix = "Choose a shorter horizon (the detail gives the most allowed)."
