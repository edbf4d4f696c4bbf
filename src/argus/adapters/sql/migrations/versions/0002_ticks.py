"""Tick outputs: alert events, active alerts, fleet snapshots and per-server risk.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("server_name", sa.String(128), nullable=False),
        sa.Column("event_type", sa.String(16), nullable=False),
        sa.Column("previous_level", sa.String(16), nullable=False),
        sa.Column("new_level", sa.String(16), nullable=False),
        sa.Column("risk_score", sa.Float, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("profile", sa.String(64), nullable=False),
        sa.Column("metric", sa.String(32), nullable=True),
        sa.Column("raised_at", sa.Float, nullable=False),
        sa.Column("time_to_issue_minutes", sa.Float, nullable=True),
        sa.Column("resolved_at", sa.Float, nullable=True),
    )
    op.create_index("ix_alert_events_at", "alert_events", ["at"])
    op.create_index("ix_alert_events_server_at", "alert_events", ["server_name", "at"])
    op.create_table(
        "active_alerts",
        sa.Column("server_name", sa.String(128), primary_key=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("risk_score", sa.Float, nullable=False),
        sa.Column("profile", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("metric", sa.String(32), nullable=True),
        sa.Column("raised_at", sa.Float, nullable=False),
        sa.Column("time_to_issue_minutes", sa.Float, nullable=True),
    )
    op.create_table(
        "fleet_snapshots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("total_servers", sa.Integer, nullable=False),
        sa.Column("critical_count", sa.Integer, nullable=False),
        sa.Column("warning_count", sa.Integer, nullable=False),
        sa.Column("degraded_count", sa.Integer, nullable=False),
        sa.Column("healthy_count", sa.Integer, nullable=False),
        sa.Column("fleet_health", sa.Float, nullable=False),
        sa.Column("prob_30m", sa.Float, nullable=False),
        sa.Column("prob_8h", sa.Float, nullable=False),
    )
    op.create_index("ix_fleet_snapshots_at", "fleet_snapshots", ["at"])
    op.create_table(
        "server_risk",
        sa.Column("server_name", sa.String(128), primary_key=True),
        sa.Column("at", sa.Float, primary_key=True),
        sa.Column("risk_score", sa.Float, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
    )
    op.create_index("ix_server_risk_at", "server_risk", ["at"])


def downgrade() -> None:
    for table in ("server_risk", "fleet_snapshots", "active_alerts", "alert_events"):
        op.drop_table(table)
