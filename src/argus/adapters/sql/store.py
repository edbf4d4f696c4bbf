"""SqlMetricsStore: durable ingestion, the engine's feed of new rows, and published results.

Port: ``argus.ports.storage`` (``MetricsStore``, ``EngineFeed``, ``RecordRetention``, ``PublishedResults``,
``TickLog``).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Iterator, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from argus.adapters.sql import tables as t
from argus.adapters.sql.bulk import read_histories
from argus.domain.alerts import ActiveAlert, AlertLevel, EventType
from argus.domain.ingestion import BatchReceipt, PublishedItem, ServerHistory
from argus.domain.metrics import (
    INTEGER_FIELDS,
    METRIC_FIELDS,
    STATUS_CODE,
    STATUS_VALUES,
    STEP_SECONDS,
    Record,
    utc_from_epoch,
)
from argus.domain.ticks import TickResult

_RECORD_COLUMNS = ("server_name", "ts", "status", *METRIC_FIELDS, "batch_id")
#: The retention purge never deletes the newest ingest batches (an engine re-reads 50 at start-up).
KEEP_BATCHES = 1000


class SqlMetricsStore:
    """Records, batches, servers and published results in one SQL database (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name
        self._upsert_records = self._build_record_upsert()
        self._upsert_servers = self._build_server_upsert()

    # -- ingestion (web workers) -------------------------------------------------------------

    def write_batch(self, records: Sequence[Record], request_id: str | None = None) -> BatchReceipt:
        """Store ``records`` in one transaction: all of them are committed, or none."""
        now = time.time()
        last_ts: dict[str, int] = {}
        rows = []
        for record in records:
            ts = record.epoch_s
            # Plain Python numbers: numpy scalars would be stored as blobs by some drivers. A missing
            # field (NaN) is NULL, on a NOT NULL column (a required field) the batch fails whole.
            row = {name: None if math.isnan(v) else int(v) if name in INTEGER_FIELDS else float(v)
                   for name, v in zip(METRIC_FIELDS, record.values, strict=True)}
            row.update(server_name=record.server_name, ts=ts, status=record.status)
            rows.append(row)
            if ts > last_ts.get(record.server_name, -(2**62)):
                last_ts[record.server_name] = ts
        with self.engine.begin() as connection:
            batch_id = connection.execute(
                t.ingest_batches.insert().returning(t.ingest_batches.c.id),
                {"received_at": now, "record_count": len(rows), "server_count": len(last_ts),
                 "request_id": request_id},
            ).scalar_one()
            for row in rows:
                row["batch_id"] = batch_id
            connection.execute(self._upsert_records, rows)
            connection.execute(
                self._upsert_servers,
                [{"name": name, "first_seen_at": now, "last_ts": ts} for name, ts in sorted(last_ts.items())],
            )
        return BatchReceipt(batch_id=batch_id, records=len(rows), servers=len(last_ts))

    def count_records(self, up_to: int) -> int:
        """Return the number of stored records, counting no further than ``up_to`` (cheap)."""
        inner = sa.select(sa.literal(1)).select_from(t.records).limit(up_to).subquery()
        with self.engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(inner)).scalar_one())

    def server_exists(self, name: str) -> bool:
        with self.engine.connect() as connection:
            query = sa.select(t.servers.c.name).where(t.servers.c.name == name)
            return connection.execute(query).first() is not None

    def server_names(self) -> list[str]:
        with self.engine.connect() as connection:
            return list(connection.execute(sa.select(t.servers.c.name).order_by(t.servers.c.name)).scalars())

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        with self.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))

    # -- the engine's feed -------------------------------------------------------------------

    def batches_after(self, batch_id: int, limit: int = 1000) -> list[tuple[int, float]]:
        """Return (id, received_at) of batches with id > ``batch_id``, oldest first."""
        query = (
            sa.select(t.ingest_batches.c.id, t.ingest_batches.c.received_at)
            .where(t.ingest_batches.c.id > batch_id)
            .order_by(t.ingest_batches.c.id)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [(int(i), float(at)) for i, at in connection.execute(query)]

    def last_batch_id(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.max(t.ingest_batches.c.id))).scalar() or 0)

    def records_in_batches(self, batch_ids: Sequence[int]) -> list[Record]:
        """Return the records whose latest write came from one of ``batch_ids``."""
        if not batch_ids:
            return []
        columns = [t.records.c[name] for name in _RECORD_COLUMNS]
        query = sa.select(*columns).where(t.records.c.batch_id.in_(list(batch_ids))).order_by(t.records.c.ts)
        with self.engine.connect() as connection:
            return [_record_from_row(row) for row in connection.execute(query)]

    def server_histories(self, limit_per_server: int | None,
                         names: Sequence[str] | None = None) -> Iterator[ServerHistory]:
        """Yield each server's newest ``limit_per_server`` records (None: all) as arrays, oldest first.

        Servers come in ``server_names()`` order (or ``names``' order), those without records are
        left out. One pass over the time span the windows need (the newest ``limit_per_server``
        steps, on the ts index) fetched through the driver's cursor into numpy and filed by
        server; a server with fewer records in that span (gaps, or silent lately) gets the rest
        by its own query on the primary key.
        """
        order = self.server_names() if names is None else list(dict.fromkeys(names))
        if not order:
            return
        query, since = self._history_query(limit_per_server, names), None
        if limit_per_server is not None:
            since = self._span_start(limit_per_server)
            query = query.where(t.records.c.ts >= since) if since is not None else query
        older = None if since is None else functools.partial(self._older_query, before=since)
        yield from read_histories(self.engine, query, order, limit_per_server, older)

    def _history_query(self, limit_per_server: int | None, names: Sequence[str] | None) -> sa.Select:
        r = t.records
        status = sa.case(STATUS_CODE, value=r.c.status, else_=STATUS_CODE["healthy"])
        query = sa.select(r.c.server_name, r.c.ts, status, *(r.c[name] for name in METRIC_FIELDS))
        return query if names is None else query.where(r.c.server_name.in_(list(names)))

    def _older_query(self, name: str, count: int, before: int) -> sa.Select:
        """``name``'s newest ``count`` records dated before ``before`` (the scan's span)."""
        r = t.records
        return (self._history_query(None, None).where(r.c.server_name == name, r.c.ts < before)
                .order_by(r.c.ts.desc()).limit(count))

    def _span_start(self, steps: int) -> int | None:
        """The start of the newest ``steps`` (+1) five-minute steps, counted back from the newest
        record not dated past tomorrow (a far-future one stays out of every window anyway); None
        when that reaches back past the oldest record: then every record is needed, a plain scan."""
        r = t.records
        with self.engine.connect() as connection:  # two seeks on the ts index
            oldest = connection.execute(sa.select(r.c.ts).order_by(r.c.ts).limit(1)).scalar()
            newest = connection.execute(sa.select(r.c.ts).where(r.c.ts <= int(time.time()) + 86400)
                                        .order_by(r.c.ts.desc()).limit(1)).scalar()
        if oldest is None or newest is None:
            return None
        since = int(newest) - (steps + 1) * STEP_SECONDS
        return since if since > int(oldest) else None

    # -- retention ---------------------------------------------------------------------------

    def purge_records(self, before_epoch_s: int, limit: int) -> int:
        """Delete the oldest records dated before ``before_epoch_s``, at most ``limit``; return how many.

        One short transaction led by the ts index (no table scan), so the engine can call it
        between steps without holding ingestion up; call again while it returns ``limit``. Ingest
        batches received before the cutoff go too (as many), except the newest KEEP_BATCHES: ids
        never restart, and a restarted engine re-reads its overlap without waiting on purged ids.
        """
        r, b = t.records, t.ingest_batches
        oldest = sa.select(r.c.server_name, r.c.ts).where(r.c.ts < int(before_epoch_s)).order_by(r.c.ts).limit(limit)
        with self.engine.begin() as connection:
            deleted = connection.execute(r.delete().where(sa.tuple_(r.c.server_name, r.c.ts).in_(oldest))).rowcount
            first, newest = connection.execute(sa.select(sa.func.min(b.c.id), sa.func.max(b.c.id))).one()
            if first is not None:
                below = min(int(first) + limit, int(newest) - KEEP_BATCHES)  # a primary-key range: <= limit rows
                connection.execute(b.delete().where(b.c.id < below, b.c.received_at < float(before_epoch_s)))
        return int(deleted)

    # -- published results -------------------------------------------------------------------

    def publish(self, items: dict[str, str]) -> None:
        """Replace the published bodies named in ``items`` (key -> JSON text) in one transaction."""
        with self.engine.begin() as connection:
            self.publish_in(connection, items)

    def publish_in(self, connection: sa.Connection, items: dict[str, str]) -> None:
        """Replace the published bodies named in ``items`` inside the caller's transaction."""
        if not items:
            return
        now = time.time()
        rows = [{"key": key, "body": body, "updated_at": now} for key, body in items.items()]
        insert = self._insert(t.published)
        statement = insert.on_conflict_do_update(
            index_elements=[t.published.c.key],
            set_={"body": insert.excluded.body, "updated_at": insert.excluded.updated_at},
        )
        connection.execute(statement, rows)

    def published_version(self, key: str) -> float | None:
        """Return when ``key`` was last published (cheap: lets workers cache bodies)."""
        query = sa.select(t.published.c.updated_at).where(t.published.c.key == key)
        with self.engine.connect() as connection:
            value = connection.execute(query).scalar()
        return None if value is None else float(value)

    def read_published(self, key: str) -> PublishedItem | None:
        query = sa.select(t.published.c.body, t.published.c.updated_at).where(t.published.c.key == key)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else PublishedItem(key=key, body=row[0], updated_at=float(row[1]))

    # -- ticks -------------------------------------------------------------------------------

    def record_tick(self, result: TickResult, published: dict[str, str]) -> None:
        """Write one tick's events, active alerts, snapshot, per-server risk and bodies atomically."""
        at = result.at.timestamp()
        with self.engine.begin() as connection:
            write_events(connection, result.events)
            connection.execute(t.active_alerts.delete())
            if result.active:
                connection.execute(t.active_alerts.insert(), [active_row(a) for a in result.active])
            connection.execute(t.fleet_snapshots.insert(), fleet_row(result.summary, at))
            write_risk(connection, result.assessments, at)
            self.publish_in(connection, published)

    def active_alerts(self) -> list[ActiveAlert]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(t.active_alerts)).mappings().all()
        return [alert_from_row(r) for r in rows]

    # -- statements --------------------------------------------------------------------------

    def _insert(self, table: sa.Table):
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        if self._dialect == "sqlite":
            return sqlite.insert(table)
        raise NotImplementedError(f"unsupported database dialect: {self._dialect}")

    def _build_record_upsert(self):
        insert = self._insert(t.records)
        updated = {name: insert.excluded[name] for name in _RECORD_COLUMNS if name not in ("server_name", "ts")}
        return insert.on_conflict_do_update(index_elements=[t.records.c.server_name, t.records.c.ts], set_=updated)

    def _build_server_upsert(self):
        insert = self._insert(t.servers)
        newer = sa.case((insert.excluded.last_ts > t.servers.c.last_ts, insert.excluded.last_ts),
                        else_=t.servers.c.last_ts)
        return insert.on_conflict_do_update(index_elements=[t.servers.c.name], set_={"last_ts": newer})


def write_events(connection: sa.Connection, events) -> None:
    """Insert a tick's alert transitions; a resolution also closes the event that raised the alert."""
    if not events:
        return
    connection.execute(t.alert_events.insert(), [_event_row(e) for e in events])
    for event in events:
        if event.event_type is EventType.RESOLVED:
            connection.execute(
                t.alert_events.update()
                .where(t.alert_events.c.server_name == event.server_name)
                .where(t.alert_events.c.raised_at == event.raised_at.timestamp())
                .values(resolved_at=event.at.timestamp())
            )


def write_risk(connection: sa.Connection, assessments, at: float) -> None:
    """Insert each assessed server's risk on this tick (server history)."""
    if assessments:
        connection.execute(t.server_risk.insert(), [
            {"server_name": a.server_name, "at": at, "risk_score": a.score, "level": a.level.value}
            for a in assessments
        ])


def fleet_row(summary, at: float) -> dict:
    """The fleet_snapshots row of a tick's summary."""
    return {
        "at": at, "total_servers": summary.total_servers, "critical_count": summary.critical,
        "warning_count": summary.warning, "degraded_count": summary.degraded,
        "healthy_count": summary.healthy, "fleet_health": summary.fleet_health,
        "prob_30m": summary.prob_30m, "prob_8h": summary.prob_8h,
        "expected_incidents_30m": summary.expected_incidents_30m,
        "expected_incidents_8h": summary.expected_incidents_8h,
    }


def alert_from_row(r) -> ActiveAlert:
    """An active_alerts row (a mapping) as an ActiveAlert."""
    return ActiveAlert(
        server_name=r["server_name"], level=AlertLevel(r["level"]), risk_score=r["risk_score"],
        profile=r["profile"], message=r["message"], raised_at=utc_from_epoch(r["raised_at"]),
        time_to_issue_minutes=r["time_to_issue_minutes"], metric=r["metric"],
        peak_level=AlertLevel(r["peak_level"]) if r["peak_level"] else None, breached=bool(r["breached"]),
    )


def _record_from_row(row) -> Record:
    return Record(
        timestamp=utc_from_epoch(row[1]),
        server_name=row[0],
        status=row[2] if row[2] in STATUS_VALUES else "healthy",
        values=tuple(math.nan if v is None else float(v) for v in row[3 : 3 + len(METRIC_FIELDS)]),
    )


def _event_row(event) -> dict:
    return {
        "at": event.at.timestamp(), "server_name": event.server_name, "event_type": event.event_type.value,
        "previous_level": event.previous_level.value, "new_level": event.new_level.value,
        "risk_score": event.risk_score, "message": event.message, "profile": event.profile,
        "metric": event.metric, "raised_at": event.raised_at.timestamp(),
        "time_to_issue_minutes": event.time_to_issue_minutes,
        "resolved_at": event.at.timestamp() if event.event_type is EventType.RESOLVED else None,
        "cause": event.cause, "peak_level": event.peak_level.value if event.peak_level else None,
        "breached": event.breached,
    }


def active_row(alert: ActiveAlert) -> dict:
    return {
        "server_name": alert.server_name, "level": alert.level.value, "risk_score": alert.risk_score,
        "profile": alert.profile, "message": alert.message, "metric": alert.metric,
        "raised_at": alert.raised_at.timestamp(), "time_to_issue_minutes": alert.time_to_issue_minutes,
        "peak_level": (alert.peak_level or alert.level).value, "breached": alert.breached,
    }
