"""Failing a run ends every part still open: the part that failed it is failed, the rest are
cancelled, and parts that already finished keep their status."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.domain.projections import runs as projection_runs
from shared.db.session import transaction
from shared.models import ProjectionRun, ProjectionRunPart, RunStatus
from shared.repositories import projections as repo
from tests.api.projections.test_staleness import finished_run
from tests.factories import ENGLAND, ICB_A, ICB_B

ICB_C = "E54000099"


async def test_failing_a_run_fails_its_part_and_cancels_the_other_open_ones(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    run_id = await finished_run(sessionmaker, ENGLAND, status=RunStatus.running)
    async with transaction(sessionmaker) as session:
        await repo.add_missing_parts(session, run_id=run_id, ics_codes=[ICB_A, ICB_B, ICB_C])
        await session.execute(
            update(ProjectionRunPart)
            .where(ProjectionRunPart.run_id == run_id, ProjectionRunPart.ics_code == ICB_C)
            .values(status=RunStatus.succeeded)
        )
    assert await projection_runs.fail_run(sessionmaker, run_id, "boom", failed_part=ICB_B)
    # A run that has ended is not failed twice.
    assert not await projection_runs.fail_run(sessionmaker, run_id, "again", failed_part=ICB_A)
    async with sessionmaker() as session:
        parts = dict(
            (
                await session.execute(
                    select(ProjectionRunPart.ics_code, ProjectionRunPart.status).where(
                        ProjectionRunPart.run_id == run_id
                    )
                )
            ).all()
        )
        finished = (
            await session.execute(
                select(ProjectionRunPart.finished_at).where(
                    ProjectionRunPart.run_id == run_id, ProjectionRunPart.ics_code != ICB_C
                )
            )
        ).scalars()
        run = (
            await session.execute(select(ProjectionRun).where(ProjectionRun.id == run_id))
        ).scalar_one()
    assert parts == {
        ICB_A: RunStatus.cancelled,
        ICB_B: RunStatus.failed,
        ICB_C: RunStatus.succeeded,
    }
    assert all(value is not None for value in finished)
    assert run.status == RunStatus.failed
    assert run.error == "boom"
