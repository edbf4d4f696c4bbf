"""Rollup buffer: host samples (remote_write, OTLP) kept until their five-minute step closes.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

``rollup_samples`` holds the accepted samples of each server's open steps and of its last closed
one (the next step's counter baselines); ``rollup_servers`` each server's closed and emitted steps
(argus.adapters.sql.sample_buffer).
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollup_samples",
        sa.Column("server_name", sa.String(128), primary_key=True),
        sa.Column("signal", sa.String(32), primary_key=True),
        sa.Column("series", sa.String(512), primary_key=True),
        sa.Column("ts_ms", sa.BigInteger, primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
    )
    op.create_table(
        "rollup_servers",
        sa.Column("server_name", sa.String(128), primary_key=True),
        sa.Column("closed_through_s", sa.BigInteger, nullable=False),
        sa.Column("emitted_through_s", sa.BigInteger, nullable=False),
        sa.Column("newest_ts_ms", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rollup_servers")
    op.drop_table("rollup_samples")
