"""Demand: driver ratios, productivity and related factors, substitution (hand-computed)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.projector.model.demand import driver_values, driver_weights, project_demand_fte
from services.projector.model.inputs import (
    CFAS2_DEMENTIA_PREVALENCE,
    FloatArray,
    ProjectionInputs,
    ensure_substitution_cells,
)
from services.projector.model.params import (
    ByRole,
    CustomDriverWeights,
    ScenarioParameters,
    Substitution,
)
from tests.projector.model.factories import cell_inputs, flat_population, growing_population

PREVALENCE = np.array(CFAS2_DEMENTIA_PREVALENCE)


def one_cell(
    population: FloatArray, base_fte: float = 10.0, vacant_fte: float = 0.0
) -> ProjectionInputs:
    by_age = np.array([[0.0, base_fte, 0.0, 0.0, 0.0, 0.0]])
    return cell_inputs(
        orgs=[0],
        roles=[0],
        areas=[0],
        role_codes=["nurse"],
        population=population,
        headcount_by_age=by_age,
        fte_in_post=[base_fte],
        vacant_fte=[vacant_fte],
    )


@pytest.mark.parametrize(
    ("driver", "expected_per_sex"),
    [
        # Every band holds 100 persons per sex: 19 bands.
        ("population_all", 1900.0),
        # 0-4, 5-9, 10-14 and 3/5 of 15-19.
        ("population_0_17", 300.0 + 60.0),
        # 2/5 of 15-19 and the nine bands 20-24 .. 60-64.
        ("population_18_64", 40.0 + 900.0),
        ("population_65_plus", 600.0),
        ("population_75_plus", 400.0),
        ("population_85_plus", 200.0),
    ],
)
def test_driver_values_from_five_year_bands(driver: str, expected_per_sex: float) -> None:
    population = flat_population(1, 1)
    weights = driver_weights(driver, PREVALENCE)[None]
    assert driver_values(population, weights)[0, 0, 0] == pytest.approx(2 * expected_per_sex)


def test_age_drivers_partition_the_population() -> None:
    population = growing_population(3, 4)
    names = ("population_0_17", "population_18_64", "population_65_plus", "population_all")
    weights = np.stack([driver_weights(n, PREVALENCE) for n in names])
    young, working, old, everyone = driver_values(population, weights)
    np.testing.assert_allclose(young + working + old, everyone, rtol=1e-12)


def test_dementia_driver_is_prevalence_times_persons() -> None:
    population = flat_population(1, 1)
    # 100 persons in each band: sum of all twelve CFAS II rates x 100.
    expected = 100.0 * PREVALENCE.sum()
    weights = driver_weights("dementia_65_plus", PREVALENCE)[None]
    assert driver_values(population, weights)[0, 0, 0] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("params", "expected_year_2"),
    [
        # Driver 65+: the 65+ bands double by year 2 while others stay: ratio 2.
        (ScenarioParameters(default_demand_driver="population_65_plus"), 12.0 * 2.0),
        # Productivity 2%/yr: 12 x 2 / 1.02^2.
        (
            ScenarioParameters(
                default_demand_driver="population_65_plus",
                productivity_growth_per_year=ByRole(0.02),
            ),
            12.0 * 2.0 / 1.02**2,
        ),
        # Non-demographic growth 1%/yr: 12 x 2 x 1.01^2.
        (
            ScenarioParameters(
                default_demand_driver="population_65_plus",
                non_demographic_growth_per_year=ByRole(0.01),
            ),
            12.0 * 2.0 * 1.01**2,
        ),
        # Prevention 10% phased over 4 years: half of it by year 2, 12 x 2 x 0.95.
        (
            ScenarioParameters(
                default_demand_driver="population_65_plus",
                prevention_reduction=ByRole(0.1),
                prevention_phase_in_years=4,
            ),
            12.0 * 2.0 * 0.95,
        ),
        # population_all: 13 bands unchanged at 100 and 6 bands at 100 -> 150 -> 200:
        # (1300 + 1200) / 1900 per sex.
        (ScenarioParameters(default_demand_driver="population_all"), 12.0 * 2500.0 / 1900.0),
    ],
)
def test_demand_factors(params: ScenarioParameters, expected_year_2: float) -> None:
    population = flat_population(1, 3)
    population[:, 1, :, 13:] = 150.0
    population[:, 2, :, 13:] = 200.0
    # Base demand = FTE in post + vacancies = 10 + 2.
    inputs = one_cell(population, base_fte=10.0, vacant_fte=2.0)
    demand = project_demand_fte(inputs, params)
    assert demand[0, 0] == pytest.approx(12.0)
    assert demand[2, 0] == pytest.approx(expected_year_2)


def test_custom_weights_driver() -> None:
    population = flat_population(1, 2)
    population[:, 1, 0, 0] = 300.0  # girls 0-4 triple
    weights = [0.0] * 19
    weights[0] = 1.0
    params = ScenarioParameters(
        custom_driver_weights={"nurse": _custom(weights, [0.0] * 19)},
    )
    demand = project_demand_fte(one_cell(population), params)
    assert demand[1, 0] == pytest.approx(30.0)


def _custom(female: list[float], male: list[float]) -> CustomDriverWeights:
    return CustomDriverWeights(female=tuple(female), male=tuple(male))


def test_substitution_within_organisation_phased_in() -> None:
    # Two organisations, each with a nurse (20 FTE) and a navigator (0 FTE) cell; a third
    # organisation has only a nurse, so nothing can move there.
    population = flat_population(1, 4)
    by_age = np.zeros((5, 6))
    by_age[:, 1] = [20.0, 0.0, 20.0, 0.0, 20.0]
    inputs = cell_inputs(
        orgs=[0, 0, 1, 1, 2],
        roles=[0, 1, 0, 1, 0],
        areas=[0, 0, 0, 0, 0],
        role_codes=["nurse", "navigator"],
        population=population,
        headcount_by_age=by_age,
    )
    params = ScenarioParameters(
        substitutions=(Substitution("nurse", "navigator", share=0.3, ratio=0.5, phase_in_years=2),)
    )
    demand = project_demand_fte(inputs, params)
    # Year 1: half phased in: 20 x 0.15 = 3 FTE leave nurses, 3 x 0.5 = 1.5 navigators.
    np.testing.assert_allclose(demand[1], [17.0, 1.5, 17.0, 1.5, 20.0])
    # Year 2 onwards: full 30%: 6 FTE move, 3 navigator FTE.
    np.testing.assert_allclose(demand[3], [14.0, 3.0, 14.0, 3.0, 20.0])
    np.testing.assert_allclose(demand[0], [20.0, 0.0, 20.0, 0.0, 20.0])

    with_cells = ensure_substitution_cells(inputs, params)
    assert with_cells.n_cells == 6
    moved = project_demand_fte(with_cells, params)
    np.testing.assert_allclose(moved[3, [4, 5]], [14.0, 3.0])


@settings(max_examples=25, deadline=None)
@given(
    areas=st.integers(1, 6),
    years=st.integers(1, 25),
    seed=st.integers(0, 10_000),
)
def test_demand_follows_population_65_plus_exactly(areas: int, years: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    population = growing_population(areas, years, seed)
    n_cells = 3 * areas
    by_age = rng.uniform(0, 20, (n_cells, 6))
    area = np.repeat(np.arange(areas), 3)
    inputs = cell_inputs(
        orgs=list(range(n_cells)),
        roles=[0] * n_cells,
        areas=area.tolist(),
        role_codes=["carer"],
        population=population,
        headcount_by_age=by_age,
        fte_in_post=rng.uniform(0, 50, n_cells).tolist(),
        vacant_fte=rng.uniform(0, 5, n_cells).tolist(),
    )
    demand = project_demand_fte(
        inputs, ScenarioParameters(default_demand_driver="population_65_plus")
    )
    pop65 = population[:, :, :, 13:].sum(axis=(2, 3))  # (areas, years)
    expected = inputs.base_demand_fte()[None, :] * (pop65[area] / pop65[area, :1]).T
    np.testing.assert_allclose(demand, expected, rtol=1e-13, atol=0.0)
