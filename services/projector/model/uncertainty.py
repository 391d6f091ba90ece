"""Monte Carlo draws of the uncertain parameters, and the statistics kept from the runs.

Run 0 is the principal projection at central values. Run i >= 1 draws four standard normals
from a generator seeded by (seed, i) alone, so a run's numbers do not depend on which areas,
organisations or roles are in the job: one ICB at a time gives the same run-by-run values as
all of England at once, and the same inputs and seed always give the same results.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from services.projector.model.inputs import FloatArray, IntArray
from services.projector.model.params import UncertaintyParameters

PERCENTILES: tuple[float, ...] = (10.0, 50.0, 90.0)
# Order of the standard normal draws of each run; append only, never reorder.
DRAWN_PARAMETERS: tuple[str, ...] = (
    "leaving",
    "joining",
    "productivity",
    "population",
    "dementia_prevalence",
)


@dataclass(frozen=True, eq=False)
class RunDraws:
    """Parameter values for a batch of runs, each array (n,)."""

    run_index: IntArray
    leaving_multiplier: FloatArray
    joining_multiplier: FloatArray
    productivity_shift: FloatArray  # added to every role's productivity growth per year
    population_variant_weight: FloatArray  # 0 = principal population, 1 = the variant
    population_growth_exponent: FloatArray  # scales log driver growth when no variant
    dementia_prevalence_z: FloatArray  # standard normal: prevalence at its log-scale interval

    def __len__(self) -> int:
        return int(self.run_index.shape[0])


def standard_normals(seed: int, runs: IntArray) -> FloatArray:
    """(n, len(DRAWN_PARAMETERS)) standard normals; zeros for run 0. Depends only on (seed,
    run index): appending a parameter keeps the earlier ones' values, since a generator's
    first k normals do not depend on how many are drawn after them."""
    out = np.zeros((runs.shape[0], len(DRAWN_PARAMETERS)))
    for row, run in enumerate(runs.tolist()):
        if run == 0:
            continue
        sequence = np.random.SeedSequence(entropy=seed, spawn_key=(run,))
        generator = np.random.Generator(np.random.PCG64(sequence))
        out[row] = generator.standard_normal(len(DRAWN_PARAMETERS))
    return out


def draw_runs(seed: int, start: int, stop: int, uncertainty: UncertaintyParameters) -> RunDraws:
    """Parameter values for runs start..stop-1.

    Multipliers are lognormal with median 1 (so run 0's central value is also the median);
    the productivity shift is normal around 0. The population variant, when one is given, is
    taken as the population_variant_quantile outcome in its direction, so the interpolation
    weight is normal with that quantile at 1.
    """
    runs = np.arange(start, stop, dtype=np.int64)
    z = standard_normals(seed, runs)
    variant_sd = 1.0 / NormalDist().inv_cdf(uncertainty.population_variant_quantile)
    return RunDraws(
        run_index=runs,
        leaving_multiplier=np.exp(uncertainty.leaving_multiplier_sd_log * z[:, 0]),
        joining_multiplier=np.exp(uncertainty.joining_multiplier_sd_log * z[:, 1]),
        productivity_shift=uncertainty.productivity_growth_sd * z[:, 2],
        population_variant_weight=variant_sd * z[:, 3],
        population_growth_exponent=np.exp(uncertainty.population_growth_sd_log * z[:, 3]),
        dementia_prevalence_z=z[:, 4],
    )


def central_runs(n_runs: int = 1) -> RunDraws:
    """Central values (run 0) for n_runs runs."""
    return RunDraws(
        run_index=np.zeros(n_runs, dtype=np.int64),
        leaving_multiplier=np.ones(n_runs),
        joining_multiplier=np.ones(n_runs),
        productivity_shift=np.zeros(n_runs),
        population_variant_weight=np.zeros(n_runs),
        population_growth_exponent=np.ones(n_runs),
        dementia_prevalence_z=np.zeros(n_runs),
    )


def run_percentiles(values: FloatArray, axis: int) -> FloatArray:
    """p10, p50, p90 over the runs axis, stacked first: (3, *other axes).

    Linear interpolation between order statistics (numpy's default "linear" method): the
    q-th percentile of n runs sits at position q/100 x (n - 1) of the sorted runs. Sorting
    and interpolating is several times faster than np.percentile for many short rows.
    """
    ordered = np.sort(np.moveaxis(values, axis, -1), axis=-1)
    n_runs = ordered.shape[-1]
    position = np.asarray(PERCENTILES) / 100.0 * (n_runs - 1)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, n_runs - 1)
    fraction = position - below
    low = np.moveaxis(ordered[..., below], -1, 0)
    high = np.moveaxis(ordered[..., above], -1, 0)
    shape = (len(PERCENTILES),) + (1,) * (low.ndim - 1)
    result: FloatArray = low + (high - low) * fraction.reshape(shape)
    return result
