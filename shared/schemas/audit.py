from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEventRead(BaseModel):
    """One write: who (the key and its name), what (the action), which resource, and when."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    at: datetime
    key_id: uuid.UUID | None
    actor: str
    action: str
    resource_type: str
    resource_id: str
    request_id: str | None
    detail: dict[str, Any] | None
