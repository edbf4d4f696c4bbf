"""SQLAlchemy Core tables: the database is Argus's source of truth.

Times Argus itself stamps (received_at, updated_at) and record timestamps are stored as UTC epoch
seconds: compact, portable between SQLite and PostgreSQL, and what the numpy windows use.

Adapter-internal (no port): the schema every SQL adapter shares.
"""

from __future__ import annotations

import sqlalchemy as sa

from argus.domain.metrics import INTEGER_FIELDS, METRIC_FIELDS, OPTIONAL_FIELDS

metadata = sa.MetaData()

#: One row per accepted POST /feed/data; its id is the "tick" the API reports, and the engine's cursor.
ingest_batches = sa.Table(
    "ingest_batches",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("record_count", sa.Integer, nullable=False),
    sa.Column("server_count", sa.Integer, nullable=False),
    sa.Column("request_id", sa.String(64), nullable=True),
)

#: Every accepted record; (server_name, ts) is unique and a re-send replaces it (last write wins).
#: An optional field the record's source lacks is NULL (never NaN: PostgreSQL would store a NaN).
records = sa.Table(
    "records",
    metadata,
    sa.Column("server_name", sa.String(128), primary_key=True),
    sa.Column("ts", sa.BigInteger, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    *(
        sa.Column(name, sa.Integer if name in INTEGER_FIELDS else sa.Float, nullable=name in OPTIONAL_FIELDS)
        for name in METRIC_FIELDS
    ),
    sa.Column("batch_id", sa.Integer, nullable=False),
    sa.Index("ix_records_batch_id", "batch_id"),
    sa.Index("ix_records_ts", "ts"),  # the retention purge (oldest first) and the rebuild's time bound
)

#: Servers ever seen: cheap existence checks (404s) and fleet listings without scanning records.
servers = sa.Table(
    "servers",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("first_seen_at", sa.Float, nullable=False),
    sa.Column("last_ts", sa.BigInteger, nullable=False),
)

#: What the engine publishes for the stateless web workers to serve (status, later predictions...).
published = sa.Table(
    "published",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

#: Every alert transition (raised, escalated, de-escalated, resolved), written on the tick.
alert_events = sa.Table(
    "alert_events",
    metadata,
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
    sa.Column("cause", sa.String(16), nullable=True),
    sa.Column("peak_level", sa.String(16), nullable=True),
    sa.Column("breached", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_alert_events_at", "at"),
    sa.Index("ix_alert_events_server_at", "server_name", "at"),
)

#: The open alerts, so a restarted engine resumes them instead of raising them again.
active_alerts = sa.Table(
    "active_alerts",
    metadata,
    sa.Column("server_name", sa.String(128), primary_key=True),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("risk_score", sa.Float, nullable=False),
    sa.Column("profile", sa.String(64), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("metric", sa.String(32), nullable=True),
    sa.Column("raised_at", sa.Float, nullable=False),
    sa.Column("time_to_issue_minutes", sa.Float, nullable=True),
    sa.Column("peak_level", sa.String(16), nullable=True),
    sa.Column("breached", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("partition", sa.Integer, nullable=True),  # set by sharded engines (NULL: the single engine)
)

#: One row per tick: the fleet's health.
fleet_snapshots = sa.Table(
    "fleet_snapshots",
    metadata,
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
    sa.Column("expected_incidents_30m", sa.Float, nullable=True),  # NULL on snapshots before revision 0006
    sa.Column("expected_incidents_8h", sa.Float, nullable=True),
    sa.Index("ix_fleet_snapshots_at", "at"),
)

#: Each server's risk on each tick (server history).
server_risk = sa.Table(
    "server_risk",
    metadata,
    sa.Column("server_name", sa.String(128), primary_key=True),
    sa.Column("at", sa.Float, primary_key=True),
    sa.Column("risk_score", sa.Float, nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Index("ix_server_risk_at", "at"),
)

#: The worker → engine request channel: a worker inserts a pending request and polls for its answer;
#: the engine (the only holder of the model) claims, runs and answers it.
engine_requests = sa.Table(
    "engine_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending | running | done | failed | expired
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("deadline_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("request_id", sa.String(64), nullable=True),
    sa.Index("ix_engine_requests_status", "status", "id"),
)

#: Every training run: written by the training process (progress) and the engine (outcome).
training_runs = sa.Table(
    "training_runs",
    metadata,
    sa.Column("training_id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),  # running | completed | failed | cancelled
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
    sa.Column("promotion", sa.Text, nullable=True),  # JSON: rule, scores of both models, decision
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("pid", sa.Integer, nullable=True),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("ix_training_runs_started_at", "started_at"),
)

# -- several engines sharing the fleet (PostgreSQL, ARGUS_ENGINE_SHARDING=1) ---------------------

#: One row per partition (servers hashed by name): who holds it, until when, and its fencing token,
#: which grows by one each time the partition changes hands.
partition_leases = sa.Table(
    "partition_leases",
    metadata,
    sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("owner", sa.String(128), nullable=True),
    sa.Column("token", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("expires_at", sa.Float, nullable=False, server_default="0"),
)

#: The engines sharing the fleet: their heartbeat (how many share) and their published status.
engine_members = sa.Table(
    "engine_members",
    metadata,
    sa.Column("engine_id", sa.String(128), primary_key=True),
    sa.Column("seen_at", sa.Float, nullable=False),
    sa.Column("status", sa.Text, nullable=True),
    sa.Column("status_at", sa.Float, nullable=True),
)

#: Each partition's latest tick, written by its lease holder; the web workers union the rows.
partition_snapshots = sa.Table(
    "partition_snapshots",
    metadata,
    sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("engine_id", sa.String(128), nullable=False),
    sa.Column("token", sa.BigInteger, nullable=False),
    sa.Column("at", sa.Float, nullable=False),  # the tick's time
    sa.Column("updated_at", sa.Float, nullable=False),  # the database's clock when written (the version)
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("min_history_steps", sa.Integer, nullable=False),
    sa.Column("servers", sa.Text, nullable=False),  # JSON object: server name -> /predictions/current entry
    sa.Column("scores", sa.Text, nullable=False),  # JSON list: [level, risk score, prob_30m, prob_8h] per server
)

#: Which engine published which partition on which tick (kept a day): the proof of single ownership.
partition_publishes = sa.Table(
    "partition_publishes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("partition", sa.Integer, nullable=False),
    sa.Column("engine_id", sa.String(128), nullable=False),
    sa.Column("token", sa.BigInteger, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("servers", sa.Text, nullable=False),  # JSON list of the server names forecast
    sa.Index("ix_partition_publishes_at", "at"),
)
