"""projection runs: combine attempts

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 14:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # How many times an England run's combine step has been queued: the first part to see
    # every part done queues attempt 1, the reaper any later one.
    with op.batch_alter_table("projection_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("combine_attempts", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("projection_runs", schema=None) as batch_op:
        batch_op.drop_column("combine_attempts")
