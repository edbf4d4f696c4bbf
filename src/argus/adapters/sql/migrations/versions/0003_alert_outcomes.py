"""Alert outcomes: cause of each event, the peak level and whether a limit was breached.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alert_events") as batch:
        batch.add_column(sa.Column("cause", sa.String(16), nullable=True))
        batch.add_column(sa.Column("peak_level", sa.String(16), nullable=True))
        batch.add_column(sa.Column("breached", sa.Boolean, nullable=False, server_default=sa.false()))
    with op.batch_alter_table("active_alerts") as batch:
        batch.add_column(sa.Column("peak_level", sa.String(16), nullable=True))
        batch.add_column(sa.Column("breached", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("active_alerts") as batch:
        batch.drop_column("breached")
        batch.drop_column("peak_level")
    with op.batch_alter_table("alert_events") as batch:
        batch.drop_column("breached")
        batch.drop_column("peak_level")
        batch.drop_column("cause")
