"""projection results: no foreign key to the run; draws stored uncompressed

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 09:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "fk_projection_results_run_id_projection_runs"


def upgrade() -> None:
    # The table is written in bulk by the run's own jobs; PostgreSQL checks a foreign key row
    # by row, which more than doubled the time of an England run's COPY of results.
    with op.batch_alter_table("projection_results", schema=None) as batch_op:
        batch_op.drop_constraint(CONSTRAINT, type_="foreignkey")
    if op.get_bind().dialect.name == "postgresql":
        # Per-draw totals are float64 noise that does not compress: trying to (PostgreSQL's
        # default for large values) cost 1.2 s of an England run's 1.4 s writing them.
        op.execute("ALTER TABLE projection_draws ALTER COLUMN values SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE projection_draws ALTER COLUMN values SET STORAGE EXTENDED")
    # Results whose run is gone (there are none unless rows were deleted by hand) would stop
    # the constraint from being created.
    op.execute(
        "DELETE FROM projection_results WHERE run_id NOT IN (SELECT id FROM projection_runs)"
    )
    with op.batch_alter_table("projection_results", schema=None) as batch_op:
        batch_op.create_foreign_key(
            CONSTRAINT, "projection_runs", ["run_id"], ["id"], ondelete="CASCADE"
        )
