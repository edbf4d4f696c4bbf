"""SQLAlchemy Core tables: the database is Argus's source of truth.

Times Argus itself stamps (received_at, updated_at) and record timestamps are stored as UTC epoch
seconds: compact, portable between SQLite and PostgreSQL, and what the numpy windows use.
"""

from __future__ import annotations

import sqlalchemy as sa

from argus.domain.metrics import INTEGER_FIELDS, METRIC_FIELDS

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
records = sa.Table(
    "records",
    metadata,
    sa.Column("server_name", sa.String(128), primary_key=True),
    sa.Column("ts", sa.BigInteger, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    *(
        sa.Column(name, sa.Integer if name in INTEGER_FIELDS else sa.Float, nullable=False)
        for name in METRIC_FIELDS
    ),
    sa.Column("batch_id", sa.Integer, nullable=False),
    sa.Index("ix_records_batch_id", "batch_id"),
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
