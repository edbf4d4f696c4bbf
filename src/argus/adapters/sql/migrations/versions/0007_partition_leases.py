"""Several engines sharing the fleet on PostgreSQL: partition leases, members, per-partition snapshots.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28

Created on SQLite too (the schema is the same everywhere) but only used with ARGUS_ENGINE_SHARDING=1.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partition_leases",
        sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("token", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("expires_at", sa.Float, nullable=False, server_default="0"),
    )
    op.create_table(
        "engine_members",
        sa.Column("engine_id", sa.String(128), primary_key=True),
        sa.Column("seen_at", sa.Float, nullable=False),
        sa.Column("status", sa.Text, nullable=True),
        sa.Column("status_at", sa.Float, nullable=True),
    )
    op.create_table(
        "partition_snapshots",
        sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("engine_id", sa.String(128), nullable=False),
        sa.Column("token", sa.BigInteger, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("min_history_steps", sa.Integer, nullable=False),
        sa.Column("servers", sa.Text, nullable=False),
        sa.Column("scores", sa.Text, nullable=False),
    )
    op.create_table(
        "partition_publishes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("engine_id", sa.String(128), nullable=False),
        sa.Column("token", sa.BigInteger, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("servers", sa.Text, nullable=False),
    )
    op.create_index("ix_partition_publishes_at", "partition_publishes", ["at"])
    with op.batch_alter_table("active_alerts") as batch:
        batch.add_column(sa.Column("partition", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("active_alerts") as batch:
        batch.drop_column("partition")
    for table in ("partition_publishes", "partition_snapshots", "engine_members", "partition_leases"):
        op.drop_table(table)
