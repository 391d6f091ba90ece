"""Areas (ONS geography) and their population, as the API shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.models.area import AreaType
from shared.reference.bands import AgeGroup

Sex = Literal["F", "M", "all"]


class AreaRef(BaseModel):
    """An area named by another: code, name and type."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    type: AreaType


class AreaRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str = Field(description="ONS code: E92 England, E54 ICB, E10 county, E06-E09 LAD")
    name: str
    type: AreaType
    parent_code: str | None = Field(
        description="A LAD's best-fit ICB; England for ICBs and counties; none for England"
    )
    nhs_code: str | None = Field(description="An ICB's NHS three-character code")
    region_code: str | None = Field(description="A LAD's ONS region (E12)")
    region_name: str | None


class AreaDetail(AreaRead):
    parent: AreaRef | None
    children: list[AreaRef] = Field(
        description="Areas whose parent this is: an ICB's LADs, England's ICBs and counties"
    )


class PopulationDatasetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    source: str
    base_year: int
    first_year: int
    last_year: int
    row_count: int
    loaded_at: datetime


class PopulationYear(BaseModel):
    year: int
    persons: int = Field(description="Persons of the sex asked for (both when sex=all)")
    female: int | None = Field(description="Females; none when sex=M")
    male: int | None = Field(description="Males; none when sex=F")


class PopulationSeries(BaseModel):
    """Persons per year for one age group or band."""

    age_group: AgeGroup | None = Field(description="The age group, unless a band was asked for")
    age_band: str | None = Field(description="The five-year band, if one was asked for")
    method: str = Field(description="How the figures were made from the dataset's bands")
    years: list[PopulationYear]


class AreaPopulation(BaseModel):
    area: AreaRef
    dataset: str
    age_group: AgeGroup | None = Field(description="The (first) age group, unless a band was")
    age_band: str | None = Field(description="The (first) five-year band asked for, if any")
    sex: Sex
    method: str = Field(description="How the figures were made from the dataset's bands")
    years: list[PopulationYear] = Field(description="Persons per year (whole people)")
    series: list[PopulationSeries] = Field(
        default_factory=list,
        description="One entry per group and band asked for (repeat `group` or `age_band`), "
        "in the order asked; the first is also given at the top level",
    )


class NeedCell(BaseModel):
    year: int
    sex: str = Field(description="F or M")
    age_band: str
    population: int = Field(description="Persons in the band (the population dataset)")
    rate: float = Field(description="Share of the band with the need")
    persons: float = Field(description="population x rate")
    persons_lower: float | None = Field(description="population x the rate's lower limit")
    persons_upper: float | None = Field(description="population x the rate's upper limit")


class NeedTotal(BaseModel):
    year: int
    sex: str = Field(description="F, M or all")
    persons: float
    persons_lower: float | None = Field(
        description="Sum of the bands' lower limits (all bands at their limit together)"
    )
    persons_upper: float | None


class AreaNeeds(BaseModel):
    area: AreaRead
    indicator: str
    title: str
    population: str = Field(description="Who is counted")
    interval: str | None = Field(description="What persons_lower/persons_upper are")
    dataset: str = Field(description="The population dataset used")
    source: str
    licence: str
    totals: list[NeedTotal]
    cells: list[NeedCell]
