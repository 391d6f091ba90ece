"""Scenario parameters: defaults are off, dict round trip, and validation messages."""

from __future__ import annotations

from typing import Any

import pytest

from services.projector.model.params import (
    ByRole,
    CrossSectorFlow,
    CustomDriverWeights,
    Intake,
    ScenarioParameters,
    Substitution,
    validate_parameters,
)
from shared.schemas.scenario_parameters import (
    BASELINE_PARAMETERS,
    ParameterError,
    ScenarioParametersDocument,
    parse_parameters,
)


def full_scenario() -> ScenarioParameters:
    return ScenarioParameters(
        default_demand_driver="population_75_plus",
        demand_driver_by_role={"nurse": "dementia_65_plus"},
        custom_driver_weights={"midwife": CustomDriverWeights((1.0,) * 19, (0.0,) * 19)},
        productivity_growth_per_year=ByRole(0.01, {"gp": 0.02}),
        prevention_reduction=ByRole(0.05),
        substitutions=(Substitution("gp", "pharmacist", 0.1, 0.8, 3),),
        recruitment_change=ByRole(0.1),
        international_recruitment=(Intake("nurse", 20.0, 1, 5),),
        training_pipeline=(Intake("nurse", 10.0, 3),),
        cross_sector_flows=(CrossSectorFlow("care_worker", "hca", 0.2),),
        agency_conversion=ByRole(0.5),
    )


def test_defaults_are_valid_and_off() -> None:
    params = ScenarioParameters()
    assert validate_parameters(params) == []
    for lever in (
        params.productivity_growth_per_year,
        params.non_demographic_growth_per_year,
        params.prevention_reduction,
        params.recruitment_change,
        params.agency_conversion,
    ):
        assert lever.is_off()
    assert params.substitutions == ()
    assert params.cross_sector_flows == ()


def test_round_trip_through_dict() -> None:
    params = full_scenario()
    assert validate_parameters(params) == []
    again = ScenarioParameters.from_dict(params.to_dict())
    assert again.to_dict() == params.to_dict()
    assert again.driver_for("midwife") == "custom"
    assert again.driver_for("nurse") == "dementia_65_plus"
    assert again.driver_for("other") == "population_75_plus"


def test_from_dict_takes_defaults_and_plain_numbers() -> None:
    params = ScenarioParameters.from_dict({"recruitment_change": 0.2, "uncertainty": {}})
    assert params.recruitment_change == ByRole(0.2)
    assert params.retirement_hazard == ScenarioParameters().retirement_hazard


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"unknown": 1}, "unknown"),
        ({"working_days_per_year": "many"}, "working_days_per_year"),
        (
            {"substitutions": [{"from_role": "a", "to_role": "b", "share": "x"}]},
            "substitutions[0].share",
        ),
        ({"recruitment_change": {"by_role": {"nurse": None}}}, "recruitment_change.by_role.nurse"),
        ({"uncertainty": {"sd": 1}}, "uncertainty.sd"),
        ({"retirement_hazard": [0.1, True]}, "retirement_hazard[1]"),
    ],
)
def test_from_dict_reports_malformed_fields(data: dict[str, Any], path: str) -> None:
    with pytest.raises(ParameterError) as error:
        ScenarioParameters.from_dict(data)
    assert path in {p.path for p in error.value.problems}


@pytest.mark.parametrize(
    ("params", "path"),
    [
        (ScenarioParameters(default_demand_driver="weather"), "default_demand_driver"),
        (ScenarioParameters(demand_driver_by_role={"gp": "custom"}), "demand_driver_by_role.gp"),
        (
            ScenarioParameters(prevention_reduction=ByRole(0.0, {"gp": 1.5})),
            "prevention_reduction.by_role.gp",
        ),
        (ScenarioParameters(retirement_hazard=(0, 0, 0, 0, 0, -0.1)), "retirement_hazard[5]"),
        (ScenarioParameters(joiner_age_mix=(0.5, 0.5, 0.5, 0, 0, 0)), "joiner_age_mix"),
        (ScenarioParameters(substitutions=(Substitution("a", "a", 0.1),)), "substitutions[0]"),
        (
            ScenarioParameters(
                substitutions=(Substitution("a", "b", 0.6), Substitution("a", "c", 0.6))
            ),
            "substitutions",
        ),
        (
            ScenarioParameters(international_recruitment=(Intake("a", -1.0),)),
            "international_recruitment[0].headcount_per_year",
        ),
        (
            ScenarioParameters(training_pipeline=(Intake("a", 1.0, 3, 2),)),
            "training_pipeline[0].last_year",
        ),
        (
            ScenarioParameters(cross_sector_flows=(CrossSectorFlow("a", "b", 2.0),)),
            "cross_sector_flows[0].share_of_leavers",
        ),
        (ScenarioParameters(working_days_per_year=0.0), "working_days_per_year"),
        (ScenarioParameters(agency_conversion=ByRole(-0.1)), "agency_conversion.default"),
    ],
)
def test_validation_locates_each_problem(params: ScenarioParameters, path: str) -> None:
    assert path in {p.path for p in validate_parameters(params)}


def test_unknown_role_codes_reported_against_the_catalogue() -> None:
    problems = validate_parameters(full_scenario(), known_role_codes=["nurse", "gp", "hca"])
    paths = {p.path for p in problems}
    assert "substitutions[0].to_role" in paths  # pharmacist
    assert "cross_sector_flows[0].from_role" in paths  # care_worker
    assert "custom_driver_weights.midwife" in paths


def test_the_contract_and_the_dataclasses_agree_on_the_baseline() -> None:
    assert ScenarioParameters.from_dict({}) == ScenarioParameters()
    assert ScenarioParameters().to_dict() == BASELINE_PARAMETERS
    assert set(ScenarioParametersDocument.model_fields) == set(BASELINE_PARAMETERS)


def test_unknown_role_codes_are_located_in_overrides_and_keys() -> None:
    with pytest.raises(ParameterError) as error:
        parse_parameters(
            {"recruitment_change": {"by_role": {"astronaut": 0.1}}, "joiner_age_mix": [1] * 6},
            known_role_codes={"nurse"},
        )
    assert {p.path for p in error.value.problems} == {
        "recruitment_change.by_role.astronaut",
        "joiner_age_mix",
    }
