"""scenario names per owner

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NATIONAL = sa.text("ics_code IS NULL")
OWNED = sa.text("ics_code IS NOT NULL")


def upgrade() -> None:
    # A scenario's name was unique across every ICS, so creating one told an ICS which names
    # other ICSs had taken for their private scenarios. Names are now unique per owner: among
    # the national scenarios, and within each ICS (partial indexes, on both databases).
    with op.batch_alter_table("scenarios", schema=None) as batch_op:
        batch_op.drop_constraint("uq_scenarios_name", type_="unique")
    op.create_index(
        "uq_scenarios_national_name",
        "scenarios",
        ["name"],
        unique=True,
        postgresql_where=NATIONAL,
        sqlite_where=NATIONAL,
    )
    op.create_index(
        "uq_scenarios_ics_code_name",
        "scenarios",
        ["ics_code", "name"],
        unique=True,
        postgresql_where=OWNED,
        sqlite_where=OWNED,
    )


def downgrade() -> None:
    # Fails, as it should, while two ICSs hold scenarios of the same name.
    op.drop_index("uq_scenarios_ics_code_name", table_name="scenarios")
    op.drop_index("uq_scenarios_national_name", table_name="scenarios")
    with op.batch_alter_table("scenarios", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_scenarios_name", ["name"])
