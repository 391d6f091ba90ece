"""Draws depend only on (seed, run); percentiles are numpy's linear percentiles."""

from __future__ import annotations

import numpy as np

from services.projector.model.params import UncertaintyParameters
from services.projector.model.uncertainty import draw_runs, run_percentiles


def test_run_zero_is_central() -> None:
    draws = draw_runs(5, 0, 1, UncertaintyParameters())
    assert draws.leaving_multiplier[0] == 1.0
    assert draws.joining_multiplier[0] == 1.0
    assert draws.productivity_shift[0] == 0.0
    assert draws.population_variant_weight[0] == 0.0
    assert draws.population_growth_exponent[0] == 1.0


def test_draws_do_not_depend_on_batching() -> None:
    whole = draw_runs(42, 0, 40, UncertaintyParameters())
    part = draw_runs(42, 17, 23, UncertaintyParameters())
    np.testing.assert_array_equal(part.leaving_multiplier, whole.leaving_multiplier[17:23])
    np.testing.assert_array_equal(
        part.population_variant_weight, whole.population_variant_weight[17:23]
    )
    other_seed = draw_runs(43, 17, 23, UncertaintyParameters())
    assert not np.array_equal(other_seed.leaving_multiplier, part.leaving_multiplier)


def test_multipliers_have_the_stated_spread() -> None:
    draws = draw_runs(1, 1, 4001, UncertaintyParameters(leaving_multiplier_sd_log=0.2))
    assert abs(np.log(draws.leaving_multiplier).std() - 0.2) < 0.01
    assert abs(np.median(draws.leaving_multiplier) - 1.0) < 0.02


def test_percentiles_match_numpy() -> None:
    values = np.random.default_rng(0).normal(size=(37, 4, 3))
    np.testing.assert_allclose(
        run_percentiles(values, axis=0), np.percentile(values, [10, 50, 90], axis=0), rtol=1e-12
    )
