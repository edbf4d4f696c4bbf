"""SqlHistoryStore: the /historical/* queries and the retention purge, over the tick tables.

Port: ``argus.ports.history`` (``HistoryStore``, ``HistoryRetention``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import sqlalchemy as sa

from argus.adapters.sql import tables as t
from argus.domain.alerts import AlertLevel, EventType
from argus.domain.history import AlertRecord, AlertTotals, FleetSnapshot, RiskSeries, thin_indices

_RANK = {level.value: level.rank for level in AlertLevel}
_ALERTING = (AlertLevel.DEGRADED, AlertLevel.WARNING, AlertLevel.CRITICAL)
_ISSUED = (EventType.RAISED.value, EventType.ESCALATED.value)
_ALERT_COLUMNS = ("at", "server_name", "event_type", "previous_level", "new_level", "risk_score", "message",
                  "profile", "metric", "raised_at", "resolved_at", "peak_level", "breached")
_SNAPSHOT_COLUMNS = ("at", "total_servers", "critical_count", "warning_count", "degraded_count",
                     "healthy_count", "fleet_health", "prob_30m", "prob_8h", "expected_incidents_30m",
                     "expected_incidents_8h")
#: The purge deletes in slices of this many seconds, so the engine's tick never waits long on it.
PURGE_SLICE_S = 6 * 3600.0
#: Exports read this many rows per query: bounded memory, and no connection held between chunks.
EXPORT_CHUNK_ROWS = 2000


class SqlHistoryStore:
    """Reads history back from the tables ``SqlMetricsStore.record_tick`` writes (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- alerts ------------------------------------------------------------------------------

    def alert_totals(self, start: float, end: float, server_name: str | None = None) -> AlertTotals:
        """Count alerts issued in the range by worst level; average resolutions; incidents prevented."""
        e = t.alert_events
        worst = sa.func.max(sa.case(*((e.c.new_level == level.value, level.rank) for level in _ALERTING),
                                    else_=0)).label("worst")
        episodes = (
            sa.select(worst)
            .where(*_events_in(start, end, server_name), e.c.event_type.in_(_ISSUED))
            .group_by(e.c.server_name, e.c.raised_at)
            .subquery()
        )
        by_worst = sa.select(episodes.c.worst, sa.func.count()).group_by(episodes.c.worst)
        prevented = sa.case(
            (sa.and_(e.c.peak_level.in_(("warning", "critical")), e.c.breached.is_(sa.false())), 1), else_=0)
        resolved = sa.select(sa.func.avg(e.c.at - e.c.raised_at), sa.func.coalesce(sa.func.sum(prevented), 0)).where(
            *_events_in(start, end, server_name), e.c.event_type == EventType.RESOLVED.value)
        with self.engine.connect() as connection:
            counts = {int(rank): int(n) for rank, n in connection.execute(by_worst)}
            avg_s, prevented_n = connection.execute(resolved).one()
        by_level = {level.value: counts.get(level.rank, 0) for level in reversed(_ALERTING)}
        return AlertTotals(
            total=sum(by_level.values()),
            by_level=by_level,
            avg_resolution_minutes=None if avg_s is None else round(float(avg_s) / 60.0, 1),
            incidents_prevented=int(prevented_n),
        )

    def alert_count(self, start: float, end: float, server_name: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(t.alert_events).where(*_events_in(start, end, server_name))
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def alert_events(self, start: float, end: float, server_name: str | None = None,
                     limit: int | None = None, offset: int = 0) -> list[AlertRecord]:
        e = t.alert_events
        query = (
            sa.select(*(e.c[name] for name in _ALERT_COLUMNS))
            .where(*_events_in(start, end, server_name))
            .order_by(e.c.at.desc(), e.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self.engine.connect() as connection:
            return [AlertRecord._make(row) for row in connection.execute(query).all()]

    def alert_event_chunks(self, start: float, end: float,
                           chunk_rows: int | None = None) -> Iterator[list[AlertRecord]]:
        """Yield the range's alert events oldest first (by time, then as recorded), a chunk per query."""
        for rows in self._chunks_of(t.alert_events, _ALERT_COLUMNS, start, end, chunk_rows):
            yield [AlertRecord._make(row) for row in rows]

    # -- fleet -------------------------------------------------------------------------------

    def fleet_health_avg(self, start: float, end: float) -> float | None:
        s = t.fleet_snapshots
        query = sa.select(sa.func.avg(s.c.fleet_health)).where(s.c.at >= start, s.c.at <= end)
        with self.engine.connect() as connection:
            value = connection.execute(query).scalar()
        return None if value is None else round(float(value), 1)

    def fleet_snapshots(self, start: float, end: float, max_points: int | None = None) -> list[FleetSnapshot]:
        s = t.fleet_snapshots
        in_range = (s.c.at >= start, s.c.at <= end)
        columns = [s.c[name] for name in _SNAPSHOT_COLUMNS]
        with self.engine.connect() as connection:
            n = int(connection.execute(sa.select(sa.func.count()).select_from(s).where(*in_range)).scalar_one())
            if max_points is None or n <= max_points:
                query = sa.select(*columns).where(*in_range).order_by(s.c.at, s.c.id)
            else:
                # Number the range's rows in the database and fetch only the chosen ones.
                numbered = sa.select(*columns, sa.func.row_number().over(order_by=(s.c.at, s.c.id)).label("rn"))
                numbered = numbered.where(*in_range).subquery()
                wanted = [i + 1 for i in thin_indices(n, max_points)]
                query = (sa.select(*(numbered.c[name] for name in _SNAPSHOT_COLUMNS))
                         .where(numbered.c.rn.in_(wanted)).order_by(numbered.c.rn))
            return [FleetSnapshot._make(row) for row in connection.execute(query).all()]

    def fleet_snapshot_chunks(self, start: float, end: float,
                              chunk_rows: int | None = None) -> Iterator[list[FleetSnapshot]]:
        """Yield the range's snapshots oldest first, unthinned, a chunk per query."""
        for rows in self._chunks_of(t.fleet_snapshots, _SNAPSHOT_COLUMNS, start, end, chunk_rows):
            yield [FleetSnapshot._make(row) for row in rows]

    # -- servers -----------------------------------------------------------------------------

    def risk_series(self, server_name: str, start: float, end: float) -> RiskSeries:
        r = t.server_risk
        query = (sa.select(r.c.at, r.c.risk_score, r.c.level)
                 .where(r.c.server_name == server_name, r.c.at >= start, r.c.at <= end).order_by(r.c.at))
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        n = len(rows)
        return RiskSeries(
            at=np.fromiter((row[0] for row in rows), dtype=np.float64, count=n),
            scores=np.fromiter((row[1] for row in rows), dtype=np.float64, count=n),
            levels=np.fromiter((_RANK.get(row[2], 0) for row in rows), dtype=np.int8, count=n),
        )

    def server_known(self, server_name: str) -> bool:
        query = sa.select(t.servers.c.name).where(t.servers.c.name == server_name)
        with self.engine.connect() as connection:
            return connection.execute(query).first() is not None

    # -- retention ---------------------------------------------------------------------------

    def purge(self, before_epoch_s: float) -> dict[str, int]:
        """Delete history older than ``before_epoch_s``, in short transactions of a few hours each."""
        deleted = {}
        for table in (t.alert_events, t.fleet_snapshots, t.server_risk):
            with self.engine.connect() as connection:
                oldest = connection.execute(sa.select(sa.func.min(table.c.at))).scalar()
            count = 0
            edge = float(before_epoch_s) if oldest is None else float(oldest)
            while edge < before_epoch_s:
                edge = min(float(before_epoch_s), edge + PURGE_SLICE_S)
                with self.engine.begin() as connection:
                    count += connection.execute(table.delete().where(table.c.at < edge)).rowcount
            deleted[table.name] = count
        return deleted


    def _chunks_of(self, table: sa.Table, names: tuple[str, ...], start: float, end: float,
                   chunk_rows: int | None) -> Iterator[list[tuple]]:
        """Rows of ``table`` with ``start <= at <= end`` ordered by (at, id), a short query per chunk:
        each resumes after the last (at, id) it returned (on the ``at`` index), so a slow download
        holds no connection and memory stays one chunk."""
        columns = [*(table.c[name] for name in names), table.c.id]
        chunk_rows = chunk_rows or EXPORT_CHUNK_ROWS
        after: tuple[float, int] | None = None
        while True:
            query = sa.select(*columns).where(table.c.at >= start, table.c.at <= end)
            if after is not None:
                query = query.where(table.c.at >= after[0],
                                    sa.or_(table.c.at > after[0], table.c.id > after[1]))
            with self.engine.connect() as connection:
                rows = connection.execute(query.order_by(table.c.at, table.c.id).limit(chunk_rows)).all()
            if rows:
                yield [row[:-1] for row in rows]
            if len(rows) < chunk_rows:
                return
            after = (rows[-1][0], rows[-1][-1])


def _events_in(start: float, end: float, server_name: str | None) -> list:
    e = t.alert_events
    conditions = [e.c.at >= start, e.c.at <= end]
    if server_name is not None:
        conditions.append(e.c.server_name == server_name)
    return conditions
