"""Fleet snapshots: the expected number of servers with an incident within 30 minutes and 8 hours.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28

Nullable: snapshots recorded before this revision have no expected counts (NULL, shown as null).
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fleet_snapshots") as batch:
        batch.add_column(sa.Column("expected_incidents_30m", sa.Float, nullable=True))
        batch.add_column(sa.Column("expected_incidents_8h", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fleet_snapshots") as batch:
        batch.drop_column("expected_incidents_8h")
        batch.drop_column("expected_incidents_30m")
