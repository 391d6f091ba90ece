"""Small, hand-checkable inputs for the projection model tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from services.projector.model.inputs import (
    FloatArray,
    IntArray,
    ProjectionInputs,
    SharingAgreement,
)


def flat_population(areas: int, years: int, persons_per_band: float = 100.0) -> FloatArray:
    """(areas, years, 2, 19) with the same persons in every band, sex and year."""
    return np.full((areas, years, 2, 19), persons_per_band)


def growing_population(areas: int, years: int, seed: int = 0) -> FloatArray:
    """Population whose older bands grow faster, different in every area."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(500.0, 3000.0, (areas, 1, 2, 19))
    growth = 1.0 + rng.uniform(-0.005, 0.005, (areas, 1, 1, 1)) + np.linspace(0.0, 0.03, 19)
    steps = np.arange(years, dtype=np.float64)[None, :, None, None]
    population: FloatArray = base * growth**steps
    return population


def cell_inputs(
    *,
    orgs: Sequence[int],
    roles: Sequence[int],
    areas: Sequence[int],
    role_codes: Sequence[str],
    population: FloatArray,
    headcount_by_age: FloatArray,
    fte_in_post: Sequence[float] | None = None,
    vacant_fte: Sequence[float] | None = None,
    starters_12m: Sequence[float] | None = None,
    leavers_12m: Sequence[float] | None = None,
    sickness_days_12m: Sequence[float] | None = None,
    agency_fte: Sequence[float] | None = None,
    footprints: Sequence[int] | None = None,
    agreements: tuple[SharingAgreement, ...] = (),
    population_variant: FloatArray | None = None,
) -> ProjectionInputs:
    n_cells = len(orgs)
    headcount = np.asarray(headcount_by_age, dtype=np.float64).sum(axis=1)

    def vector(values: Sequence[float] | None, default: FloatArray) -> FloatArray:
        return default if values is None else np.asarray(values, dtype=np.float64)

    return ProjectionInputs(
        base_year=2024,
        role_codes=tuple(role_codes),
        cell_org=np.asarray(orgs, dtype=np.int64),
        cell_role=np.asarray(roles, dtype=np.int64),
        cell_area=np.asarray(areas, dtype=np.int64),
        fte_in_post=vector(fte_in_post, headcount.copy()),
        vacant_fte=vector(vacant_fte, np.zeros(n_cells)),
        headcount=headcount,
        headcount_by_age=np.asarray(headcount_by_age, dtype=np.float64),
        starters_12m=vector(starters_12m, np.zeros(n_cells)),
        leavers_12m=vector(leavers_12m, np.zeros(n_cells)),
        sickness_days_12m=vector(sickness_days_12m, np.zeros(n_cells)),
        agency_fte=vector(agency_fte, np.zeros(n_cells)),
        cell_footprint=None if footprints is None else np.asarray(footprints, dtype=np.int64),
        population=population,
        population_variant=population_variant,
        agreements=agreements,
    )


def synthetic_icbs(
    *,
    icbs: int = 3,
    lads_per_icb: int = 2,
    orgs_per_lad: int = 3,
    roles: int = 4,
    years: int = 8,
    seed: int = 1,
    with_agreements: bool = True,
) -> tuple[ProjectionInputs, IntArray]:
    """Random but plausible inputs: every organisation has most roles; returns (inputs,
    area_icb). Footprints are ICBs; one agreement per ICB between its first organisations."""
    rng = np.random.default_rng(seed)
    n_lads = icbs * lads_per_icb
    area_icb = np.repeat(np.arange(icbs), lads_per_icb).astype(np.int64)
    org_area = np.repeat(np.arange(n_lads), orgs_per_lad)
    cells = [(o, r) for o in range(org_area.size) for r in range(roles) if rng.random() < 0.85]
    org = np.array([c[0] for c in cells], dtype=np.int64)
    role = np.array([c[1] for c in cells], dtype=np.int64)
    n_cells = org.size
    headcount = np.round(rng.uniform(0, 60, n_cells))
    by_age = rng.dirichlet(np.ones(6), n_cells) * headcount[:, None]
    agreements = []
    if with_agreements:
        for icb in range(icbs):
            parties = tuple(
                int(o) for o in np.flatnonzero(area_icb[org_area] == icb)[: orgs_per_lad + 1]
            )
            agreements.append(
                SharingAgreement(
                    key=f"agreement-{icb}",
                    party_orgs=parties,
                    role_codes=("role0", "role1"),
                    lender_cap_fte=np.full((len(parties), 2), 3.0),
                )
            )
    inputs = ProjectionInputs(
        base_year=2024,
        role_codes=tuple(f"role{r}" for r in range(roles)),
        cell_org=org,
        cell_role=role,
        cell_area=org_area[org].astype(np.int64),
        fte_in_post=headcount * rng.uniform(0.6, 1.0, n_cells),
        vacant_fte=headcount * rng.uniform(0.0, 0.3, n_cells),
        headcount=headcount,
        headcount_by_age=by_age,
        starters_12m=np.round(headcount * rng.uniform(0.05, 0.35, n_cells)),
        leavers_12m=np.round(headcount * rng.uniform(0.05, 0.35, n_cells)),
        sickness_days_12m=headcount * rng.uniform(0, 15, n_cells),
        agency_fte=headcount * rng.uniform(0, 0.1, n_cells),
        cell_footprint=area_icb[org_area[org]],
        population=growing_population(n_lads, years, seed),
        agreements=tuple(agreements),
    )
    return inputs, area_icb
