from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base, CreatedAt, UUIDPrimaryKey


class WebSession(UUIDPrimaryKey, CreatedAt, Base):
    """A browser session of the Explorer, opened by signing in with an API key.

    The browser holds only a random session token; this row keeps its SHA-256, the key it
    acts for (checked against revocation on every request) and the CSRF token of its forms.
    """

    __tablename__ = "web_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
