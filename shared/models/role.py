from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base, JSONType, Timestamps
from shared.vocab.drivers import DemandDriver


class RoleSector(StrEnum):
    health = "health"
    social_care = "social_care"
    primary_care = "primary_care"
    integrated = "integrated"
    voluntary = "voluntary"
    local_government = "local_government"


class RegistrationBody(StrEnum):
    NMC = "NMC"
    HCPC = "HCPC"
    GMC = "GMC"
    SWE = "SWE"
    GPhC = "GPhC"
    none = "none"


class Role(Timestamps, Base):
    """A role in the shared catalogue; `code` is stable and is what everything else refers to."""

    __tablename__ = "roles"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    sector: Mapped[RoleSector] = mapped_column(String(20), index=True)
    staff_group: Mapped[str] = mapped_column(String(100), index=True)
    pay_band: Mapped[str | None] = mapped_column(String(50), default=None)
    career_framework_level: Mapped[int | None] = mapped_column(default=None)
    registration_body: Mapped[RegistrationBody] = mapped_column(String(10), default="none")
    is_new_role: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    capabilities: Mapped[list[str]] = mapped_column(JSONType, default=list)
    training_requirements: Mapped[list[str]] = mapped_column(JSONType, default=list)
    default_demand_driver: Mapped[DemandDriver] = mapped_column(String(30))
    asc_wds_job_role: Mapped[str | None] = mapped_column(String(100), default=None)
    nhs_staff_group: Mapped[str | None] = mapped_column(String(100), default=None)
    snomed_ct_occupation: Mapped[str | None] = mapped_column(String(20), default=None)
    is_seeded: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(default=1)
