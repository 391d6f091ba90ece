"""Errors of scenarios."""

from __future__ import annotations

from shared.errors import Conflict, Forbidden, NotFound, Unprocessable


class ScenarioNotFound(NotFound):
    """No scenario with this name is visible to the key."""

    code = "scenario_not_found"
    fix = "GET /v1/scenarios lists the scenarios you may read."


class ScenarioOutOfScope(Forbidden):
    """The scenario belongs to another ICS."""

    code = "scenario_out_of_scope"
    fix = "ICS admin keys create and change their own ICS's scenarios only."


class ScenarioNameTaken(Conflict):
    """A scenario with this name exists where the new one would live: in the same ICS, or
    among the national scenarios (which every ICS sees, so an ICS may not take their names)."""

    code = "scenario_name_taken"
    fix = "Choose another name, or add a version to the existing scenario."


class ScenarioAmbiguous(Conflict):
    """Several ICSs have a scenario of this name, and the key sees every ICS: `ics_codes`
    lists them."""

    code = "scenario_ambiguous"
    fix = "Say which ICS's scenario you mean with ?ics_code=."


class BaselineImmutable(Conflict):
    """The baseline scenario cannot be changed."""

    code = "baseline_immutable"
    fix = "Create a scenario from the baseline and change that."


class InvalidScenario(Unprocessable):
    """The scenario's parameters break the model's rules; `errors[]` lists each one."""

    code = "invalid_scenario"
    fix = "Correct each parameter listed (GET /v1/scenarios/schema documents them)."


class UnknownScenario(Unprocessable):
    """The body names a scenario that does not exist for this scope: a run uses a national
    scenario, or one of the ICS it projects."""

    code = "unknown_scenario"
    fix = "GET /v1/scenarios lists the scenarios you may use."
