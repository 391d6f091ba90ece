from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base, UUIDPrimaryKey, utcnow


class PopulationDataset(UUIDPrimaryKey, Base):
    """A named set of population figures (a projection or a variant); never overwritten."""

    __tablename__ = "population_datasets"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    source: Mapped[str] = mapped_column(Text)
    base_year: Mapped[int]
    first_year: Mapped[int]
    last_year: Mapped[int]
    row_count: Mapped[int] = mapped_column(default=0)
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Population(Base):
    """Persons by dataset, area, year, sex (F/M) and five-year age band (0-4 ... 90+).

    No foreign keys: per-row checks made the bulk load of a dataset three times slower on
    PostgreSQL. The one writer, services.domain.reference.loader, checks every area code against
    `areas` and writes a dataset's rows in the transaction that creates or replaces it, and
    removes them with it.
    """

    __tablename__ = "population"
    __table_args__ = (Index("ix_population_area_year", "area_code", "year"),)

    dataset_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    area_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    sex: Mapped[str] = mapped_column(String(1), primary_key=True)
    age_band: Mapped[str] = mapped_column(String(5), primary_key=True)
    persons: Mapped[int]


class PrevalenceRate(Base):
    """A condition's prevalence by age band and sex, with its 95% interval."""

    __tablename__ = "prevalence_rates"

    measure: Mapped[str] = mapped_column(String(50), primary_key=True)
    age_band: Mapped[str] = mapped_column(String(5), primary_key=True)
    sex: Mapped[str] = mapped_column(String(1), primary_key=True)
    rate: Mapped[float]
    lower: Mapped[float]
    upper: Mapped[float]
    source: Mapped[str] = mapped_column(Text)


class PopulationGroupTotal(Base):
    """Persons in an age group as published with a dataset, for groups that 5-year bands cannot
    give exactly (ONS publishes 0-17 from single years of age; the bands only have 15-19).
    Written with the dataset's rows by the same loader, so like them it has no foreign keys."""

    __tablename__ = "population_group_totals"

    dataset_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    area_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    age_group: Mapped[str] = mapped_column(String(10), primary_key=True)
    persons: Mapped[int]
