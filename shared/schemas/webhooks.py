"""Webhook subscriptions and their delivery log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000, description="An https:// URL")
    event_types: list[str] = Field(min_length=1, max_length=20)
    description: str | None = Field(default=None, max_length=500)
    ics_code: str | None = Field(
        default=None,
        min_length=9,
        max_length=9,
        description="Owner: an ICS (default: the key's ICS). Give this or organisation_id.",
    )
    organisation_id: uuid.UUID | None = Field(
        default=None, description="Owner: an organisation (default: the key's organisation)"
    )


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=2000)
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=20)
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = Field(
        default=None, description="true re-enables a disabled subscription and clears its reason"
    )


class WebhookRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: float | None = Field(
        default=None,
        ge=0,
        le=7 * 86400,
        description="How long the old secret also signs (default WEBHOOK_SECRET_GRACE_S)",
    )


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    ics_code: str | None
    organisation_id: uuid.UUID | None
    url: str
    event_types: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None = Field(description="Why the subscription was disabled")
    failing_since: datetime | None = Field(
        description="First failed delivery since the last success"
    )
    previous_secret_expires_at: datetime | None = Field(
        description="Until when the secret before the last rotation also signs"
    )
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookRead):
    secret: str = Field(
        description="The signing secret (Standard Webhooks, whsec_...). Shown only now: keep it."
    )


class WebhookAttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempt: int
    attempted_at: datetime
    status_code: int | None
    latency_ms: float | None
    response_excerpt: str | None = Field(description="The first 500 characters of the answer")
    error: str | None


class WebhookDeliveryRead(BaseModel):
    id: uuid.UUID = Field(description="The webhook-id header: the same on every attempt")
    event_type: str
    status: str = Field(description="pending, succeeded or failed")
    attempts: int
    redeliveries: int
    last_status_code: int | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime
    payload: dict[str, Any]
    attempt_log: list[WebhookAttemptRead]
