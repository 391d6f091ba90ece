"""Supply: the cohort stock-flow model, hand-computed and against the band-by-band reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.projector.model.inputs import FloatArray, ProjectionInputs
from services.projector.model.params import (
    ByRole,
    CrossSectorFlow,
    Intake,
    ScenarioParameters,
)
from services.projector.model.supply import (
    CohortKernel,
    cohort_reference,
    prepare_supply,
    project_supply,
)
from shared.schemas.scenario_parameters import (
    DEFAULT_INTERNATIONAL_AGE_MIX,
    DEFAULT_JOINER_AGE_MIX,
    DEFAULT_NEWLY_QUALIFIED_AGE_MIX,
    DEFAULT_RETIREMENT_HAZARD,
)
from tests.projector.model.factories import cell_inputs, flat_population

JOINER_MIX = np.array(DEFAULT_JOINER_AGE_MIX)


def single_cell(
    by_age: list[float],
    *,
    years: int = 3,
    fte_in_post: float | None = None,
    starters: float = 0.0,
    leavers: float = 0.0,
    sickness_days: float = 0.0,
    agency_fte: float = 0.0,
) -> ProjectionInputs:
    headcount = sum(by_age)
    return cell_inputs(
        orgs=[0],
        roles=[0],
        areas=[0],
        role_codes=["nurse"],
        population=flat_population(1, years),
        headcount_by_age=np.array([by_age]),
        fte_in_post=[headcount if fte_in_post is None else fte_in_post],
        starters_12m=[starters],
        leavers_12m=[leavers],
        sickness_days_12m=[sickness_days],
        agency_fte=[agency_fte],
    )


def test_cohort_by_hand() -> None:
    # 100 staff aged 25-34, 80 FTE in post (0.8 FTE a head), 10 leavers (no retirement at
    # 25-34, so the non-retirement rate is 10%), 12 starters a year, 5% of days lost to sickness
    # (1,125 days / (100 x 225)): effective FTE per head 0.8 x 0.95 = 0.76.
    inputs = single_cell(
        [0, 100, 0, 0, 0, 0],
        fte_in_post=80.0,
        starters=12.0,
        leavers=10.0,
        sickness_days=1125.0,
    )
    headcount, effective_fte = project_supply(inputs, ScenarioParameters())
    # Year 1: 90 stay; 1/10 of them age into 35-44: [0, 81, 9, 0, 0, 0]; 12 join with the
    # joiner mix [3, 4.2, 2.4, 1.56, 0.72, 0.12]: 102 in all.
    # Year 2: stock [3, 85.2, 11.4, 1.56, 0.72, 0.12] x 0.9 = [2.7, 76.68, 10.26, 1.404,
    # 0.648, 0.108]; retirement (0.5% at 45-54, 7% at 55-64, 25% at 65+) leaves
    # [2.7, 76.68, 10.26, 1.39698, 0.60264, 0.081] = 91.72062; ageing keeps the total; +12.
    np.testing.assert_allclose(headcount[:, 0], [100.0, 102.0, 103.72062], rtol=1e-12)
    np.testing.assert_allclose(effective_fte[:, 0], headcount[:, 0] * 0.76, rtol=1e-12)
    assert effective_fte[0, 0] == pytest.approx(76.0)


def test_retirements_are_not_counted_twice() -> None:
    # 100 staff aged 55-64, 10 leavers in the return. The 7% retirement hazard explains 7 of
    # them; the non-retirement rate r solves (1 - r)(1 - 0.07) = 0.9, so year 1 keeps exactly
    # 90 (no joiners): the return's leaving rate, not 10% + 7%.
    inputs = single_cell([0, 0, 0, 0, 100, 0], leavers=10.0)
    plan = prepare_supply(inputs, ScenarioParameters())
    assert plan.nonretirement_leaving_rate[0] == pytest.approx(0.03 / 0.93)
    headcount, _ = project_supply(inputs, ScenarioParameters())
    assert headcount[1, 0] == pytest.approx(90.0)


def test_levers_add_joiners() -> None:
    # 10 staff under 25 with no leavers; 4 starters a year raised by 50% -> 6 a year.
    # Half of 2 agency FTE converts over the 2-year horizon at 0.5 FTE a head: 1 FTE = 2 heads,
    # 1 a year. International: 3 a year in year 2 only.
    inputs = single_cell([10, 0, 0, 0, 0, 0], fte_in_post=5.0, starters=4.0, agency_fte=2.0)
    params = ScenarioParameters(
        recruitment_change=ByRole(0.5),
        agency_conversion=ByRole(0.5),
        international_recruitment=(Intake("nurse", 3.0, first_year=2, last_year=2),),
    )
    headcount, _ = project_supply(inputs, params)
    # Year 1: 10 + 6 + 1. Year 2: nobody leaves, but the year-1 joiners aged 45+ retire:
    # 7 x (0.13 x 0.005 + 0.06 x 0.07 + 0.01 x 0.25) = 0.05145; then 6 + 1 + 3 join.
    np.testing.assert_allclose(headcount[:, 0], [10.0, 17.0, 26.94855], rtol=1e-12)


def test_training_pipeline_joins_from_its_first_year() -> None:
    inputs = single_cell([0, 10, 0, 0, 0, 0], years=4)
    params = ScenarioParameters(training_pipeline=(Intake("nurse", 5.0, first_year=2),))
    headcount, _ = project_supply(inputs, params)
    # Year 3: 45-54 holds 0.1 of the staff (1/10 of the 1 who reached 35-44 in year 1) and
    # 0.1 newly qualified (2% of 5); 0.5% of those 0.2 retire: 0.001.
    np.testing.assert_allclose(headcount[:, 0], [10.0, 10.0, 15.0, 19.999], rtol=1e-12)


def test_intakes_are_per_footprint_and_shared_by_headcount() -> None:
    # Two footprints; footprint 0 has nurse cells of 30 and 10 heads, footprint 1 one of 0.
    by_age = np.zeros((3, 6))
    by_age[:, 0] = [30.0, 10.0, 0.0]
    inputs = cell_inputs(
        orgs=[0, 1, 2],
        roles=[0, 0, 0],
        areas=[0, 0, 1],
        role_codes=["nurse"],
        population=flat_population(2, 2),
        headcount_by_age=by_age,
        vacant_fte=[0.0, 0.0, 2.0],
        footprints=[0, 0, 1],
    )
    params = ScenarioParameters(international_recruitment=(Intake("nurse", 8.0),))
    headcount, _ = project_supply(inputs, params)
    np.testing.assert_allclose(headcount[1], [36.0, 12.0, 8.0])


def test_cross_sector_flow_by_hand() -> None:
    # Footprint with care workers (100 heads aged 25-34, 20 leavers) and nurses (50 heads,
    # no leavers): 25% of care worker leavers join the nurses.
    by_age = np.zeros((2, 6))
    by_age[:, 1] = [100.0, 50.0]
    inputs = cell_inputs(
        orgs=[0, 1],
        roles=[0, 1],
        areas=[0, 0],
        role_codes=["care_worker", "nurse"],
        population=flat_population(1, 3),
        headcount_by_age=by_age,
        leavers_12m=[20.0, 0.0],
    )
    params = ScenarioParameters(cross_sector_flows=(CrossSectorFlow("care_worker", "nurse", 0.25),))
    headcount, _ = project_supply(inputs, params)
    # Year 1: 20 care workers leave, 5 join the nurses: 80 and 55.
    # Year 2: 16 leave, 4 join: 64; of the 5 joiners (joiner age mix; nurses do not leave
    # but joiners aged 45+ retire) 5 x (1 - 0.13 x 0.005 - 0.06 x 0.07 - 0.01 x 0.25)
    # = 4.96325 stay.
    np.testing.assert_allclose(headcount[1], [80.0, 55.0])
    assert headcount[2, 0] == pytest.approx(64.0)
    assert headcount[2, 1] == pytest.approx(50.0 + 4.96325 + 4.0)


def _reference_headcount(inputs: ProjectionInputs, params: ScenarioParameters) -> FloatArray:
    """Band-by-band model with the same joiners, for comparison with the fast path."""
    plan = prepare_supply(inputs, params)
    horizon = inputs.horizon_years
    joiners = np.zeros((horizon, inputs.n_cells, 6))
    starters = inputs.starters_12m * (1 + params.recruitment_change.default)
    agency = params.agency_conversion.default * inputs.agency / horizon / plan.fte_per_head
    joiners += ((starters + agency)[:, None] * JOINER_MIX)[None]
    for intakes, mix in (
        (params.international_recruitment, DEFAULT_INTERNATIONAL_AGE_MIX),
        (params.training_pipeline, DEFAULT_NEWLY_QUALIFIED_AGE_MIX),
    ):
        for intake in intakes:
            last = horizon if intake.last_year is None else min(intake.last_year, horizon)
            # One cell per footprint here, so the cell gets the whole intake.
            for year in range(intake.first_year, last + 1):
                joiners[year - 1] += intake.headcount_per_year * np.array(mix)
    hazard = np.broadcast_to(np.array(DEFAULT_RETIREMENT_HAZARD), (inputs.n_cells, 6))
    persons = cohort_reference(
        plan.headcount_by_age, plan.nonretirement_leaving_rate, hazard, joiners
    )
    result: FloatArray = persons.sum(axis=2)
    return result


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    years=st.integers(2, 22),
    recruitment=st.floats(-1.0, 2.0),
    conversion=st.floats(0.0, 1.0),
    intake=st.floats(0.0, 50.0),
    first_year=st.integers(1, 25),
    last_offset=st.one_of(st.none(), st.integers(0, 10)),
)
def test_fast_path_matches_band_model_and_is_never_negative(
    seed: int,
    years: int,
    recruitment: float,
    conversion: float,
    intake: float,
    first_year: int,
    last_offset: int | None,
) -> None:
    rng = np.random.default_rng(seed)
    n_cells = 4
    by_age = rng.uniform(0, 30, (n_cells, 6)) * (rng.random((n_cells, 1)) < 0.8)
    headcount = by_age.sum(axis=1)
    inputs = cell_inputs(
        orgs=list(range(n_cells)),
        roles=[0] * n_cells,
        areas=[0] * n_cells,
        role_codes=["nurse"],
        population=flat_population(1, years),
        headcount_by_age=by_age,
        fte_in_post=(headcount * rng.uniform(0.3, 1.2, n_cells)).tolist(),
        starters_12m=(headcount * rng.uniform(0, 0.6, n_cells)).tolist(),
        leavers_12m=(headcount * rng.uniform(0, 1.0, n_cells)).tolist(),
        sickness_days_12m=(headcount * rng.uniform(0, 300, n_cells)).tolist(),
        agency_fte=rng.uniform(0, 10, n_cells).tolist(),
        footprints=list(range(n_cells)),
    )
    last_year = None if last_offset is None else first_year + last_offset
    params = ScenarioParameters(
        recruitment_change=ByRole(recruitment),
        agency_conversion=ByRole(conversion),
        international_recruitment=(Intake("nurse", intake, first_year, last_year),),
        training_pipeline=(Intake("nurse", intake / 2, first_year),),
    )
    headcount_fast, effective = project_supply(inputs, params)
    assert np.all(headcount_fast >= 0.0)
    assert np.all(effective >= 0.0)
    np.testing.assert_allclose(
        headcount_fast, _reference_headcount(inputs, params), rtol=1e-9, atol=1e-9
    )


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    share=st.floats(0.0, 1.0),
    multiplier=st.floats(0.0, 5.0),
)
def test_supply_never_negative_with_flows(seed: int, share: float, multiplier: float) -> None:
    rng = np.random.default_rng(seed)
    n_cells = 6
    by_age = rng.uniform(0, 20, (n_cells, 6))
    inputs = cell_inputs(
        orgs=[0, 0, 1, 1, 2, 2],
        roles=[0, 1, 0, 1, 0, 1],
        areas=[0] * n_cells,
        role_codes=["a", "b"],
        population=flat_population(1, 8),
        headcount_by_age=by_age,
        leavers_12m=(by_age.sum(1) * rng.uniform(0, 1.5, n_cells)).tolist(),
        starters_12m=rng.uniform(0, 5, n_cells).tolist(),
    )
    params = ScenarioParameters(
        cross_sector_flows=(CrossSectorFlow("a", "b", share), CrossSectorFlow("b", "a", share)),
        international_recruitment=(Intake("a", 3.0, 1, 3),),
    )
    plan = prepare_supply(inputs, params)
    kernel = CohortKernel(plan, np.array([1.0, multiplier]), np.array([multiplier, 1.0]))
    row = np.empty((2, n_cells))
    for year in range(8):
        kernel.headcount(year, row)
        assert np.all(row >= 0.0)
        kernel.advance(year, row)
