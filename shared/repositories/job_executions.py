from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import JobExecution


async def add(
    session: AsyncSession, *, job_id: str, job_name: str, attempt: int, runner: str
) -> JobExecution:
    row = JobExecution(job_id=job_id, job_name=job_name, attempt=attempt, runner=runner)
    session.add(row)
    await session.flush()
    return row
