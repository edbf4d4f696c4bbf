"""Training runs: progress, outcome and promotion of every training, surviving restarts.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "training_runs",
        sa.Column("training_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("epochs", sa.Integer, nullable=False),
        sa.Column("incremental", sa.Boolean, nullable=False),
        sa.Column("base_model", sa.String(128), nullable=True),
        sa.Column("epoch", sa.Integer, nullable=False, server_default="0"),
        sa.Column("percent", sa.Float, nullable=False, server_default="0"),
        sa.Column("eta_minutes", sa.Float, nullable=True),
        sa.Column("stage", sa.String(32), nullable=True),
        sa.Column("model_name", sa.String(128), nullable=True),
        sa.Column("promoted", sa.Boolean, nullable=True),
        sa.Column("promotion", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_training_runs_started_at", "training_runs", ["started_at"])


def downgrade() -> None:
    op.drop_table("training_runs")
