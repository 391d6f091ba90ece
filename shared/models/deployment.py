from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base, Timestamps, UUIDPrimaryKey

_END_UNANNOUNCED = text("end_announced_at IS NULL")


class DeploymentStatus(StrEnum):
    active = "active"
    ended = "ended"


class Deployment(UUIDPrimaryKey, Timestamps, Base):
    """Staff lent under an agreement: FTE of one role from one party to another, for dates."""

    __tablename__ = "deployments"
    __table_args__ = (
        CheckConstraint("fte > 0", name="fte_positive"),
        CheckConstraint("start_date <= end_date", name="date_range"),
        CheckConstraint("from_organisation_id <> to_organisation_id", name="distinct_parties"),
        Index("ix_deployments_lender_role", "agreement_id", "from_organisation_id", "role_code"),
        # The calendar sweep's look-up: ends not yet announced, by date.
        Index(
            "ix_deployments_end_unannounced",
            "end_date",
            postgresql_where=_END_UNANNOUNCED,
            sqlite_where=_END_UNANNOUNCED,
        ),
    )

    agreement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agreements.id"))
    from_organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    to_organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id"), index=True
    )
    role_code: Mapped[str] = mapped_column(ForeignKey("roles.code"), index=True)
    fte: Mapped[float]
    start_date: Mapped[date]
    end_date: Mapped[date]
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[DeploymentStatus] = mapped_column(String(10), default=DeploymentStatus.active)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_early_on: Mapped[date | None] = mapped_column(default=None)
    end_reason: Mapped[str | None] = mapped_column(Text, default=None)
    # When deployment.ended was sent: on an early end (by hand or by the agreement's
    # termination), or by the calendar sweep once the end date has passed. Set once.
    end_announced_at: Mapped[datetime | None] = mapped_column(default=None)
