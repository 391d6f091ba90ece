"""The typed context every job receives, under arq or in-process."""

from __future__ import annotations

from typing import Any, TypedDict

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.projector.model_pool import ModelPool
from shared.config import Settings


class WorkerContext(TypedDict, total=False):
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    runner: str
    # Sends follow-up jobs right after a job commits them (the outbox relay's timer is the
    # fallback).
    sender: Any
    # Posts webhooks: one client per worker, closed with it.
    http: httpx.AsyncClient
    # Processes for England parts' models (absent: they run in the worker's threads).
    model_pool: ModelPool
    # Set per job by arq (and by the in-process runner in the same way).
    redis: Any
    job_id: str
    job_try: int
