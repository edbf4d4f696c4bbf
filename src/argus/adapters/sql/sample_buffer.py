"""SqlSampleBuffer and StepCloser: host samples kept in the database until their five-minute step closes.

Web workers ``accept`` observations (``argus.domain.rollup``) in one transaction before they answer;
the engine's ``StepCloser`` rolls closed steps up into records, stores them through the
``MetricsStore`` as ``POST /feed/data`` does, and forgets samples no later step needs.

Per server, ``closed_through_s`` is the end of the last closed step: samples at or before it are
dropped on arrival (counted as out of order), so a closed step never changes. Closing is two-phase
so that a kill -9 anywhere loses nothing: the closer first *claims* steps (raises ``closed_through_s``,
which waits for every ingest transaction holding that server's row to commit), then rolls them up
from the stored samples and stores the records, and only then marks them emitted
(``emitted_through_s``) and deletes samples older than the last emitted step. A closer that died
between claim and emission leaves ``emitted_through_s < closed_through_s``: the next pass rolls the
same samples up again, and the record upsert makes the repeat harmless.

Port: ``argus.ports.rollup.SampleBuffer`` (``StepCloser`` is adapter-internal: the engine's chore).
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from argus.adapters.sql import tables as t
from argus.adapters.sql.bulk import driver_rows
from argus.domain.ingestion import AcceptedTimes
from argus.domain.metrics import Record, utc_from_epoch
from argus.domain.rollup import Observation, RollupPolicy, missing_required, roll_up, step_end_s
from argus.ports.storage import MetricsStore

log = logging.getLogger(__name__)

#: Samples waiting for their step to close (and the last closed step's, the next one's counter baselines).
rollup_samples = sa.Table(
    "rollup_samples",
    t.metadata,
    sa.Column("server_name", sa.String(128), primary_key=True),
    sa.Column("signal", sa.String(32), primary_key=True),
    sa.Column("series", sa.String(512), primary_key=True),
    sa.Column("ts_ms", sa.BigInteger, primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
)

#: Per server: the last closed and the last emitted step, the newest sample, when the last one arrived.
rollup_servers = sa.Table(
    "rollup_servers",
    t.metadata,
    sa.Column("server_name", sa.String(128), primary_key=True),
    sa.Column("closed_through_s", sa.BigInteger, nullable=False),
    sa.Column("emitted_through_s", sa.BigInteger, nullable=False),
    sa.Column("newest_ts_ms", sa.BigInteger, nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
)


@attrs.frozen
class AcceptReceipt:
    """What one ``accept`` stored, and what it dropped and why."""

    stored: int
    duplicate: int
    out_of_order: int


class SqlSampleBuffer:
    """Durable per-server sample buffer: the web workers' side of the rollup."""

    def __init__(self, engine: sa.Engine, policy: RollupPolicy) -> None:
        self.engine = engine
        self.policy = policy
        insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        # RETURNING: the rows really inserted (executemany's rowcount is not a sum on every driver).
        self._insert_samples = insert(rollup_samples).on_conflict_do_nothing().returning(rollup_samples.c.ts_ms)
        servers = insert(rollup_servers)
        newest = sa.case((servers.excluded.newest_ts_ms > rollup_servers.c.newest_ts_ms, servers.excluded.newest_ts_ms),
                         else_=rollup_servers.c.newest_ts_ms)
        self._upsert_servers = servers.on_conflict_do_update(
            index_elements=[rollup_servers.c.server_name],
            set_={"newest_ts_ms": newest, "received_at": servers.excluded.received_at,
                  "source": servers.excluded.source},
        )

    def accept(self, observations: Sequence[Observation], source: str, now: float | None = None) -> AcceptReceipt:
        """Store ``observations`` from ``source`` in one transaction (all, or none on an error); drop
        samples of closed steps (out of order). A repeated (server, signal, series, time) keeps the first
        value: a re-sent request stores nothing twice."""
        if not observations:
            return AcceptReceipt(0, 0, 0)
        now = time.time() if now is None else now
        span: dict[str, list[int]] = {}
        for o in observations:
            low_high = span.setdefault(o.server, [o.ts_ms, o.ts_ms])
            low_high[0], low_high[1] = min(low_high[0], o.ts_ms), max(low_high[1], o.ts_ms)
        step = self.policy.step_s
        # The server rows first, sorted: the write lock (SQLite) or row locks (PostgreSQL) come before
        # reading closed_through_s, so a closer cannot claim a step between that read and the commit.
        server_rows = [{"server_name": name, "closed_through_s": step_end_s(low, step) - step,
                        "emitted_through_s": step_end_s(low, step) - step, "newest_ts_ms": high, "received_at": now,
                        "source": source}
                       for name, (low, high) in sorted(span.items())]
        with self.engine.begin() as connection:
            connection.execute(self._upsert_servers, server_rows)
            closed = _closed_through(connection, list(span))
            rows, seen = [], set()
            for o in observations:
                key = (o.server, o.signal, o.series, o.ts_ms)
                if o.ts_ms > closed[o.server] * 1000 and key not in seen:
                    seen.add(key)
                    rows.append({"server_name": o.server, "signal": o.signal, "series": o.series,
                                 "ts_ms": o.ts_ms, "value": o.value})
            out_of_order = sum(1 for o in observations if o.ts_ms <= closed[o.server] * 1000)
            inserted = len(connection.execute(self._insert_samples, rows).all()) if rows else 0
        return AcceptReceipt(stored=inserted, duplicate=len(observations) - out_of_order - inserted,
                             out_of_order=out_of_order)


def _closed_through(connection: sa.Connection, names: list[str]) -> dict[str, int]:
    closed = {}
    for i in range(0, len(names), 500):
        query = sa.select(rollup_servers.c.server_name, rollup_servers.c.closed_through_s).where(
            rollup_servers.c.server_name.in_(names[i:i + 500]))
        closed.update((name, int(through)) for name, through in connection.execute(query))
    return closed


class StepCloser:
    """The engine's chore: close due steps, store their records, forget samples no later step needs.

    One call handles at most ``batch_servers`` servers (a fleet's steps all end together; the
    engine's loop must stay responsive), and is asked again at once while servers remain due.
    """

    def __init__(self, buffer: SqlSampleBuffer, store: MetricsStore, accepted: AcceptedTimes | None = None,
                 on_stored: Callable[[str, int], object] | None = None, batch_servers: int = 50,
                 idle_s: float = 1.0, clock: Callable[[], float] = time.time,
                 owns: Callable[[str], bool] | None = None) -> None:
        self.buffer = buffer
        self.owns = owns  # sharded engines: each closes the servers of its partitions only
        self.on_stored = on_stored  # (source, records stored): Argus's own metrics
        self.idle_s = idle_s
        self.store = store
        self.accepted = accepted
        self.batch_servers = batch_servers
        self.clock = clock
        self.emitted = 0  # records stored since start, for logs and tests
        self.incomplete = 0  # steps not stored for lack of a forecast target
        self._due_at = -float("inf")
        self._forget_at = -float("inf")

    @property
    def _policy(self) -> RollupPolicy:
        return self.buffer.policy

    def __call__(self) -> int:
        """Close what is due (at most ``batch_servers`` servers); return the records stored.

        Registered to run on every engine step, it looks every ``idle_s`` seconds, and again at once
        while a full batch came back.
        """
        now = self.clock()
        if now < self._due_at:
            return 0
        self._due_at = now + self.idle_s  # also after a failure: the engine logs it, no retry every step
        due = self._claim(now)
        if len(due) >= self.batch_servers:
            self._due_at = now
        if not due:
            if now >= self._forget_at:
                self._forget_at = now + self._policy.step_s
                self._forget_quiet(now)
            return 0
        samples = self._samples(due)
        records, by_source = [], Counter()
        for server, emitted_through, closed_through, source in due:
            rolled = self._roll_up(server, samples.get(server, []), emitted_through, closed_through, now)
            records.extend(rolled)
            by_source[source] += len(rolled)
        if records:
            self.store.write_batch(records, request_id="rollup")
        self._finish(due)
        self.emitted += len(records)
        for source, count in by_source.items():
            if self.on_stored is not None and count:
                self.on_stored(source, count)
        return len(records)

    def _claim(self, now: float) -> list[tuple[str, int, int, str]]:
        """Raise closed_through_s where steps may close; return (server, emitted through, closed through, source)."""
        s = rollup_servers.c
        query = (sa.select(s.server_name, s.closed_through_s, s.emitted_through_s, s.newest_ts_ms, s.received_at,
                           s.source)
                 .where(sa.or_(s.emitted_through_s < s.closed_through_s,
                               s.newest_ts_ms > s.closed_through_s * 1000))
                 .order_by(s.server_name))
        with self.buffer.engine.begin() as connection:
            sources, raises = {}, []
            for name, closed, emitted, newest, received_at, source in connection.execute(query).all():
                if self.owns is not None and not self.owns(name):
                    continue
                through = self._policy.closable_through(int(closed), int(newest), now - float(received_at))
                if through > closed:
                    raises.append({"name": name, "old": closed, "new": through})
                if through > emitted:
                    sources[name] = source
                if len(sources) >= self.batch_servers:
                    break
            if not sources:
                return []
            if raises:  # compare-and-set: a raise another closer made first stands
                raise_if_unchanged = (sa.update(rollup_servers)
                                      .where(s.server_name == sa.bindparam("name"),
                                             s.closed_through_s == sa.bindparam("old"))
                                      .values(closed_through_s=sa.bindparam("new")))
                connection.execute(raise_if_unchanged, raises)
            states = connection.execute(sa.select(s.server_name, s.emitted_through_s, s.closed_through_s)
                                        .where(s.server_name.in_(sorted(sources)))).all()
        return sorted((name, int(emitted), int(closed), sources[name])
                      for name, emitted, closed in states if closed > emitted)

    def _samples(self, due: list[tuple[str, int, int, str]]) -> dict[str, list[Observation]]:
        """The samples the due steps need (theirs and the step before each), by server, oldest first."""
        step = self._policy.step_s
        bounds = {name: ((emitted - step) * 1000, closed * 1000) for name, emitted, closed, _ in due}
        r = rollup_samples.c
        query = (sa.select(r.server_name, r.signal, r.series, r.ts_ms, r.value)
                 .where(r.server_name.in_(sorted(bounds)), r.ts_ms > min(low for low, _ in bounds.values()),
                        r.ts_ms <= max(high for _, high in bounds.values())))
        by_server: dict[str, list[Observation]] = {name: [] for name in bounds}
        with self.buffer.engine.connect() as connection:
            for rows in driver_rows(connection, query, 32_768):  # plain tuples: a fleet's step is ~1 M rows
                for server, signal, series, ts, value in rows:
                    low, high = bounds[server]
                    if low < ts <= high:
                        by_server[server].append(Observation(server, signal, series, int(ts), float(value)))
        for observations in by_server.values():
            observations.sort(key=lambda o: o.ts_ms)
        return by_server

    def _roll_up(self, server: str, observations: list[Observation], emitted_through: int, closed_through: int,
                 now: float) -> list[Record]:
        step = self._policy.step_s
        times = [o.ts_ms for o in observations]
        earliest, latest = self.accepted.span(utc_from_epoch(now)) if self.accepted else (None, None)
        records = []
        for end in range(emitted_through + step, closed_through + 1, step):
            window = observations[bisect.bisect_right(times, (end - 2 * step) * 1000):
                                  bisect.bisect_right(times, end * 1000)]
            record = roll_up(server, end, window, self._policy)
            if record is None:
                continue
            missing = missing_required(record)
            if missing or (earliest is not None and not earliest <= record.timestamp <= latest):
                self.incomplete += 1
                log.warning("step %s of %s not stored: %s", record.timestamp.isoformat(), server,
                            f"no {', '.join(missing)}" if missing else "outside the accepted time span")
                continue
            records.append(record)
        return records

    def _forget_quiet(self, now: float) -> None:
        """Delete the last samples of servers quiet for two steps, all of whose steps are emitted: only a
        next step would have read them (as baselines), and it is two steps late for that."""
        s, r = rollup_servers.c, rollup_samples.c
        quiet = sa.select(s.server_name).where(s.emitted_through_s == s.closed_through_s,
                                               s.newest_ts_ms <= s.closed_through_s * 1000,
                                               s.received_at < now - 2 * self._policy.step_s)
        with self.buffer.engine.begin() as connection:
            connection.execute(sa.delete(rollup_samples).where(r.server_name.in_(quiet)))

    def _finish(self, due: list[tuple[str, int, int, str]]) -> None:
        """Mark the steps emitted and delete samples older than the last emitted step (its baselines stay)."""
        s, r = rollup_servers.c, rollup_samples.c
        step = self._policy.step_s
        done = [{"name": name, "closed": closed, "before_ms": (closed - step) * 1000} for name, _, closed, _ in due]
        with self.buffer.engine.begin() as connection:
            connection.execute(sa.update(rollup_servers)
                               .where(s.server_name == sa.bindparam("name"),
                                      s.emitted_through_s < sa.bindparam("closed"))
                               .values(emitted_through_s=sa.bindparam("closed")), done)
            connection.execute(sa.delete(rollup_samples).where(r.server_name == sa.bindparam("name"),
                                                               r.ts_ms <= sa.bindparam("before_ms")), done)
