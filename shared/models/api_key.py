from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base, CreatedAt, UUIDPrimaryKey


class KeyScope(StrEnum):
    admin = "admin"
    submit = "submit"
    read = "read"


class ApiKey(UUIDPrimaryKey, CreatedAt, Base):
    """A bearer key; only the SHA-256 of its secret is stored."""

    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), unique=True, index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    scope: Mapped[KeyScope] = mapped_column(String(16))
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(default=None, index=True)
    ics_code: Mapped[str | None] = mapped_column(String(9), default=None, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
