"""Work that waits for a worker: what the reconciler checks the queue still holds."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.jobs import import_returns_job_id, project_ics_job_id, run_projection_job_id
from shared.models import ImportStatus, ProjectionRun, ProjectionRunPart, ReturnImport, RunStatus


async def expected_job_ids(session: AsyncSession, *, limit: int = 500) -> list[str]:
    """The job each queued run, part of a running run, and import is waiting for.

    Each waits for its next attempt's job: the attempt counts those that have started.
    """
    runs = await session.execute(
        select(ProjectionRun.id, ProjectionRun.attempts)
        .where(ProjectionRun.status == RunStatus.queued)
        .order_by(ProjectionRun.queued_at)
        .limit(limit)
    )
    parts = await session.execute(
        select(ProjectionRunPart.run_id, ProjectionRunPart.ics_code, ProjectionRunPart.attempts)
        .join(ProjectionRun, ProjectionRun.id == ProjectionRunPart.run_id)
        .where(
            ProjectionRunPart.status == RunStatus.queued,
            ProjectionRun.status == RunStatus.running,
        )
        .limit(limit)
    )
    waiting_imports = await session.execute(
        select(ReturnImport.id, ReturnImport.attempts)
        .where(ReturnImport.status == ImportStatus.queued)
        .order_by(ReturnImport.created_at)
        .limit(limit)
    )
    return [
        *(run_projection_job_id(run_id, attempts + 1) for run_id, attempts in runs.all()),
        *(
            project_ics_job_id(run_id, ics_code, attempts + 1)
            for run_id, ics_code, attempts in parts.all()
        ),
        *(
            import_returns_job_id(import_id, attempts + 1)
            for import_id, attempts in waiting_imports
        ),
    ]
