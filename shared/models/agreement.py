from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.db.base import Base, Timestamps, UUIDPrimaryKey

if TYPE_CHECKING:
    from shared.models.agreement_party import AgreementParty
    from shared.models.agreement_scope import AgreementScope


class AgreementMode(StrEnum):
    crisis = "crisis"
    business_as_usual = "business_as_usual"
    both = "both"


class AgreementStatus(StrEnum):
    """Stored states. `expired` is never stored: it is read from the end date."""

    draft = "draft"
    pending_resign = "pending_resign"  # was in force; its terms changed; awaiting every party
    active = "active"
    suspended = "suspended"
    terminated = "terminated"


# Statuses of an agreement that has been in force: past the end date they read as `expired`.
EXPIRING_STATUSES = frozenset(
    {AgreementStatus.active, AgreementStatus.suspended, AgreementStatus.pending_resign}
)


_END_UNANNOUNCED = text("end_announced_at IS NULL")


class Agreement(UUIDPrimaryKey, Timestamps, Base):
    """A staff-sharing agreement between organisations of one ICS."""

    __tablename__ = "agreements"
    __table_args__ = (
        CheckConstraint("start_date <= end_date", name="date_range"),
        # The calendar sweep's look-up: ends not yet announced, by date.
        Index(
            "ix_agreements_end_unannounced",
            "end_date",
            postgresql_where=_END_UNANNOUNCED,
            sqlite_where=_END_UNANNOUNCED,
        ),
    )

    title: Mapped[str] = mapped_column(String(300))
    ics_code: Mapped[str] = mapped_column(ForeignKey("areas.code"), index=True)
    mode: Mapped[AgreementMode] = mapped_column(String(20), index=True)
    status: Mapped[AgreementStatus] = mapped_column(String(20), index=True)
    start_date: Mapped[date]
    end_date: Mapped[date]
    risk_share: Mapped[str | None] = mapped_column(Text, default=None)
    indemnity: Mapped[str | None] = mapped_column(Text, default=None)
    host_employer: Mapped[str | None] = mapped_column(Text, default=None)
    notes: Mapped[str | None] = mapped_column(Text, default=None)
    version: Mapped[int] = mapped_column(default=1)
    activated_at: Mapped[datetime | None] = mapped_column(default=None)
    suspended_at: Mapped[datetime | None] = mapped_column(default=None)
    terminated_at: Mapped[datetime | None] = mapped_column(default=None)
    termination_reason: Mapped[str | None] = mapped_column(Text, default=None)
    # When agreement.terminated was sent: on termination, or by the calendar sweep once an
    # agreement that was in force is past its end date (it reads `expired`). Set once.
    end_announced_at: Mapped[datetime | None] = mapped_column(default=None)

    parties: Mapped[list[AgreementParty]] = relationship(
        back_populates="agreement",
        lazy="raise",
        cascade="all, delete-orphan",
        order_by="AgreementParty.position",
    )
    scope: Mapped[list[AgreementScope]] = relationship(
        back_populates="agreement",
        lazy="raise",
        cascade="all, delete-orphan",
        order_by="AgreementScope.position",
    )
