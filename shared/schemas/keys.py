from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.models.api_key import KeyScope

_RANK = {KeyScope.read: 0, KeyScope.submit: 1, KeyScope.admin: 2}
ICS_CODE_PATTERN = r"^E54\d{6}$"


@dataclass(frozen=True)
class Principal:
    """The caller behind a bearer key: its scope and what it is bound to."""

    key_id: uuid.UUID
    name: str
    scope: KeyScope
    organisation_id: uuid.UUID | None = None
    ics_code: str | None = None

    @property
    def is_global(self) -> bool:
        return self.organisation_id is None and self.ics_code is None

    def has(self, required: KeyScope) -> bool:
        """Scopes are ordered: admin may do what submit may, submit what read may."""
        return _RANK[self.scope] >= _RANK[required]

    @property
    def actor(self) -> str:
        return f"key:{self.name}"


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=200)
    scope: KeyScope
    organisation_id: uuid.UUID | None = None
    ics_code: str | None = Field(default=None, pattern=ICS_CODE_PATTERN)


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    scope: KeyScope
    organisation_id: uuid.UUID | None
    ics_code: str | None
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    secret: str = Field(description="The bearer token. Shown once; only its hash is stored.")


class WhoAmI(BaseModel):
    key_id: uuid.UUID
    name: str
    scope: KeyScope
    organisation_id: uuid.UUID | None
    ics_code: str | None
