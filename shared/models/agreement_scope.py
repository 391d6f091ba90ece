from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.db.base import Base, UUIDPrimaryKey

if TYPE_CHECKING:
    from shared.models.agreement import Agreement


class AgreementScope(UUIDPrimaryKey, Base):
    """A role in an agreement's scope with the most FTE one lending party may lend at once."""

    __tablename__ = "agreement_scope"
    __table_args__ = (
        UniqueConstraint("agreement_id", "role_code", "lending_organisation_id"),
        CheckConstraint("fte_cap > 0", name="fte_cap_positive"),
    )

    # The unique constraint's leading column serves lookups by agreement.
    agreement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agreements.id", ondelete="CASCADE"))
    role_code: Mapped[str] = mapped_column(ForeignKey("roles.code"), index=True)
    lending_organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id"), index=True
    )
    fte_cap: Mapped[float]
    position: Mapped[int] = mapped_column(default=0)

    agreement: Mapped[Agreement] = relationship(back_populates="scope", lazy="raise")
