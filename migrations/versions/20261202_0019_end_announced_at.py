"""deployments and agreements: when their end was announced

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 09:00:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNANNOUNCED = sa.text("end_announced_at IS NULL")
EXPIRING = ("active", "suspended", "pending_resign")


def upgrade() -> None:
    # deployment.ended and agreement.terminated are also sent when an end date passes, by a
    # sweep on a timer; the marker says the end was announced, so each is sent once.
    for table in ("deployments", "agreements"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("end_announced_at", sa.DateTime(timezone=True), nullable=True)
            )
        op.create_index(
            f"ix_{table}_end_unannounced",
            table,
            ["end_date"],
            postgresql_where=UNANNOUNCED,
            sqlite_where=UNANNOUNCED,
        )
    # Ends that came before this revision count as announced: early ends and terminations
    # were sent when they happened, and ends the calendar brought earlier are not sent late.
    today = datetime.now(UTC).date()
    now = sa.func.current_timestamp()
    deployments = sa.table(
        "deployments",
        sa.column("status", sa.String()),
        sa.column("end_date", sa.Date()),
        sa.column("ended_at", sa.DateTime(timezone=True)),
        sa.column("end_announced_at", sa.DateTime(timezone=True)),
    )
    op.execute(
        deployments.update()
        .where(sa.or_(deployments.c.status == "ended", deployments.c.end_date < today))
        .values(end_announced_at=sa.func.coalesce(deployments.c.ended_at, now))
    )
    agreements = sa.table(
        "agreements",
        sa.column("status", sa.String()),
        sa.column("end_date", sa.Date()),
        sa.column("terminated_at", sa.DateTime(timezone=True)),
        sa.column("end_announced_at", sa.DateTime(timezone=True)),
    )
    op.execute(
        agreements.update()
        .where(
            sa.or_(
                agreements.c.status == "terminated",
                sa.and_(agreements.c.status.in_(EXPIRING), agreements.c.end_date < today),
            )
        )
        .values(end_announced_at=sa.func.coalesce(agreements.c.terminated_at, now))
    )


def downgrade() -> None:
    for table in ("agreements", "deployments"):
        op.drop_index(f"ix_{table}_end_unannounced", table_name=table)
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("end_announced_at")
