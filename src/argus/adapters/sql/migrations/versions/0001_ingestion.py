"""Ingestion: batches, records, servers and the engine's published results.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_METRICS = (
    ("cpu_user_pct", sa.Float), ("cpu_sys_pct", sa.Float), ("cpu_iowait_pct", sa.Float),
    ("cpu_idle_pct", sa.Float), ("java_cpu_pct", sa.Float), ("mem_used_pct", sa.Float),
    ("swap_used_pct", sa.Float), ("disk_usage_pct", sa.Float), ("net_in_mb_s", sa.Float),
    ("net_out_mb_s", sa.Float), ("back_close_wait", sa.Integer), ("front_close_wait", sa.Integer),
    ("load_average", sa.Float), ("uptime_days", sa.Integer),
)


def upgrade() -> None:
    op.create_table(
        "ingest_batches",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("record_count", sa.Integer, nullable=False),
        sa.Column("server_count", sa.Integer, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
    )
    op.create_table(
        "records",
        sa.Column("server_name", sa.String(128), primary_key=True),
        sa.Column("ts", sa.BigInteger, primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        *(sa.Column(name, type_, nullable=False) for name, type_ in _METRICS),
        sa.Column("batch_id", sa.Integer, nullable=False),
    )
    op.create_index("ix_records_batch_id", "records", ["batch_id"])
    op.create_table(
        "servers",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("first_seen_at", sa.Float, nullable=False),
        sa.Column("last_ts", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "published",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in ("published", "servers", "records", "ingest_batches"):
        op.drop_table(table)
