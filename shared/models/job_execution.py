from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base, UUIDPrimaryKey, utcnow


class JobExecution(UUIDPrimaryKey, Base):
    """A record that a worker ran a job: the queue's own liveness check."""

    __tablename__ = "job_executions"

    job_id: Mapped[str] = mapped_column(String(200), index=True)
    job_name: Mapped[str] = mapped_column(String(100))
    attempt: Mapped[int] = mapped_column(default=1)
    runner: Mapped[str] = mapped_column(String(20))
    executed_at: Mapped[datetime] = mapped_column(default=utcnow)
