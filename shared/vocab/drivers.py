"""Demand drivers: what a role's demand grows with."""

from __future__ import annotations

from enum import StrEnum


class DemandDriver(StrEnum):
    population_all = "population_all"
    population_0_17 = "population_0_17"
    population_18_64 = "population_18_64"
    population_65_plus = "population_65_plus"
    population_75_plus = "population_75_plus"
    population_85_plus = "population_85_plus"
    dementia_65_plus = "dementia_65_plus"
    custom = "custom"


CUSTOM_DRIVER = DemandDriver.custom.value
# The drivers built from the population projections (all but custom), in the model's order.
POPULATION_DRIVERS: tuple[str, ...] = tuple(
    d.value for d in DemandDriver if d != DemandDriver.custom
)
