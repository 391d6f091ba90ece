from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.db.base import Base, CreatedAt, UUIDPrimaryKey

if TYPE_CHECKING:
    from shared.models.agreement import Agreement
    from shared.models.organisation import Organisation


class AgreementParty(UUIDPrimaryKey, CreatedAt, Base):
    """An organisation that is party to an agreement, and its signature once given."""

    __tablename__ = "agreement_parties"
    __table_args__ = (UniqueConstraint("agreement_id", "organisation_id"),)

    # The unique constraint's leading column serves lookups by agreement.
    agreement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agreements.id", ondelete="CASCADE"))
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    signatory_name: Mapped[str | None] = mapped_column(String(200), default=None)
    signatory_role: Mapped[str | None] = mapped_column(String(200), default=None)
    signed_at: Mapped[datetime | None] = mapped_column(default=None)
    signed_by_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL"), default=None
    )
    signed_on_behalf: Mapped[bool] = mapped_column(Boolean, default=False)

    agreement: Mapped[Agreement] = relationship(back_populates="parties", lazy="raise")
    organisation: Mapped[Organisation] = relationship(lazy="raise")
