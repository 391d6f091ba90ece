from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base, CreatedAt, JSONType, UUIDPrimaryKey


class OutboxMessage(UUIDPrimaryKey, CreatedAt, Base):
    """A job to send to the queue, written in the same transaction as the change behind it."""

    __tablename__ = "outbox_messages"

    job_name: Mapped[str] = mapped_column(String(100))
    job_id: Mapped[str] = mapped_column(String(200), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    defer_s: Mapped[float] = mapped_column(default=0.0)
    sent_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    send_attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
