"""Errors of the chart resources."""

from __future__ import annotations

from shared.errors import NotFound


class ResultsNotFound(NotFound):
    """The run has no results for this area, role and years (or none this key may read)."""

    code = "results_not_found"
    fix = "Ask for an area of the run's scope, a role it projected and years within it."
