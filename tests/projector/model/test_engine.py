"""The engine: invariants, aggregation, determinism, fan-out consistency and explain."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.projector.model.demand import project_demand_fte
from services.projector.model.engine import (
    MODEL_VERSION,
    Aggregation,
    AggregationLevel,
    ProjectionOutputs,
    project,
    summarise_runs,
)
from services.projector.model.explain import EXPLAIN_COLUMNS
from services.projector.model.inputs import InputError, IntArray, ProjectionInputs
from services.projector.model.params import (
    ByRole,
    CrossSectorFlow,
    Intake,
    ScenarioParameters,
    Substitution,
    UncertaintyParameters,
)
from services.projector.model.supply import project_supply
from shared.schemas.scenario_parameters import (
    ParameterError,
)
from shared.vocab.measures import MEASURES
from tests.projector.model.factories import synthetic_icbs

SCENARIO = ScenarioParameters(
    default_demand_driver="population_65_plus",
    demand_driver_by_role={"role1": "dementia_65_plus", "role2": "population_0_17"},
    productivity_growth_per_year=ByRole(0.01),
    non_demographic_growth_per_year=ByRole(0.0, {"role3": 0.02}),
    prevention_reduction=ByRole(0.05),
    substitutions=(Substitution("role0", "role3", share=0.2, ratio=0.7, phase_in_years=3),),
    recruitment_change=ByRole(0.1),
    international_recruitment=(Intake("role0", 4.0, first_year=1, last_year=4),),
    training_pipeline=(Intake("role1", 2.0, first_year=2),),
    cross_sector_flows=(CrossSectorFlow("role2", "role0", 0.2),),
    agency_conversion=ByRole(0.5),
)
LEVELS = ("lad_role", "lad", "icb_role", "icb", "england_role", "england")


def run(
    inputs: ProjectionInputs,
    area_icb: IntArray,
    params: ScenarioParameters = SCENARIO,
    *,
    iterations: int = 24,
    seed: int = 11,
    n_icbs: int = 3,
    **kwargs: object,
) -> ProjectionOutputs:
    aggregation = Aggregation.standard(inputs, area_icb, n_icbs)
    return project(
        inputs,
        params,
        iterations=iterations,
        seed=seed,
        aggregation=aggregation,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def synthetic() -> tuple[ProjectionInputs, IntArray]:
    return synthetic_icbs()


@pytest.fixture(scope="module")
def outputs(synthetic: tuple[ProjectionInputs, IntArray]) -> ProjectionOutputs:
    inputs, area_icb = synthetic
    return run(inputs, area_icb, keep_iterations=True)


def test_outputs_shape_and_version(
    outputs: ProjectionOutputs, synthetic: tuple[ProjectionInputs, IntArray]
) -> None:
    inputs, _ = synthetic
    assert outputs.model_version == MODEL_VERSION
    np.testing.assert_array_equal(outputs.years, np.arange(2024, 2024 + 8))
    assert [level.name for level in outputs.levels] == list(LEVELS)
    lad_role = outputs.level("lad_role")
    assert lad_role.n_groups == inputs.n_areas * inputs.n_roles
    for name in MEASURES:
        statistic = lad_role.measure(name)
        assert statistic.principal.shape == (lad_role.n_groups, 8)
        assert statistic.iterations is not None
        assert statistic.iterations.shape == (24, lad_role.n_groups, 8)
        assert np.all(statistic.p10 <= statistic.p50 + 1e-9)
        assert np.all(statistic.p50 <= statistic.p90 + 1e-9)


def test_lads_sum_to_icbs_and_england(
    outputs: ProjectionOutputs, synthetic: tuple[ProjectionInputs, IntArray]
) -> None:
    inputs, area_icb = synthetic
    n_roles = inputs.n_roles
    for name in MEASURES:
        lad_role = outputs.level("lad_role").measure(name)
        assert lad_role.iterations is not None
        for stat in ("principal", "iterations"):
            by_lad_role = getattr(lad_role, stat)
            shape = (*by_lad_role.shape[:-2], inputs.n_areas, n_roles, by_lad_role.shape[-1])
            per_lad_role = by_lad_role.reshape(shape)
            icb_role = np.zeros((*shape[:-3], 3, n_roles, shape[-1]))
            for area, icb in enumerate(area_icb):
                icb_role[..., icb, :, :] += per_lad_role[..., area, :, :]
            expected = {
                "lad": per_lad_role.sum(axis=-2),
                "icb_role": icb_role.reshape(*shape[:-3], -1, shape[-1]),
                "icb": icb_role.sum(axis=-2),
                "england_role": per_lad_role.sum(axis=-3),
                "england": per_lad_role.sum(axis=(-3, -2))[..., None, :],
            }
            for level, values in expected.items():
                actual = getattr(outputs.level(level).measure(name), stat)
                np.testing.assert_allclose(actual, values, rtol=1e-12, atol=1e-9)
        # Percentiles are of totals, not totals of percentiles.
        england = outputs.level("england").measure(name)
        assert england.iterations is not None
        np.testing.assert_allclose(
            england.p50[0], np.percentile(england.iterations[:, 0, :], 50, axis=0), rtol=1e-12
        )


def test_principal_matches_demand_and_supply_models(
    outputs: ProjectionOutputs, synthetic: tuple[ProjectionInputs, IntArray]
) -> None:
    inputs, _ = synthetic
    demand = project_demand_fte(inputs, SCENARIO).sum(axis=1)
    _, effective = project_supply(inputs, SCENARIO)
    england = outputs.level("england")
    np.testing.assert_allclose(england.demand_fte.principal[0], demand, rtol=1e-12)
    np.testing.assert_allclose(england.supply_fte.principal[0], effective.sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(
        england.gap_fte.principal[0], demand - effective.sum(axis=1), rtol=1e-9, atol=1e-9
    )


def test_measures_are_consistent(outputs: ProjectionOutputs) -> None:
    for level in outputs.levels:
        gap = level.gap_fte.iterations
        shortfall = level.shortfall_fte.iterations
        shortfall_after = level.shortfall_after_sharing_fte.iterations
        assert gap is not None
        assert shortfall is not None
        assert shortfall_after is not None
        assert np.all(shortfall >= np.maximum(gap, 0.0) - 1e-9)
        # Sharing moves FTE from surplus to shortfall: it never adds to the shortfall.
        assert np.all(shortfall_after <= shortfall + 1e-9)
    # Every agreement lies inside one ICB, so sharing leaves ICB totals of the net gap alone.
    icb = outputs.level("icb")
    np.testing.assert_allclose(
        icb.gap_after_sharing_fte.principal, icb.gap_fte.principal, rtol=1e-12, atol=1e-9
    )
    assert np.any(icb.shortfall_after_sharing_fte.principal < icb.shortfall_fte.principal - 1e-6)


def test_every_lever_off_demand_follows_population_65_plus() -> None:
    inputs, area_icb = synthetic_icbs(seed=4, with_agreements=False)
    params = ScenarioParameters(default_demand_driver="population_65_plus")
    outputs = run(inputs, area_icb, params, iterations=0)
    pop65 = inputs.population[:, :, :, 13:].sum(axis=(2, 3))
    base = np.bincount(
        inputs.cell_area * inputs.n_roles + inputs.cell_role,
        inputs.base_demand_fte(),
        minlength=inputs.n_areas * inputs.n_roles,
    )
    area_of_group = np.repeat(np.arange(inputs.n_areas), inputs.n_roles)
    expected = base[:, None] * pop65[area_of_group] / pop65[area_of_group, :1]
    np.testing.assert_allclose(
        outputs.level("lad_role").demand_fte.principal, expected, rtol=1e-13, atol=1e-12
    )


def test_same_inputs_and_seed_give_identical_results(
    synthetic: tuple[ProjectionInputs, IntArray], outputs: ProjectionOutputs
) -> None:
    inputs, area_icb = synthetic
    again = run(inputs, area_icb, keep_iterations=True, chunk_size=7)
    for level, other in zip(outputs.levels, again.levels, strict=True):
        for name in MEASURES:
            a, b = level.measure(name), other.measure(name)
            np.testing.assert_array_equal(a.principal, b.principal)
            np.testing.assert_array_equal(a.p50, b.p50)
            assert a.iterations is not None
            assert b.iterations is not None
            np.testing.assert_array_equal(a.iterations, b.iterations)
    different = run(inputs, area_icb, seed=12)
    assert not np.array_equal(
        different.level("england").gap_fte.p90, outputs.level("england").gap_fte.p90
    )


def test_one_icb_at_a_time_gives_the_same_runs(
    synthetic: tuple[ProjectionInputs, IntArray], outputs: ProjectionOutputs
) -> None:
    inputs, area_icb = synthetic
    icb_of_cell = area_icb[inputs.cell_area]
    for icb in range(3):
        alone = run(inputs.select_cells(icb_of_cell == icb), area_icb, keep_iterations=True)
        for level_name, groups in (
            ("icb", np.array([icb])),
            ("lad_role", np.flatnonzero(np.repeat(area_icb, inputs.n_roles) == icb)),
        ):
            for name in MEASURES:
                whole = outputs.level(level_name).measure(name)
                part = alone.level(level_name).measure(name)
                assert whole.iterations is not None
                assert part.iterations is not None
                np.testing.assert_allclose(
                    part.iterations[:, groups], whole.iterations[:, groups], rtol=1e-12, atol=1e-9
                )
                np.testing.assert_allclose(
                    part.p90[groups], whole.p90[groups], rtol=1e-12, atol=1e-9
                )


def test_explain_adds_up_to_the_change_in_gap(outputs: ProjectionOutputs) -> None:
    for level in outputs.levels:
        explanation = level.explain
        assert explanation is not None
        assert explanation.columns == EXPLAIN_COLUMNS
        gap_after = level.gap_after_sharing_fte.principal
        total = gap_after[:, -1] - gap_after[:, 0]
        np.testing.assert_allclose(explanation.total_change_fte, total, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(
            explanation.contributions_fte.sum(axis=1), total, rtol=1e-12, atol=1e-9
        )
        np.testing.assert_allclose(explanation.contributions_fte[:, -1], 0.0, atol=1e-8)
    england = outputs.level("england").explain
    assert england is not None
    parts = england.as_dict(0)
    assert parts["demography"] > 0  # the older population grows
    assert parts["productivity"] < 0  # 1% productivity growth outweighs the rest
    assert parts["sharing"] == pytest.approx(0.0, abs=1e-9)  # England nets sharing out


def test_demography_is_the_whole_change_in_demand() -> None:
    inputs, area_icb = synthetic_icbs(seed=5, with_agreements=False)
    params = ScenarioParameters(default_demand_driver="population_85_plus")
    outputs = run(inputs, area_icb, params, iterations=0)
    england = outputs.level("england")
    explanation = england.explain
    assert explanation is not None
    demand = england.demand_fte.principal[0]
    parts = explanation.as_dict(0)
    assert parts["demography"] == pytest.approx(demand[-1] - demand[0])
    # No demand lever is on; supply-side components explain the change in supply.
    for name in ("productivity", "substitution", "cross_sector_flows", "sharing"):
        assert parts[name] == pytest.approx(0.0, abs=1e-9)
    supply = england.supply_fte.principal[0]
    supply_parts = parts["leavers"] + parts["retirement"] + parts["joiners"]
    assert supply_parts == pytest.approx(-(supply[-1] - supply[0]))


def test_population_variant_spreads_runs_but_not_the_principal() -> None:
    inputs, area_icb = synthetic_icbs(seed=6)
    variant = (
        inputs.population * np.linspace(1.0, 1.2, inputs.horizon_years + 1)[None, :, None, None]
    )
    with_variant = replace(inputs, population_variant=variant)
    plain = run(inputs, area_icb, iterations=40)
    varied = run(with_variant, area_icb, iterations=40)
    a, b = plain.level("england").demand_fte, varied.level("england").demand_fte
    np.testing.assert_allclose(a.principal, b.principal, rtol=1e-12)
    assert (b.p90 - b.p10)[0, -1] > (a.p90 - a.p10)[0, -1]


def test_progress_is_reported(synthetic: tuple[ProjectionInputs, IntArray]) -> None:
    inputs, area_icb = synthetic
    seen: list[float] = []
    run(inputs, area_icb, iterations=10, chunk_size=4, explain=False, progress=seen.append)
    assert seen == sorted(seen)
    assert seen[-1] == 1.0
    assert len(seen) == 4


def test_invalid_parameters_and_inputs_are_reported(
    synthetic: tuple[ProjectionInputs, IntArray],
) -> None:
    inputs, area_icb = synthetic
    bad = ScenarioParameters(recruitment_change=ByRole(-2.0), retirement_hazard=(0.1,) * 5)
    with pytest.raises(ParameterError) as parameter_error:
        run(inputs, area_icb, bad)
    paths = {p.path for p in parameter_error.value.problems}
    assert paths == {"recruitment_change.default", "retirement_hazard"}

    negative = replace(inputs, headcount=-inputs.headcount)
    with pytest.raises(InputError) as input_error:
        run(negative, area_icb)
    assert {p.path for p in input_error.value.problems} == {"headcount"}

    aggregation = Aggregation((AggregationLevel("x", np.zeros(3, dtype=np.int64), 1),))
    with pytest.raises(InputError):
        project(inputs, SCENARIO, iterations=1, seed=0, aggregation=aggregation)


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    leaving_sd=st.floats(0.0, 1.5),
    share=st.floats(0.0, 1.0),
    recruitment=st.floats(-1.0, 1.0),
)
def test_supply_never_negative_in_any_run(
    seed: int, leaving_sd: float, share: float, recruitment: float
) -> None:
    inputs, area_icb = synthetic_icbs(seed=seed, icbs=2, years=6)
    params = ScenarioParameters(
        recruitment_change=ByRole(recruitment),
        cross_sector_flows=(CrossSectorFlow("role1", "role0", share),),
        international_recruitment=(Intake("role2", 3.0, 2, 3),),
        uncertainty=replace_uncertainty(leaving_sd),
    )
    outputs = run(inputs, area_icb, params, iterations=12, n_icbs=2, explain=False)
    supply = outputs.level("lad_role").supply_fte
    assert np.all(supply.principal >= 0.0)
    assert np.all(supply.p10 >= 0.0)


def replace_uncertainty(leaving_sd: float) -> UncertaintyParameters:
    return UncertaintyParameters(leaving_multiplier_sd_log=leaving_sd)


def test_england_from_icb_jobs_matches_one_england_job(
    synthetic: tuple[ProjectionInputs, IntArray], outputs: ProjectionOutputs
) -> None:
    inputs, area_icb = synthetic
    icb_of_cell = area_icb[inputs.cell_area]
    totals = np.zeros((25, 1, 8))
    for icb in range(3):
        job = run(inputs.select_cells(icb_of_cell == icb), area_icb, keep_iterations=True)
        statistic = job.level("icb").gap_after_sharing_fte
        assert statistic.iterations is not None
        per_run = np.concatenate([statistic.principal[None], statistic.iterations])
        totals += per_run[:, [icb]]
    combined = summarise_runs(totals)
    england = outputs.level("england").gap_after_sharing_fte
    for name in ("principal", "p10", "p50", "p90"):
        np.testing.assert_allclose(
            getattr(combined, name), getattr(england, name), rtol=1e-12, atol=1e-9
        )
