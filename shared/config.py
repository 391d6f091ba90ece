"""The one typed settings object. Nothing else in the product reads the environment."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./var/oneworkforce.db"


class Settings(BaseSettings):
    """Runtime configuration; every field has a safe default for the embedded mode."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = DEFAULT_SQLITE_URL
    redis_url: str | None = None
    queue_name: str = "oneworkforce:queue"
    require_services: bool = False

    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = 2 * 1024 * 1024
    max_upload_bytes: int = 512 * 1024 * 1024
    max_csv_line_bytes: int = 64 * 1024

    rate_limit_enabled: bool = True
    rate_limit_per_key: str = "1200/minute"
    rate_limit_per_address: str = "120/minute"

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True

    host: str = "127.0.0.1"
    port: int = 8000

    outbox_relay_interval_s: float = 5.0
    inprocess_workers: int = 2
    job_max_tries: int = Field(default=3, ge=1)
    worker_max_jobs: int = Field(default=4, ge=1)
    # Processes in which a worker runs England parts' models (at most WORKER_MAX_JOBS are
    # used); 0 runs them in the worker's threads, which share one core.
    model_processes: int = Field(default_factory=lambda: len(os.sched_getaffinity(0)), ge=0)
    worker_metrics_port: int = Field(default=9101, ge=0, le=65535)
    run_heartbeat_timeout_s: float = 120.0
    auto_recompute: bool = True
    recompute_delay_s: float = 30.0
    # Counts of staff by characteristic under this are never shown (equality indicators).
    suppression_threshold: int = Field(5, ge=3, le=100)
    load_demo_data: bool = True
    latest_cache_s: float = 2.0
    # Serialised bodies of finished runs kept in the API's memory for repeated reads, by ETag:
    # the cache never grows past this (a demo ICB's latest projection is about 0.85 MB).
    body_cache_mb: int = Field(default=64, ge=0, le=4096)
    # Delivery: work still queued this long after its job was sent, with no job in the queue,
    # is sent again (a Redis that lost its data, an embedded projector that restarted).
    queue_reconcile_after_s: float = 60.0
    # Where a worker marks that its loop is turning (empty: the system temp directory).
    worker_health_file: str = ""

    # The Explorer's browser sessions: how long one lasts after signing in, and whether its
    # cookie is marked Secure (None: when the request came over HTTPS).
    explorer_session_ttl_s: int = Field(default=3600, ge=60, le=86400)
    explorer_cookie_secure: bool | None = None
    # Webhooks. Addresses that resolve to loopback, private, link-local (cloud metadata) or
    # other non-public networks are refused unless allowed (local development and tests);
    # plain http:// URLs likewise.
    webhook_allow_private_addresses: bool = False
    webhook_allow_http: bool = False
    webhook_max_attempts: int = Field(default=8, ge=1, le=20)
    webhook_retry_base_s: float = Field(default=10.0, gt=0)  # 10 s, 20 s, 40 s ... per attempt
    webhook_retry_max_s: float = Field(default=3600.0, gt=0)
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    webhook_secret_grace_s: float = Field(default=86400.0, ge=0)  # old secret after rotation
    webhook_disable_after_s: float = Field(default=86400.0, gt=0)  # failing this long: disabled
    # How often the ends that dates bring (a deployment's or an agreement's end date passing)
    # are looked for and announced, by the API and by every worker.
    webhook_calendar_interval_s: float = Field(default=60.0, ge=1, le=3600)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        # Accept the plain URLs operators tend to write and pick the async driver.
        if value.startswith("postgres://"):
            value = "postgresql://" + value.removeprefix("postgres://")
        if value.startswith("postgresql://"):
            return "postgresql+asyncpg://" + value.removeprefix("postgresql://")
        if value.startswith("sqlite://") and not value.startswith("sqlite+aiosqlite://"):
            return "sqlite+aiosqlite://" + value.removeprefix("sqlite://")
        return value

    @field_validator("rate_limit_per_key", "rate_limit_per_address")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        from limits import parse

        parse(value)  # "100/minute", "10 per second": refuse a typo at start-up
        return value

    @field_validator("redis_url")
    @classmethod
    def _empty_redis_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("explorer_cookie_secure", mode="before")
    @classmethod
    def _empty_is_auto(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard(cls, value: list[str]) -> list[str]:
        # Credentials (the Authorization header) are allowed, so "*" would be unsafe.
        if "*" in value:
            raise ValueError("CORS_ORIGINS must list explicit origins, not '*'")
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
