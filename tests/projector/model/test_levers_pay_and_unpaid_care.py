"""The pay-gap and unpaid-care levers: off by default, exact by hand when on."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from services.domain.insights.unpaid_care import paid_fte_for_shift, unpaid_care_hours
from services.projector.model.demand import project_demand_fte
from services.projector.model.inputs import ProjectionInputs
from services.projector.model.params import (
    CrossSectorFlow,
    PayGapChange,
    ScenarioParameters,
    UnpaidCareShift,
)
from services.projector.model.supply import project_supply
from tests.projector.model.factories import cell_inputs, flat_population


def two_roles(unpaid_hours: list[float] | None = None) -> ProjectionInputs:
    """Two areas; care workers (100 heads aged 25-34, 20 leavers) and NHS healthcare support
    workers (50 heads, none leaving) in each; a flat population."""
    by_age = np.zeros((4, 6))
    by_age[:, 1] = [100.0, 50.0, 100.0, 50.0]
    inputs = cell_inputs(
        orgs=[0, 1, 2, 3],
        roles=[0, 1, 0, 1],
        areas=[0, 0, 1, 1],
        role_codes=["care-worker", "healthcare-support-worker"],
        population=flat_population(2, 4),
        headcount_by_age=by_age,
        leavers_12m=[20.0, 0.0, 20.0, 0.0],
        vacant_fte=[10.0, 0.0, 0.0, 0.0],
    )
    if unpaid_hours is not None:
        inputs = dataclasses.replace(
            inputs, unpaid_care_hours_per_week=np.asarray(unpaid_hours, dtype=np.float64)
        )
    return inputs


FLOW = CrossSectorFlow("care-worker", "healthcare-support-worker", 0.25)


def test_pay_gap_lever_is_off_by_default_and_without_elasticity() -> None:
    inputs = two_roles()
    base = ScenarioParameters(cross_sector_flows=(FLOW,))
    change = PayGapChange("healthcare-support-worker", "care-worker", -0.62)
    no_elasticity = dataclasses.replace(base, pay_gap_changes=(change,))
    np.testing.assert_array_equal(
        project_supply(inputs, base)[0], project_supply(inputs, no_elasticity)[0]
    )


def test_narrower_pay_gap_keeps_care_leavers_in_care_by_hand() -> None:
    inputs = two_roles()
    change = PayGapChange("healthcare-support-worker", "care-worker", -0.5)
    params = ScenarioParameters(
        cross_sector_flows=(FLOW,), pay_gap_changes=(change,), pay_gap_flow_elasticity=0.4
    )
    # Multiplier 1 + 0.4 x -0.5 = 0.8: 20% of the flow's 25% stays, so the care worker leaving
    # rate 0.2 becomes 0.2 x (1 - 0.25 x 0.2) = 0.19, and the flow takes 0.25 x 0.8 = 0.2 of
    # the remaining leavers.
    assert params.flow_multiplier("care-worker", "healthcare-support-worker") == pytest.approx(0.8)
    headcount, _ = project_supply(inputs, params)
    assert headcount[1, 0] == pytest.approx(100.0 - 19.0)
    assert headcount[1, 1] == pytest.approx(50.0 + 19.0 * 0.2)
    baseline, _ = project_supply(inputs, ScenarioParameters(cross_sector_flows=(FLOW,)))
    assert headcount[-1, 0] > baseline[-1, 0]
    assert headcount[-1, 1] < baseline[-1, 1]


def test_unpaid_care_lever_off_gives_exactly_the_baseline() -> None:
    inputs = two_roles([3750.0, 7500.0])
    baseline = project_demand_fte(inputs, ScenarioParameters())
    zero = ScenarioParameters(unpaid_care_shift=UnpaidCareShift(0.0, ("care-worker",), 0))
    np.testing.assert_array_equal(project_demand_fte(inputs, zero), baseline)


def test_unpaid_care_shift_adds_the_documented_fte() -> None:
    inputs = two_roles([3750.0, 7500.0])
    baseline = project_demand_fte(inputs, ScenarioParameters())
    params = ScenarioParameters(unpaid_care_shift=UnpaidCareShift(0.1, ("care-worker",), 2))
    demand = project_demand_fte(inputs, params)
    extra = demand - baseline
    # 10% of 3,750 and 7,500 hours a week at 37.5 hours per FTE: 10 and 20 FTE, on the care
    # workers only, half in year 1 (phased in over 2 years) and all from year 2.
    assert paid_fte_for_shift(3750.0, 0.1) == pytest.approx(10.0)
    np.testing.assert_allclose(extra[0], 0.0)
    np.testing.assert_allclose(extra[1], [5.0, 0.0, 10.0, 0.0])
    np.testing.assert_allclose(extra[3], [10.0, 0.0, 20.0, 0.0])
    back = ScenarioParameters(unpaid_care_shift=UnpaidCareShift(-1.0, ("care-worker",), 0))
    # Giving hours back never takes demand below zero.
    assert (project_demand_fte(inputs, back) >= 0.0).all()


def test_unpaid_care_hours_come_from_the_census_table() -> None:
    # Hartlepool (Census 2021 TS039): 2,410 x 5 + 1,250 x 15 + 1,062 x 27 + 1,450 x 42 +
    # 3,382 x 65 hours a week.
    hours = unpaid_care_hours(["E06000001", "E99999999"])
    assert hours[0] == pytest.approx(2410 * 5 + 1250 * 15 + 1062 * 27 + 1450 * 42 + 3382 * 65)
    assert hours[1] == 0.0
