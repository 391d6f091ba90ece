from __future__ import annotations

from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base


class AreaType(StrEnum):
    country = "country"  # E92
    icb = "icb"  # E54: the 42 Integrated Care Boards, one per ICS
    county = "county"  # E10: shire counties, carried because the ONS projections include them
    lad = "lad"  # E06-E09: local authority districts


class Area(Base):
    """An ONS geography; LADs point at their ICB by the ONS best-fit lookup."""

    __tablename__ = "areas"

    code: Mapped[str] = mapped_column(String(9), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    type: Mapped[AreaType] = mapped_column(String(10), index=True)
    parent_code: Mapped[str | None] = mapped_column(
        ForeignKey("areas.code"), default=None, index=True
    )
    nhs_code: Mapped[str | None] = mapped_column(String(3), default=None)
    region_code: Mapped[str | None] = mapped_column(String(9), default=None)
    region_name: Mapped[str | None] = mapped_column(String(100), default=None)
