"""bulk imports carry attempts and a heartbeat, so the reaper can recover them

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 14:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("return_imports") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_return_imports_status_heartbeat", "return_imports", ["status", "heartbeat_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_return_imports_status_heartbeat", table_name="return_imports")
    with op.batch_alter_table("return_imports") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("attempts")
