"""Why a projection run cannot be requested: raised by the one request path that the API, the
command line and the automatic recompute share."""

from __future__ import annotations

from shared.errors import Unprocessable


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
