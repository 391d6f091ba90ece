"""Explanations between any two years add up exactly; the base-year gap is vacancies plus
sickness absence; paired comparisons of one seed share their draws."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.projector.model import compare as compare_model
from services.projector.model.engine import ProjectionOutputs
from services.projector.model.explain import EXPLAIN_COLUMNS, between, net_effects
from services.projector.model.inputs import (
    FloatArray,
    IntArray,
    ProjectionInputs,
    prevalence_sd_log,
)
from services.projector.model.params import Intake, ScenarioParameters, UncertaintyParameters
from tests.projector.model.factories import synthetic_icbs
from tests.projector.model.test_engine import LEVELS, SCENARIO, run

HORIZON_YEARS = 7  # synthetic_icbs() projects 7 years after the base


@pytest.fixture(scope="module")
def synthetic() -> tuple[ProjectionInputs, IntArray]:
    return synthetic_icbs()


@functools.cache
def _principal_outputs() -> ProjectionOutputs:
    inputs, area_icb = synthetic_icbs()
    return run(inputs, area_icb, iterations=0)


@pytest.fixture(scope="module")
def outputs() -> ProjectionOutputs:
    return _principal_outputs()


@settings(max_examples=60, deadline=None)
@given(
    level=st.sampled_from(LEVELS),
    years=st.lists(st.integers(min_value=0, max_value=HORIZON_YEARS), min_size=2, max_size=2),
)
def test_contributions_add_up_for_any_pair_of_years(level: str, years: list[int]) -> None:
    first, last = sorted(years)
    outputs = _principal_outputs()
    result = outputs.level(level)
    explanation = result.explain
    assert explanation is not None
    assert explanation.state_gaps_fte.shape[2] == outputs.years.size
    contributions, total = between(
        explanation.state_gaps_fte, explanation.gap_after_sharing_fte, first, last
    )
    gap_after = result.gap_after_sharing_fte.principal
    np.testing.assert_allclose(total, gap_after[:, last] - gap_after[:, first], atol=1e-9)
    np.testing.assert_allclose(contributions.sum(axis=1), total, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(contributions[:, -1], 0.0, atol=1e-8)  # residual: rounding
    # Groups add up: the sum of a level's groups is explained by the sum of their states.
    summed, summed_total = between(
        explanation.state_gaps_fte.sum(axis=1),
        explanation.gap_after_sharing_fte.sum(axis=0),
        first,
        last,
    )
    np.testing.assert_allclose(summed, contributions.sum(axis=0), atol=1e-7)
    np.testing.assert_allclose(summed_total, total.sum(), atol=1e-7)
    # Net effects are the gross ones gathered.
    named = dict(zip(EXPLAIN_COLUMNS, contributions[0].tolist(), strict=True))
    net = net_effects(named)
    assert sum(net.values()) + named["residual"] == pytest.approx(total[0], abs=1e-8)


def test_base_to_horizon_is_the_stored_explanation(outputs: ProjectionOutputs) -> None:
    explanation = outputs.level("icb_role").explain
    assert explanation is not None
    contributions, total = between(
        explanation.state_gaps_fte, explanation.gap_after_sharing_fte, 0, HORIZON_YEARS
    )
    np.testing.assert_allclose(contributions, explanation.contributions_fte, atol=1e-12)
    np.testing.assert_allclose(total, explanation.total_change_fte, atol=1e-12)


def test_base_gap_is_vacancies_plus_sickness_absence(
    synthetic: tuple[ProjectionInputs, IntArray], outputs: ProjectionOutputs
) -> None:
    inputs, _ = synthetic
    for level in LEVELS:
        result = outputs.level(level)
        explanation = result.explain
        assert explanation is not None
        np.testing.assert_allclose(
            explanation.base_gap_fte, result.gap_fte.principal[:, 0], rtol=1e-12, atol=1e-9
        )
        np.testing.assert_allclose(
            explanation.base_vacancies_fte + explanation.base_sickness_absence_fte,
            explanation.base_gap_fte,
            rtol=1e-12,
            atol=1e-9,
        )
    england = outputs.level("england").explain
    assert england is not None
    # Vacancies are the returns' vacant FTE; sickness absence is computed from sickness days.
    assert england.base_vacancies_fte[0] == pytest.approx(float(inputs.vacant_fte.sum()))
    with_headcount = inputs.headcount > 0
    sickness_rate = np.clip(
        inputs.sickness_days_12m[with_headcount] / (inputs.headcount[with_headcount] * 225.0),
        0.0,
        1.0,
    )
    expected = float((inputs.fte_in_post[with_headcount] * sickness_rate).sum())
    assert england.base_sickness_absence_fte[0] == pytest.approx(expected, rel=1e-9)


def test_paired_draws_of_one_seed_show_an_intake_in_every_draw(
    synthetic: tuple[ProjectionInputs, IntArray],
) -> None:
    inputs, area_icb = synthetic
    base = ScenarioParameters(default_demand_driver="population_65_plus")
    plan = ScenarioParameters(
        default_demand_driver="population_65_plus",
        international_recruitment=(Intake("role0", 6.0),),
    )
    keep = frozenset({"england_role", "england"})
    runs = [
        run(inputs, area_icb, params, iterations=30, seed=5, keep_iterations=keep, explain=False)
        for params in (base, plan)
    ]

    def per_run(outputs: ProjectionOutputs) -> FloatArray:
        level = outputs.level("england")
        stacked = []
        for measure in ("demand_fte", "supply_fte", "gap_after_sharing_fte"):
            statistic = level.measure(measure)
            assert statistic.iterations is not None
            stacked.append(np.concatenate([statistic.principal[None], statistic.iterations]))
        return compare_model.measures_from_draws(np.stack(stacked))

    base_values, plan_values = (per_run(outputs) for outputs in runs)
    result = compare_model.compare(base_values, plan_values, ("all",))
    supply = compare_model.COMPARED_MEASURES.index("supply_fte")
    assert result.share_better is not None
    assert np.all(result.share_better[supply, 0, 1:] == 1.0)
    difference = plan_values[supply, 1:, 0, 1:] - base_values[supply, 1:, 0, 1:]
    assert np.all(difference > 0.0)
    # Principal of the difference = difference of the principals.
    np.testing.assert_array_equal(
        result.difference_principal[supply],
        runs[1].level("england").supply_fte.principal
        - runs[0].level("england").supply_fte.principal,
    )
    # Pairing is what makes it certain: unpaired (different seed) draws straddle zero less
    # tightly than paired ones.
    assert float(
        result.difference_p90[supply, 0, -1] - result.difference_p10[supply, 0, -1]
    ) < float(
        runs[0].level("england").supply_fte.p90[0, -1]
        - runs[0].level("england").supply_fte.p10[0, -1]
    )
    assert SCENARIO is not None


def test_dementia_prevalence_interval_spreads_only_dementia_driven_roles(
    synthetic: tuple[ProjectionInputs, IntArray],
) -> None:
    """CFAS II's 95% intervals enter the Monte Carlo: roles driven by dementia get a wider
    demand range, other roles none, and the principal does not move."""
    inputs, area_icb = synthetic
    lower = np.array(
        [[0.009, 0.016, 0.045, 0.073, 0.145, 0.284], [0.006, 0.02, 0.038, 0.082, 0.09, 0.106]]
    )
    upper = np.array(
        [[0.036, 0.039, 0.084, 0.123, 0.222, 0.423], [0.023, 0.044, 0.07, 0.137, 0.18, 0.264]]
    )
    with_interval = dataclasses.replace(
        inputs, dementia_prevalence_sd_log=prevalence_sd_log(lower, upper)
    )
    params = ScenarioParameters(
        default_demand_driver="population_65_plus",
        demand_driver_by_role={"role1": "dementia_65_plus"},
        # Only the prevalence is uncertain, so any spread comes from it.
        uncertainty=UncertaintyParameters(
            leaving_multiplier_sd_log=0.0,
            joining_multiplier_sd_log=0.0,
            productivity_growth_sd=0.0,
            population_growth_sd_log=0.0,
        ),
    )
    keep = frozenset({"england_role"})
    plain = run(
        inputs, area_icb, params, iterations=40, seed=3, keep_iterations=keep, explain=False
    )
    drawn = run(
        with_interval, area_icb, params, iterations=40, seed=3, keep_iterations=keep, explain=False
    )
    roles = list(inputs.role_codes)
    dementia, other = roles.index("role1"), roles.index("role0")
    plain_demand = plain.level("england_role").demand_fte
    drawn_demand = drawn.level("england_role").demand_fte
    np.testing.assert_allclose(drawn_demand.principal, plain_demand.principal, rtol=1e-12)
    # Without the interval no parameter is uncertain: every run is the principal.
    np.testing.assert_allclose(plain_demand.p90, plain_demand.p10, rtol=1e-12)
    spread = drawn_demand.p90[dementia, 1:] - drawn_demand.p10[dementia, 1:]
    assert np.all(spread > 0.0)
    np.testing.assert_allclose(drawn_demand.p90[other], drawn_demand.p10[other], rtol=1e-12)
    # The base year is the returns: no spread there.
    assert drawn_demand.p90[dementia, 0] == pytest.approx(drawn_demand.p10[dementia, 0])
