from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import JobExecution


async def add(
    session: AsyncSession, *, job_id: str, job_name: str, attempt: int, runner: str
) -> JobExecution:
    row = JobExecution(job_id=job_id, job_name=job_name, attempt=attempt, runner=runner)
    session.add(row)
    await session.flush()
    return row


async def list_for_job(session: AsyncSession, *, job_id: str) -> Sequence[JobExecution]:
    query = select(JobExecution).where(JobExecution.job_id == job_id)
    return (await session.execute(query)).scalars().all()
