"""Errors of projection runs and their results."""

from __future__ import annotations

from services.domain.projections.errors import BaseYearOutOfRange as BaseYearOutOfRange
from services.domain.projections.errors import HorizonBeyondPopulation as HorizonBeyondPopulation
from services.domain.projections.errors import InvalidScope as InvalidScope
from services.domain.projections.errors import NoPopulation as NoPopulation
from services.domain.projections.errors import NoReturns as NoReturns
from shared.errors import Conflict, NotFound, Unprocessable


class ProjectionNotFound(NotFound):
    """No projection run with this id, or no finished run for this area, is visible."""

    code = "projection_not_found"
    fix = "Check the run id (GET /v1/projections lists runs), or request a run for the area."


class ExplanationNotFound(NotFound):
    """The run has no explanation for this area and role."""

    code = "explanation_not_found"
    fix = "Ask for an area and role the run covers."


class ExplanationByYearUnavailable(Conflict):
    """The run was computed before explanations were kept for every year."""

    code = "explanation_by_year_unavailable"
    fix = "Request the run again to explain other years or sectors."


class RunNotFinished(Conflict):
    """The run is still queued or running (or, comparing, has not succeeded), so it has no
    results to read or compare yet; the problem gives its status and progress."""

    code = "run_not_finished"
    fix = "Wait until the run's status is succeeded (poll GET /v1/projections/{id})."


class RunNotSucceeded(Conflict):
    """The run failed or was cancelled, so it has no results; the problem gives its error."""

    code = "run_not_succeeded"
    fix = "Request the run again (POST /v1/projections), after fixing what its error names."


class DrawsNotAvailable(Conflict):
    """A run was computed before draws were kept for comparison."""

    code = "draws_not_available"
    fix = "Request the run again."


class RunsNotComparable(Unprocessable):
    """Only runs of the same scope, base year and horizon can be compared."""

    code = "runs_not_comparable"
    fix = "Compare a scenario run with the baseline run of the same scope and years."


class RunsNotPaired(Unprocessable):
    """The runs' seed or iterations differ, so their draws do not pair up."""

    code = "runs_not_paired"
    fix = "Request the scenario run with the baseline's seed and iterations."


class UnknownGroup(Unprocessable):
    """The group (role or sector) is not in these runs."""

    code = "unknown_group"
    fix = "Use a role code or sector that the runs cover."


class YearOutOfRange(Unprocessable):
    """A year is outside the run's years, or the range is empty."""

    code = "year_out_of_range"
    fix = "Choose years within the run's base year and horizon, `from` before `to`."


class RoleAndSector(Unprocessable):
    """Give a role or a sector, not both."""

    code = "role_and_sector"
    fix = "Send role or sector."
