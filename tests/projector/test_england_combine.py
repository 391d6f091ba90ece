"""England from its ICB parts, as the combine step builds it: each part's per-draw row
(demand, supply, gap after sharing) and its totals (the shortfalls) give every measure of one
England job, draw by draw."""

from __future__ import annotations

import io

import numpy as np

from services.projector import pipeline
from services.projector.model.engine import (
    Aggregation,
    ProjectionOutputs,
    project,
    summarise_runs,
)
from services.projector.model.inputs import IntArray, ProjectionInputs
from shared.models import DRAW_MEASURES
from shared.vocab.measures import MEASURES
from tests.projector.model.factories import synthetic_icbs
from tests.projector.model.test_engine import SCENARIO

ICBS = 3


def _run(inputs: ProjectionInputs, area_icb: IntArray, icbs: int) -> ProjectionOutputs:
    return project(
        inputs,
        SCENARIO,
        iterations=24,
        seed=11,
        aggregation=Aggregation.standard(inputs, area_icb, icbs),
        keep_iterations=True,
    )


def _part(inputs: ProjectionInputs) -> ProjectionOutputs:
    """One ICB's job, as a part computes it: its areas all in one ICB."""
    return _run(inputs, np.zeros(inputs.n_areas, dtype=np.int64), 1)


def test_england_measures_from_part_draws_and_totals_match_one_england_job() -> None:
    inputs, area_icb = synthetic_icbs()
    icb_of_cell = area_icb[inputs.cell_area]
    parts = []
    for icb in range(ICBS):
        job = _part(inputs.select_cells(icb_of_cell == icb))
        by_role = job.level("icb_role")
        draws = np.stack([pipeline._per_run(by_role.measure(m)) for m in DRAW_MEASURES])
        parts.append(
            (list(inputs.role_codes), pipeline._draws_blob(draws), pipeline.run_totals(job))
        )
    roles, total = pipeline.england_totals(parts)
    assert roles == sorted(inputs.role_codes)
    assert total.shape[0] == len(MEASURES)

    england = _run(inputs, area_icb, ICBS).level("england_role")
    order = [list(inputs.role_codes).index(code) for code in roles]
    for m, measure in enumerate(MEASURES):
        combined = summarise_runs(total[m])
        expected = england.measure(measure)
        for name in ("principal", "p10", "p50", "p90"):
            np.testing.assert_allclose(
                getattr(combined, name),
                getattr(expected, name)[order],
                rtol=1e-9,
                atol=1e-7,
                err_msg=f"{measure} {name}",
            )


def test_parts_stored_with_every_measure_still_combine() -> None:
    inputs, _ = synthetic_icbs()
    job = _part(inputs)
    by_role = job.level("icb_role")
    every = np.stack([pipeline._per_run(by_role.measure(m)) for m in MEASURES])
    draws = np.stack([pipeline._per_run(by_role.measure(m)) for m in DRAW_MEASURES])
    np.testing.assert_array_equal(pipeline.part_measures(draws, every), every)
    split = pipeline.part_measures(draws, np.load(io.BytesIO(pipeline.run_totals(job))))
    np.testing.assert_allclose(split, every, rtol=1e-12, atol=1e-9)
