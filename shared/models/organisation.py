from __future__ import annotations

from datetime import date
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base, Timestamps, UUIDPrimaryKey


class OrganisationKind(StrEnum):
    nhs_trust = "nhs_trust"
    local_authority = "local_authority"
    care_provider = "care_provider"
    primary_care = "primary_care"
    voluntary = "voluntary"
    ambulance = "ambulance"
    other = "other"


class OrganisationSector(StrEnum):
    health = "health"
    social_care = "social_care"
    local_government = "local_government"
    voluntary = "voluntary"


class Organisation(UUIDPrimaryKey, Timestamps, Base):
    """A partner organisation; its home LAD places it in an ICS."""

    __tablename__ = "organisations"

    name: Mapped[str] = mapped_column(String(300), index=True)
    kind: Mapped[OrganisationKind] = mapped_column(String(20), index=True)
    sector: Mapped[OrganisationSector] = mapped_column(String(20), index=True)
    ods_code: Mapped[str | None] = mapped_column(String(10), unique=True, default=None)
    cqc_location_id: Mapped[str | None] = mapped_column(String(20), unique=True, default=None)
    home_lad_code: Mapped[str] = mapped_column(ForeignKey("areas.code"), index=True)
    ics_code: Mapped[str] = mapped_column(ForeignKey("areas.code"), index=True)
    opened_on: Mapped[date | None] = mapped_column(default=None)
    version: Mapped[int] = mapped_column(default=1)
