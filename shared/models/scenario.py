from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base, JSONType, Timestamps, UUIDPrimaryKey, utcnow

BASELINE = "baseline"

_NATIONAL = text("ics_code IS NULL")
_OWNED = text("ics_code IS NOT NULL")


class Scenario(UUIDPrimaryKey, Timestamps, Base):
    """Named projection parameters; every edit makes a new immutable version."""

    __tablename__ = "scenarios"
    # A name is unique within its owner: among the national scenarios, and within each ICS, so
    # two ICSs may each have a scenario of the same name. That an ICS may not take a national
    # name (nor the nation an ICS's) is checked when creating, under a lock on the name.
    __table_args__ = (
        Index(
            "uq_scenarios_national_name",
            "name",
            unique=True,
            postgresql_where=_NATIONAL,
            sqlite_where=_NATIONAL,
        ),
        Index(
            "uq_scenarios_ics_code_name",
            "ics_code",
            "name",
            unique=True,
            postgresql_where=_OWNED,
            sqlite_where=_OWNED,
        ),
    )

    name: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # None: national (visible to every key); otherwise owned by one ICS.
    ics_code: Mapped[str | None] = mapped_column(ForeignKey("areas.code"), default=None, index=True)
    version: Mapped[int] = mapped_column(default=1)


class ScenarioVersion(Base):
    """One version of a scenario's parameters, with the rationale and source of each change."""

    __tablename__ = "scenario_versions"
    __table_args__ = (UniqueConstraint("scenario_id", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    scenario_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("scenarios.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int]
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONType)
    rationale: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL"), default=None
    )
