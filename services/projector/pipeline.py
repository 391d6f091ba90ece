"""The projection run pipeline: load inputs from the database, run the model off the event
loop with heartbeats, and write each result set in one idempotent transaction.

An ICB run is one job. An England run fans out one project_ics job per ICB with returns; each
stores its ICB's results and per-run totals by role in a transaction that locks only its own
part row, then, in a second transaction that locks only the run row, counts the finished parts:
the part that sees them all done queues the combine job (once: `combine_attempts` goes from 0 to
1 under that lock), which sums the per-run totals and takes England's percentiles from them.
Why this cannot deadlock is in docs/projection-locking.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import partial
from itertools import pairwise
from typing import Any, TypeVar

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.domain.insights.unpaid_care import unpaid_care_hours
from services.domain.projections import runs as projection_runs
from services.domain.webhooks import events as webhook_events
from services.projector.model.engine import (
    MODEL_VERSION,
    Aggregation,
    LevelResult,
    ProjectionOutputs,
    Statistic,
    project,
    summarise_runs,
)
from services.projector.model.explain import EXPLAIN_COLUMNS
from services.projector.model.inputs import (
    CELL_FIGURES,
    FloatArray,
    InputError,
    IntArray,
    ProjectionInputs,
    SharingAgreement,
    ensure_substitution_cells,
    prevalence_sd_log,
)
from services.projector.model.params import (
    ScenarioParameters,
)
from services.projector.model_pool import ModelPool
from shared import metrics
from shared.config import Settings
from shared.db.base import utcnow
from shared.db.session import transaction
from shared.jobs import (
    JobName,
    ProjectIcsPayload,
    RunProjectionPayload,
    combine_projection_job_id,
    project_ics_job_id,
)
from shared.models import (
    ALL_ROLES,
    DRAW_MEASURES,
    ENGLAND_CODE,
    PrevalenceRate,
    ProjectionExplain,
    ProjectionRun,
    RunStatus,
)
from shared.reference import files as reference_files
from shared.reference.bands import AGE_BANDS, SEXES
from shared.repositories import agreements as agreements_repo
from shared.repositories import outbox, scenarios
from shared.repositories import population as population_repo
from shared.repositories import projections as repo
from shared.schemas.agreements import ActiveAgreement
from shared.schemas.scenario_parameters import (
    ParameterError,
)
from shared.vocab.drivers import CUSTOM_DRIVER, POPULATION_DRIVERS
from shared.vocab.measures import MEASURES
from shared.vocab.return_lines import AGE_COLUMNS

log = logging.getLogger("oneworkforce.projector")
T = TypeVar("T")

POPULATION_DATASET = reference_files.BUNDLED_DATASET_NAME
# What a run reads of each return line: the cell's figures, then its headcount by age band.
INPUT_FIGURES = (*CELL_FIGURES, *AGE_COLUMNS)
_PREVALENCE_BANDS = AGE_BANDS[13:]
_ICB_LEVELS = ("lad_role", "lad", "icb_role", "icb")
# Levels whose every draw is kept, for paired comparisons between runs.
DRAW_LEVELS = frozenset({"icb_role", "lad"})

# Sends committed outbox rows now (a job has no request edge to do it); None leaves them to
# the relay's timer.
SendPending = Callable[[list[uuid.UUID]], Awaitable[Any]]


class RunFailed(Exception):
    """A run that cannot succeed on any attempt (bad inputs, no data): fail it, do not retry."""


@dataclass
class LoadedInputs:
    inputs: ProjectionInputs
    params: ScenarioParameters
    lad_codes: list[str]
    fingerprint_parts: dict[str, Any]
    organisation_ids: list[uuid.UUID] = field(default_factory=list)  # cell_org indexes these


@dataclass
class _Beat:
    progress: float = 0.0
    done: bool = False
    timings: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Inputs


def fingerprint_of(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def base_date(base_year: int) -> date:
    return date(base_year, 12, 31)


async def _parameters(
    session: AsyncSession, run: ProjectionRun, roles: list[str]
) -> ScenarioParameters:
    version = await scenarios.get_version(
        session, scenario_id=run.scenario_id, version=run.scenario_version
    )
    if version is None:
        raise RunFailed("the scenario version of this run no longer exists")
    try:
        params = ScenarioParameters.from_dict(version.parameters)
    except ParameterError as exc:
        raise RunFailed(f"scenario parameters: {exc}") from exc
    # Each role follows its catalogue driver unless the scenario says otherwise.
    drivers = await repo.role_drivers(session, codes=roles)
    by_role = {
        code: driver
        for code, driver in drivers.items()
        if driver in POPULATION_DRIVERS
        or (driver == CUSTOM_DRIVER and code in params.custom_driver_weights)
    }
    by_role.update(params.demand_driver_by_role)
    return replace(params, demand_driver_by_role=by_role)


@dataclass(frozen=True)
class InputRows:
    """Everything a run reads for one ICS, before any array is built."""

    cells: repo.InputCells
    population_dataset_id: uuid.UUID
    population: repo.PopulationBands
    prevalence: Sequence[PrevalenceRate]
    agreements: list[ActiveAgreement]
    params: ScenarioParameters


async def read_inputs(session: AsyncSession, run: ProjectionRun, ics_code: str) -> InputRows:
    """The reads: the latest current returns at the base date, the population of their LADs,
    dementia prevalence, the agreements in force and the scenario's parameters."""
    on = base_date(run.base_year)
    cells = await repo.input_cells(session, ics_code=ics_code, on=on, figures=INPUT_FIGURES)
    if not len(cells):
        raise RunFailed(f"no current workforce returns for {ics_code} at or before {on}")
    dataset = await population_repo.get_dataset_by_name(session, name=POPULATION_DATASET)
    if dataset is None:
        raise RunFailed(f"population dataset {POPULATION_DATASET} is not loaded")
    population = await repo.population_bands(
        session,
        dataset_id=dataset.id,
        area_codes=sorted(set(cells.home_lad_codes)),
        year_from=run.base_year,
        year_to=run.base_year + run.horizon,
    )
    rates = await population_repo.prevalence_rates(
        session, measure=reference_files.DEMENTIA_MEASURE
    )
    agreements = await agreements_repo.active_agreements_for_ics(session, ics_code=ics_code, on=on)
    params = await _parameters(session, run, sorted(set(cells.role_codes)))
    return InputRows(
        cells=cells,
        population_dataset_id=dataset.id,
        population=population,
        prevalence=rates,
        agreements=agreements,
        params=params,
    )


async def load_inputs(session: AsyncSession, run: ProjectionRun, ics_code: str) -> LoadedInputs:
    """One ICS's cells from the latest current returns at the base date, with population."""
    return build_inputs(await read_inputs(session, run, ics_code), run)


def _index(values: Iterable[T]) -> dict[T, int]:
    return {value: i for i, value in enumerate(values)}


def _cell_figures(cells: repo.InputCells) -> tuple[dict[str, FloatArray], FloatArray]:
    """Each cell's figures (missing as 0) and its headcount by workforce age band."""
    return {name: cells.figure(name) for name in CELL_FIGURES}, cells.figures_of(AGE_COLUMNS)


def _positions(values: Sequence[str], vocabulary: Sequence[str], what: str) -> IntArray:
    """Each value's position in the vocabulary; a value outside it fails the run."""
    words = np.array(vocabulary, dtype=str)
    given = np.array(values, dtype=str)
    unknown = ~np.isin(given, words)
    if unknown.any():
        names = ", ".join(sorted(set(given[unknown].tolist())))
        raise RunFailed(f"population with an unknown {what}: {names}")
    order = np.argsort(words)
    positions: IntArray = order[np.searchsorted(words[order], given)]
    return positions


def population_array(
    bands: repo.PopulationBands,
    lad_codes: list[str],
    *,
    base_year: int,
    horizon: int,
) -> FloatArray:
    """Persons by LAD, year, sex and age band; every LAD needs every year of the run."""
    population = np.zeros((len(lad_codes), horizon + 1, 2, len(AGE_BANDS)))
    seen = np.zeros((len(lad_codes), horizon + 1), dtype=bool)
    if len(bands.persons):
        lad = _positions(bands.area_codes, lad_codes, "area")
        year = np.array(bands.years, dtype=np.int64) - base_year
        population[lad, year, _positions(bands.sexes, SEXES, "sex")] = bands.persons
        seen[lad, year] = True
    missing = [lad_codes[a] for a in np.flatnonzero(~seen.all(axis=1)).tolist()]
    if missing:
        raise RunFailed(f"no population for {', '.join(missing)} over the run's years")
    return population


def prevalence_inputs(rates: Sequence[PrevalenceRate]) -> dict[str, Any]:
    """Dementia prevalence by sex and band, and the log-scale spread of its 95% interval (which
    enters the Monte Carlo for roles driven by dementia); nothing when no rates are loaded."""
    if not rates:
        return {}
    sex_index = _index(SEXES)
    prevalence = np.zeros((2, len(_PREVALENCE_BANDS)))
    lower = np.zeros_like(prevalence)
    upper = np.zeros_like(prevalence)
    for rate in rates:
        sex = rate.sex[:1].upper()
        if sex in sex_index and rate.age_band in _PREVALENCE_BANDS:
            position = (sex_index[sex], _PREVALENCE_BANDS.index(rate.age_band))
            prevalence[position] = rate.rate
            lower[position] = rate.lower
            upper[position] = rate.upper
    return {
        "dementia_prevalence": prevalence,
        "dementia_prevalence_sd_log": prevalence_sd_log(lower, upper),
    }


def sharing_agreements(
    active: Iterable[ActiveAgreement], org_index: dict[uuid.UUID, int]
) -> list[SharingAgreement]:
    """The agreements with at least one party among the cells' organisations and a role in
    scope, with each lending party's FTE cap by role."""
    agreements = []
    for agreement in active:
        parties = [org for org in agreement.party_organisation_ids if org in org_index]
        scope_roles = sorted({cap.role_code for cap in agreement.caps})
        if not parties or not scope_roles:
            continue
        caps = np.zeros((len(parties), len(scope_roles)))
        for cap in agreement.caps:
            if cap.lending_organisation_id in parties:
                caps[
                    parties.index(cap.lending_organisation_id), scope_roles.index(cap.role_code)
                ] = cap.fte_cap
        agreements.append(
            SharingAgreement(
                key=str(agreement.id),
                party_orgs=tuple(org_index[org] for org in parties),
                role_codes=tuple(scope_roles),
                lender_cap_fte=caps,
            )
        )
    return agreements


def build_inputs(rows: InputRows, run: ProjectionRun) -> LoadedInputs:
    """The model's arrays from what was read: one cell per return line, indexed by
    organisation, role and home LAD (each sorted), and the run's fingerprint inputs."""
    cells = rows.cells
    role_codes = sorted(set(cells.role_codes))
    role_index = _index(role_codes)
    lad_codes = sorted(set(cells.home_lad_codes))
    lad_index = _index(lad_codes)
    org_area = np.array([lad_index[code] for code in cells.home_lad_codes], dtype=np.int64)
    values, by_age = _cell_figures(cells)
    population = population_array(
        rows.population, lad_codes, base_year=run.base_year, horizon=run.horizon
    )
    inputs = ProjectionInputs(
        base_year=run.base_year,
        role_codes=tuple(role_codes),
        cell_org=cells.cell_organisation.copy(),
        cell_role=np.array([role_index[code] for code in cells.role_codes], dtype=np.int64),
        cell_area=org_area[cells.cell_organisation],
        cell_footprint=np.zeros(len(cells), dtype=np.int64),
        headcount_by_age=by_age,
        population=population,
        agreements=tuple(sharing_agreements(rows.agreements, _index(cells.organisation_ids))),
        unpaid_care_hours_per_week=unpaid_care_hours(lad_codes),
        **values,
        **prevalence_inputs(rows.prevalence),
    )
    inputs = ensure_substitution_cells(inputs, rows.params)
    parts = {
        "returns": [list(item) for item in cells.returns],
        "population_dataset_id": str(rows.population_dataset_id),
        "scenario_id": str(run.scenario_id),
        "scenario_version": run.scenario_version,
        "model_version": MODEL_VERSION,
        "seed": run.seed,
        "iterations": run.iterations,
        "base_year": run.base_year,
        "horizon": run.horizon,
    }
    return LoadedInputs(
        inputs=inputs,
        params=rows.params,
        lad_codes=lad_codes,
        fingerprint_parts=parts,
        organisation_ids=list(cells.organisation_ids),
    )


# ---------------------------------------------------------------------------------------------
# Running the model off the loop, with heartbeats


def compute(
    loaded: LoadedInputs,
    *,
    iterations: int,
    seed: int,
    keep_iterations: bool | frozenset[str],
    progress: Callable[[float], None] | None = None,
) -> ProjectionOutputs:
    """The model on one ICB's inputs, at the levels a run stores (no I/O: CPU only)."""
    inputs = loaded.inputs
    aggregation = Aggregation.standard(inputs, np.zeros(inputs.n_areas, dtype=np.int64), 1)
    aggregation = Aggregation(
        levels=tuple(level for level in aggregation.levels if level.name in _ICB_LEVELS)
    )
    return project(
        inputs,
        loaded.params,
        iterations=iterations,
        seed=seed,
        aggregation=aggregation,
        keep_iterations=keep_iterations,
        explain=True,
        progress=progress,
    )


@dataclass(frozen=True)
class AreaResults:
    """What one ICB's model run stores: result series, explanation rows, per-draw rows, and
    (for an England part) its per-run totals by role."""

    series: repo.SeriesBlock
    explain: list[dict[str, Any]]
    draws: list[dict[str, Any]]
    totals: bytes | None


def compute_results(
    loaded: LoadedInputs,
    *,
    run_id: uuid.UUID,
    area_code: str,
    iterations: int,
    seed: int,
    part: bool,
    progress: Callable[[float], None] | None = None,
) -> AreaResults:
    """The model on one ICB and the rows it stores (with its per-run totals when it is a part
    of an England run), built where the model ran (a model process or a thread), so the
    worker's event loop only reads and writes."""
    outputs = compute(
        loaded, iterations=iterations, seed=seed, keep_iterations=DRAW_LEVELS, progress=progress
    )
    series, explain = icb_result_rows(run_id, area_code, loaded, outputs)
    return AreaResults(
        series=series,
        explain=explain,
        draws=icb_draw_rows(run_id, area_code, loaded, outputs),
        totals=run_totals(outputs) if part else None,
    )


async def _run_model(
    loaded: LoadedInputs,
    run: ProjectionRun,
    area_code: str,
    *,
    heartbeat: Callable[[float], Awaitable[None]],
    interval_s: float,
    pool: ModelPool | None = None,
) -> AreaResults:
    """The model off the event loop, beating meanwhile: in a model process when the worker
    has a pool (no progress within the model then), else in a thread that reports progress."""
    state = _Beat()

    def progress(share: float) -> None:
        state.progress = share

    job = partial(
        compute_results,
        loaded,
        run_id=run.id,
        area_code=area_code,
        iterations=run.iterations,
        seed=run.seed,
        part=run.scope == ENGLAND_CODE,
    )
    work = pool.run(job) if pool is not None else asyncio.to_thread(job, progress=progress)
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=interval_s)
        if done:
            return task.result()
        await heartbeat(state.progress)


def _heartbeat_interval(settings: Settings) -> float:
    return max(0.05, min(5.0, settings.run_heartbeat_timeout_s / 4))


def _level_series(
    level: LevelResult,
    area_of_group: Callable[[int], tuple[str, str]],
    groups: list[int],
) -> tuple[list[tuple[str, str, str]], FloatArray]:
    """One result series per measure and group: keys and (series, 4, years) figures."""
    keys: list[tuple[str, str, str]] = []
    blocks: list[FloatArray] = []
    names = [area_of_group(g) for g in groups]
    for measure in MEASURES:
        statistic = level.measure(measure)
        keys += [(area, role, measure) for area, role in names]
        blocks.append(_figures(statistic)[groups])
    return keys, np.concatenate(blocks)


def _figures(statistic: Statistic) -> FloatArray:
    """(groups, 4, years): principal, p10, p50 and p90 side by side, as a series stores them."""
    return np.stack([statistic.principal, statistic.p10, statistic.p50, statistic.p90], axis=1)


def _explain_rows(
    run_id: uuid.UUID,
    level: LevelResult,
    area_of_group: Callable[[int], tuple[str, str]],
    groups: list[int],
) -> list[dict[str, Any]]:
    explanation = level.explain
    if explanation is None:
        return []
    return [
        {
            "run_id": run_id,
            "area_code": area_of_group(g)[0],
            "role_code": area_of_group(g)[1],
            "contributions": explanation.as_dict(g),
            "total_change": float(explanation.total_change_fte[g]),
            "by_year": {
                "states": explanation.state_gaps_fte[:, g, :].tolist(),
                "gap_after_sharing": explanation.gap_after_sharing_fte[g].tolist(),
            },
            "base_split": {
                "gap": float(explanation.base_gap_fte[g]),
                "vacancies": float(explanation.base_vacancies_fte[g]),
                "sickness_absence": float(explanation.base_sickness_absence_fte[g]),
            },
        }
        for g in groups
    ]


def _sum_nested(parts: list[Any]) -> Any:
    """Element-wise sum of JSON values of one shape (numbers, lists, dicts); a part missing
    (a row written before it was kept) makes the sum missing."""
    if not parts or any(part is None for part in parts):
        return None
    total = parts[0]
    for part in parts[1:]:
        total = _add_nested(total, part)
    return total


def _add_nested(total: Any, part: Any) -> Any:
    if isinstance(part, dict):
        return {key: _add_nested(total.get(key), value) for key, value in part.items()}
    if isinstance(part, list):
        return [_add_nested(a, b) for a, b in zip(total, part, strict=True)]
    return float(total) + float(part)


def england_explain(
    run_id: uuid.UUID, explain_parts: Sequence[ProjectionExplain]
) -> list[dict[str, Any]]:
    """England's explanation rows by role: the ICBs' contributions, changes, years and
    base-year splits summed (each is a difference of sums over cells, so they add up)."""
    explain: dict[str, dict[str, Any]] = {}
    for row in explain_parts:
        entry = explain.setdefault(
            row.role_code,
            {
                "run_id": run_id,
                "area_code": ENGLAND_CODE,
                "role_code": row.role_code,
                "contributions": dict.fromkeys(EXPLAIN_COLUMNS, 0.0),
                "total_change": 0.0,
                "by_year": [],
                "base_split": [],
            },
        )
        for key, value in row.contributions.items():
            entry["contributions"][key] = entry["contributions"].get(key, 0.0) + value
        entry["total_change"] += row.total_change
        entry["by_year"].append(row.by_year)
        entry["base_split"].append(row.base_split)
    for entry in explain.values():
        entry["by_year"] = _sum_nested(entry["by_year"])
        entry["base_split"] = _sum_nested(entry["base_split"])
    return list(explain.values())


def england_fingerprint_parts(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """An England run's fingerprint inputs: its ICB parts' (the same but for their returns),
    with every part's returns."""
    return {
        **{k: v for k, v in parts[0].items() if k != "returns"},
        "returns": sorted(item for part in parts for item in part["returns"]),
    }


def _draws_blob(values: FloatArray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(values, dtype=np.float64), allow_pickle=False)
    return buffer.getvalue()


def _per_run(statistic: Statistic) -> FloatArray:
    """(N + 1, G, T): the principal, then every kept run."""
    principal = statistic.principal[None]
    runs = statistic.iterations
    return principal if runs is None else np.concatenate([principal, runs], axis=0)


def icb_draw_rows(
    run_id: uuid.UUID, ics_code: str, loaded: LoadedInputs, outputs: ProjectionOutputs
) -> list[dict[str, Any]]:
    """Per-draw totals of the ICB by role and of each of its LADs (all roles), for paired
    comparisons: one row per area, (DRAW_MEASURES, N + 1, roles, years) float64."""
    roles = list(loaded.inputs.role_codes)
    by_role = outputs.level("icb_role")
    by_lad = outputs.level("lad")
    rows = [
        {
            "run_id": run_id,
            "area_code": ics_code,
            "role_codes": roles,
            "values": _draws_blob(np.stack([_per_run(by_role.measure(m)) for m in DRAW_MEASURES])),
        }
    ]
    for a in sorted(set(loaded.inputs.cell_area.tolist())):
        rows.append(
            {
                "run_id": run_id,
                "area_code": loaded.lad_codes[a],
                "role_codes": [ALL_ROLES],
                "values": _draws_blob(
                    np.stack([_per_run(by_lad.measure(m))[:, a : a + 1, :] for m in DRAW_MEASURES])
                ),
            }
        )
    return rows


def icb_result_rows(
    run_id: uuid.UUID, ics_code: str, loaded: LoadedInputs, outputs: ProjectionOutputs
) -> tuple[repo.SeriesBlock, list[dict[str, Any]]]:
    """Result series and explanation rows for the ICB and its LADs, by role and for all
    roles."""
    inputs = loaded.inputs
    roles = inputs.role_codes
    n_roles = len(roles)
    first_year = int(outputs.years[0])
    lads = loaded.lad_codes
    present_lad_roles = sorted(set((inputs.cell_area * n_roles + inputs.cell_role).tolist()))
    present_lads = sorted(set(inputs.cell_area.tolist()))
    present_roles = sorted(set(inputs.cell_role.tolist()))
    layouts: dict[str, tuple[Callable[[int], tuple[str, str]], list[int]]] = {
        "lad_role": (lambda g: (lads[g // n_roles], roles[g % n_roles]), present_lad_roles),
        "lad": (lambda g: (lads[g], ALL_ROLES), present_lads),
        "icb_role": (lambda g: (ics_code, roles[g]), present_roles),
        "icb": (lambda g: (ics_code, ALL_ROLES), [0]),
    }
    keys: list[tuple[str, str, str]] = []
    figures: list[FloatArray] = []
    explain: list[dict[str, Any]] = []
    for name, (area_of_group, groups) in layouts.items():
        level = outputs.level(name)
        level_keys, level_figures = _level_series(level, area_of_group, groups)
        keys += level_keys
        figures.append(level_figures)
        explain.extend(_explain_rows(run_id, level, area_of_group, groups))
    series = repo.SeriesBlock(
        run_id=run_id, first_year=first_year, keys=keys, figures=np.concatenate(figures)
    )
    return series, explain


# What an England part keeps per run beyond its ICB's per-draw row (demand, supply and gap
# after sharing, DRAW_MEASURES): the gap is demand minus supply, as at every level of the
# model, so these two complete every measure England's percentiles need.
PART_TOTAL_MEASURES: tuple[str, ...] = ("shortfall_fte", "shortfall_after_sharing_fte")


def run_totals(outputs: ProjectionOutputs) -> bytes:
    """(PART_TOTAL_MEASURES, runs, roles, years) per-run ICB totals by role, as np.save
    bytes."""
    level = outputs.level("icb_role")
    return _draws_blob(np.stack([_per_run(level.measure(m)) for m in PART_TOTAL_MEASURES]))


def part_measures(draws: FloatArray, totals: FloatArray) -> FloatArray:
    """Every measure (MEASURES order) per run of an ICB by role, from its per-draw row
    (DRAW_MEASURES) and its part's totals (PART_TOTAL_MEASURES; all of MEASURES for a part
    stored before the two were split)."""
    if totals.shape[0] == len(MEASURES):
        return totals
    by_name = dict(zip(DRAW_MEASURES, draws, strict=True))
    by_name.update(zip(PART_TOTAL_MEASURES, totals, strict=True))
    by_name["gap_fte"] = by_name["demand_fte"] - by_name["supply_fte"]
    return np.stack([by_name[m] for m in MEASURES])


def _load_totals(blob: bytes) -> FloatArray:
    array: FloatArray = np.load(io.BytesIO(blob), allow_pickle=False)
    return array


# ---------------------------------------------------------------------------------------------
# Jobs


@dataclass(frozen=True)
class JobEnv:
    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings
    send_pending: SendPending | None = None
    # Processes for England parts' models (a worker's pool); None runs them in a thread.
    model_pool: ModelPool | None = None


async def _commit_and_send(env: JobEnv, session: AsyncSession) -> None:
    pending = outbox.take_pending(session)
    await session.commit()
    if pending and env.send_pending is not None:
        try:
            await env.send_pending(pending)
        except Exception:
            log.exception("sending follow-up jobs failed; the relay will retry")


async def _fail_run(
    env: JobEnv, run_id: uuid.UUID, message: str, *, failed_part: str | None = None
) -> bool:
    return await projection_runs.fail_run(
        env.sessionmaker,
        run_id,
        message,
        failed_part=failed_part,
        send_pending=env.send_pending,
    )


@dataclass(frozen=True)
class _Ended:
    """What the success metric and log line need, read while the run row was at hand."""

    run_id: uuid.UUID
    scope: str
    automatic: bool
    started_at: datetime | None

    @classmethod
    def of(cls, run: ProjectionRun, started_at: datetime | None) -> _Ended:
        return cls(run.id, run.scope, run.requested_by_key_id is None, started_at)


def _succeeded(ended: _Ended) -> None:
    started_at = ended.started_at
    seconds = None if started_at is None else (utcnow() - started_at).total_seconds()
    metrics.run_ended(
        scope=ended.scope, status=RunStatus.succeeded, seconds=seconds, automatic=ended.automatic
    )
    log.info(
        "projection run succeeded",
        extra={"run_id": str(ended.run_id), "scope": ended.scope, "seconds": seconds},
    )


async def _send_after(env: JobEnv, session: AsyncSession) -> None:
    """Send the outbox rows a committed transaction wrote (webhooks); the relay's timer
    sends them otherwise."""
    pending = outbox.take_pending(session)
    if pending and env.send_pending is not None:
        try:
            await env.send_pending(pending)
        except Exception:
            log.exception("sending follow-up jobs failed; the relay will retry")


async def run_projection(env: JobEnv, *, run_id: uuid.UUID, attempt: int) -> str:
    """Run (an ICB) or fan out (England) one projection run; a no-op once it has finished."""
    async with env.sessionmaker() as session:
        run = await repo.get_run(session, run_id=run_id, lock=True)
        if run is None:
            return "missing"
        if run.status in (RunStatus.succeeded, RunStatus.failed, RunStatus.cancelled):
            finished = str(run.status)  # read before the rollback expires the row
            await session.rollback()
            return finished
        if attempt < run.attempts:
            # A newer attempt was queued (the reaper re-queued this run): leave it to that one.
            await session.rollback()
            return "superseded"
        now = utcnow()
        started_at = run.started_at or now
        await repo.update_run(
            session,
            run_id=run_id,
            status=RunStatus.running,
            attempts=attempt,
            started_at=started_at,
            heartbeat_at=now,
            error=None,
        )
        if run.scope == ENGLAND_CODE:
            icbs = await repo.ics_with_returns(session, on=base_date(run.base_year))
            if not icbs:
                await session.rollback()
                await _fail_run(env, run_id, "no current workforce returns at the base date")
                return "failed"
            for code in await repo.add_missing_parts(session, run_id=run_id, ics_codes=icbs):
                await outbox.add(
                    session,
                    job_name=JobName.project_ics,
                    job_id=project_ics_job_id(run_id, code, 1),
                    payload=ProjectIcsPayload(run_id=run_id, ics_code=code).model_dump(mode="json"),
                )
            await _commit_and_send(env, session)
            return "fanned_out"
        await session.commit()
        snapshot = run
        ended = _Ended.of(run, started_at)

    started = time.perf_counter()
    try:
        async with env.sessionmaker() as session:
            loaded = await load_inputs(session, snapshot, snapshot.scope)
        loaded_s = time.perf_counter() - started

        async def beat(progress: float) -> None:
            async with transaction(env.sessionmaker) as session:
                await repo.update_run(
                    session, run_id=run_id, heartbeat_at=utcnow(), progress=round(progress, 4)
                )

        results = await _run_model(
            loaded,
            snapshot,
            snapshot.scope,
            heartbeat=beat,
            interval_s=_heartbeat_interval(env.settings),
        )
        model_s = time.perf_counter() - started - loaded_s
    except (RunFailed, InputError, ParameterError) as exc:
        await _fail_run(env, run_id, str(exc))
        return "failed"

    write_started = time.perf_counter()
    async with transaction(env.sessionmaker) as session:
        current = await repo.get_run(session, run_id=run_id, lock=True)
        if current is None or current.status != RunStatus.running or current.attempts != attempt:
            # Ended meanwhile, or the reaper gave the run to a newer attempt.
            return "superseded" if current is None else str(current.status)
        # Anything an interrupted attempt left goes first, so there is one result set.
        await repo.delete_results(session, run_id=run_id)
        await repo.write_results(session, results.series)
        await repo.write_explain(session, results.explain)
        await repo.write_draws(session, results.draws)
        await repo.update_run(
            session,
            run_id=run_id,
            status=RunStatus.succeeded,
            progress=1.0,
            heartbeat_at=utcnow(),
            finished_at=utcnow(),
            model_version=MODEL_VERSION,
            fingerprint=fingerprint_of(loaded.fingerprint_parts),
            fingerprint_parts=loaded.fingerprint_parts,
            timings={
                "load_s": round(loaded_s, 3),
                "model_s": round(model_s, 3),
                "write_s": round(time.perf_counter() - write_started, 3),
                "series": len(results.series),
            },
        )
        await webhook_events.run_succeeded(session, current)
    await _send_after(env, session)
    _succeeded(ended)
    return "succeeded"


async def project_ics(env: JobEnv, *, run_id: uuid.UUID, ics_code: str, attempt: int) -> str:
    """One ICB of an England run: its results and per-run totals; the last part queues the
    combine step. Its transactions lock its own part row only, except the count at the end,
    which locks the run row only."""
    async with env.sessionmaker() as session:
        run = await repo.get_run(session, run_id=run_id)
        part = await repo.get_part(session, run_id=run_id, ics_code=ics_code, lock=True)
        if run is None or part is None:
            await session.rollback()
            return "missing"
        if part.status in (RunStatus.succeeded, RunStatus.failed, RunStatus.cancelled):
            part_status = str(part.status)
            await session.rollback()
            if part_status == RunStatus.succeeded:
                # A retry after the part's results were committed but before it was counted
                # (the count is idempotent).
                await part_finished(env, run_id=run_id)
            return part_status
        if run.status != RunStatus.running:
            # The run has ended (failed): this part is no longer wanted.
            await repo.update_part(
                session,
                run_id=run_id,
                ics_code=ics_code,
                status=RunStatus.cancelled,
                finished_at=utcnow(),
            )
            await session.commit()
            return "cancelled"
        if attempt < part.attempts:
            await session.rollback()
            return "superseded"
        await repo.update_part(
            session,
            run_id=run_id,
            ics_code=ics_code,
            status=RunStatus.running,
            attempts=attempt,
            heartbeat_at=utcnow(),
        )
        await session.commit()
        snapshot = run

    marks = [time.perf_counter()]
    try:
        async with env.sessionmaker() as session:
            loaded = await load_inputs(session, snapshot, ics_code)
            lads = await repo.lads_of(session, icb_code=ics_code)
        marks.append(time.perf_counter())

        async def beat(progress: float) -> None:
            del progress  # an England run's progress counts finished parts
            # Two transactions of one row each: a part's beat never holds its part row while
            # waiting for the run row.
            async with transaction(env.sessionmaker) as session:
                await repo.update_part(
                    session, run_id=run_id, ics_code=ics_code, heartbeat_at=utcnow()
                )
            async with transaction(env.sessionmaker) as session:
                await repo.update_run(session, run_id=run_id, heartbeat_at=utcnow())

        results = await _run_model(
            loaded,
            snapshot,
            ics_code,
            heartbeat=beat,
            interval_s=_heartbeat_interval(env.settings),
            pool=env.model_pool,
        )
        marks.append(time.perf_counter())
    except (RunFailed, InputError, ParameterError) as exc:
        await _fail_run(env, run_id, f"{ics_code}: {exc}", failed_part=ics_code)
        return "failed"

    async with env.sessionmaker() as session:
        current = await repo.get_part(session, run_id=run_id, ics_code=ics_code, lock=True)
        if current is None or current.status != RunStatus.running or current.attempts != attempt:
            # Ended meanwhile (the run failed, or the reaper gave this part to a newer attempt).
            outcome = "superseded" if current is None else str(current.status)
            await session.rollback()
            return outcome
        areas = sorted({ics_code, *lads, *loaded.lad_codes})
        # Anything an interrupted attempt of this part left goes first: one result set.
        await repo.delete_results(session, run_id=run_id, area_codes=areas)
        await repo.write_results(session, results.series)
        await repo.write_explain(session, results.explain)
        await repo.write_draws(session, results.draws)
        await repo.update_part(
            session,
            run_id=run_id,
            ics_code=ics_code,
            status=RunStatus.succeeded,
            finished_at=utcnow(),
            heartbeat_at=utcnow(),
            role_codes=list(loaded.inputs.role_codes),
            fingerprint_parts=loaded.fingerprint_parts,
            run_totals=results.totals,
        )
        await session.commit()
    marks.append(time.perf_counter())
    await part_finished(env, run_id=run_id)
    marks.append(time.perf_counter())
    steps = ("load_s", "model_s", "write_s", "count_s")
    log.info(
        "projection part stored",
        extra={
            "run_id": str(run_id),
            "ics_code": ics_code,
            "series": len(results.series),
            **{
                step: round(end - start, 3)
                for step, (start, end) in zip(steps, pairwise(marks), strict=True)
            },
        },
    )
    return "succeeded"


async def part_finished(env: JobEnv, *, run_id: uuid.UUID) -> None:
    """Count an England run's finished parts under its run row's lock (and that lock only); the
    first to see them all done queues the combine step, exactly once.

    Every part commits its own success before it gets here, and under READ COMMITTED the count
    after the lock sees every commit made before it, so the last part to arrive always sees
    all of them. A worker that dies between the two leaves the count to the reaper.
    """
    async with env.sessionmaker() as session:
        run = await repo.get_run(session, run_id=run_id, lock=True)
        if run is None or run.status != RunStatus.running:
            await session.rollback()
            return
        counts = await repo.part_counts(session, run_id=run_id)
        total = sum(counts.values())
        done = counts.get(RunStatus.succeeded, 0)
        values: dict[str, Any] = {
            "progress": round(0.95 * done / max(total, 1), 4),
            "heartbeat_at": utcnow(),
        }
        if done == total and run.combine_attempts == 0:
            values["combine_attempts"] = 1
            await queue_combine(session, run_id=run_id, attempt=1)
        await repo.update_run(session, run_id=run_id, **values)
        await _commit_and_send(env, session)


async def queue_combine(session: AsyncSession, *, run_id: uuid.UUID, attempt: int) -> None:
    await outbox.add(
        session,
        job_name=JobName.combine_projection,
        job_id=combine_projection_job_id(run_id, attempt),
        payload=RunProjectionPayload(run_id=run_id, attempt=attempt).model_dump(mode="json"),
    )


def england_totals(
    parts: list[tuple[list[str], bytes, bytes]],
) -> tuple[list[str], FloatArray]:
    """England's per-run totals by role, (measures, runs, roles, years): its ICB parts'
    summed draw by draw. Each part is (its roles, its ICB's per-draw row, its totals)."""
    roles = sorted({code for role_codes, _, _ in parts for code in role_codes})
    role_index = {code: i for i, code in enumerate(roles)}
    total: FloatArray | None = None
    for role_codes, draws, totals in parts:
        array = part_measures(_load_totals(draws), _load_totals(totals))
        if total is None:
            total = np.zeros((array.shape[0], array.shape[1], len(roles), array.shape[3]))
        total[:, :, [role_index[code] for code in role_codes], :] += array
    assert total is not None
    return roles, total


def england_rows(
    run_id: uuid.UUID, roles: list[str], total: FloatArray, *, first_year: int
) -> repo.SeriesBlock:
    """England's result series: percentiles of the summed draws, by role and over all
    roles."""
    keys: list[tuple[str, str, str]] = []
    figures: list[FloatArray] = []
    for m, measure in enumerate(MEASURES):
        by_role = summarise_runs(total[m])
        overall = summarise_runs(total[m].sum(axis=1, keepdims=True))
        for statistic, codes in ((by_role, roles), (overall, [ALL_ROLES])):
            keys += [(ENGLAND_CODE, code, measure) for code in codes]
            figures.append(_figures(statistic))
    return repo.SeriesBlock(
        run_id=run_id, first_year=first_year, keys=keys, figures=np.concatenate(figures)
    )


async def combine_projection(env: JobEnv, *, run_id: uuid.UUID, attempt: int) -> str:
    """England from its ICB parts: summed per-run totals, then percentiles of the sums."""
    started = time.perf_counter()
    async with env.sessionmaker() as session:
        run = await repo.get_run(session, run_id=run_id)
        if run is None or run.status != RunStatus.running:
            return "missing" if run is None else str(run.status)
        if attempt < run.combine_attempts:
            return "superseded"
        parts = await repo.parts_of(session, run_id=run_id)
        explain_parts = await repo.explain_rows(
            session, run_id=run_id, area_codes=[part.ics_code for part in parts]
        )
        icb_draws = await repo.draws_of_areas(
            session, run_id=run_id, area_codes=[part.ics_code for part in parts]
        )
    if not parts or any(
        part.status != RunStatus.succeeded
        or part.run_totals is None
        or part.ics_code not in icb_draws
        for part in parts
    ):
        return "waiting"
    async with transaction(env.sessionmaker) as session:
        await repo.update_run(session, run_id=run_id, heartbeat_at=utcnow())
    # NumPy work off the event loop, so the worker's other jobs keep beating meanwhile.
    roles, total = await asyncio.to_thread(
        england_totals,
        [
            (part.role_codes, icb_draws[part.ics_code], part.run_totals)
            for part in parts
            if part.run_totals is not None
        ],
    )
    rows = await asyncio.to_thread(
        england_rows,
        run_id,
        roles,
        total,
        first_year=run.base_year,
    )
    # Contributions add up over ICBs, since each is a difference of sums over cells.
    explain = england_explain(run_id, explain_parts)
    fingerprint_parts = england_fingerprint_parts([part.fingerprint_parts for part in parts])
    async with transaction(env.sessionmaker) as session:
        current = await repo.get_run(session, run_id=run_id, lock=True)
        if current is None or current.status != RunStatus.running:
            return "done"
        ended = _Ended.of(current, current.started_at)
        await repo.delete_results(session, run_id=run_id, area_codes=[ENGLAND_CODE])
        await repo.write_results(session, rows)
        await repo.write_explain(session, explain)
        await repo.write_draws(
            session,
            [
                {
                    "run_id": run_id,
                    "area_code": ENGLAND_CODE,
                    "role_codes": roles,
                    "values": _draws_blob(total[[MEASURES.index(m) for m in DRAW_MEASURES]]),
                }
            ],
        )
        await repo.update_run(
            session,
            run_id=run_id,
            status=RunStatus.succeeded,
            progress=1.0,
            finished_at=utcnow(),
            heartbeat_at=utcnow(),
            model_version=MODEL_VERSION,
            fingerprint=fingerprint_of(fingerprint_parts),
            fingerprint_parts=fingerprint_parts,
            timings={
                "combine_s": round(time.perf_counter() - started, 3),
                "parts": len(parts),
                "total_s": round((utcnow() - (ended.started_at or utcnow())).total_seconds(), 3),
            },
        )
        await webhook_events.run_succeeded(session, current)
    await _send_after(env, session)
    _succeeded(ended)
    return "succeeded"
