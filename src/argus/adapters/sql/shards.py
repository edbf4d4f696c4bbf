"""What sharded engines publish (one row per partition, fenced by the lease) and what web workers union.

Engine side (``SqlShardPublisher``): a tick writes, in one transaction, only the partitions whose
lease still carries the token the engine loaded them with. The lease rows are read ``FOR SHARE``,
so a claim by another engine waits for this transaction or makes it see the new token: a publish
from an engine that lost its lease is refused, whatever its clock or how long it was paused.

Web side (``SqlShardReader``): the rows as they are; ``argus.adapters.http.snapshots`` merges them.

Adapter-internal (no port of its own): the container composes it into the engine's ``TickLog``
and the workers' ``PublishedResults``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence

import attrs
import numpy as np
import orjson
import sqlalchemy as sa

from argus.adapters.sql import tables as t
from argus.adapters.sql.leases import db_now
from argus.adapters.sql.store import (
    SqlMetricsStore,
    active_row,
    alert_from_row,
    fleet_row,
    write_events,
    write_risk,
)
from argus.domain.alerts import ActiveAlert, AlertLevel
from argus.domain.ingestion import ServerHistory
from argus.domain.metrics import METRIC_FIELDS, STATUS_CODE
from argus.domain.partitions import Ownership, ScoredServer, body_key
from argus.domain.risk import summarize
from argus.domain.ticks import TickResult

log = logging.getLogger(__name__)
_L, _S, _A, _M = t.partition_leases, t.partition_snapshots, t.active_alerts, t.engine_members
PARTITION_KEY = body_key(0).rstrip("0")  # "partition:<n>": a partition's /predictions/current entries
KEEP_PUBLISHES_S = 86400.0


class SqlShardPublisher:
    """One sharded engine's writes: fenced tick results, its status, its servers' histories and alerts."""

    def __init__(self, store: SqlMetricsStore, engine_id: str, ownership: Ownership) -> None:
        self.store = store
        self.engine = store.engine
        self.engine_id = engine_id
        self.ownership = ownership

    # -- the Engine's PublishedResults and TickLog ------------------------------------------

    def publish(self, items: dict[str, str]) -> None:
        """Publish bodies: the status goes to this engine's member row, the rest where the single engine puts it."""
        items = dict(items)
        status = items.pop("status", None)
        with self.engine.begin() as connection:
            if status is not None:
                self._status(connection, status)
            self.store.publish_in(connection, items)

    def record_tick(self, result: TickResult, published: dict[str, str]) -> set[int]:
        """Write the tick for every partition still leased with the loaded token; return the refused ones."""
        bodies = dict(published)
        status = bodies.pop("status", None)
        servers = {int(k[len(PARTITION_KEY):]): bodies.pop(k) for k in list(bodies) if k.startswith(PARTITION_KEY)}
        loaded = dict(self.ownership.tokens)
        at = result.at.timestamp()
        with self.engine.begin() as connection:
            valid = self._fenced(connection, loaded)
            of = self.ownership.of
            write_events(connection, [e for e in result.events if of(e.server_name) in valid])
            if valid:
                connection.execute(_A.delete().where(_A.c.partition.in_(valid)))
            active = [{**active_row(a), "partition": of(a.server_name)} for a in result.active
                      if of(a.server_name) in valid]
            if active:
                connection.execute(_A.insert(), active)
            assessed = [a for a in result.assessments if of(a.server_name) in valid]
            write_risk(connection, assessed, at)
            self._snapshots(connection, result, valid, loaded, servers, assessed)
            if 0 in valid:  # the holder of partition 0 records the fleet's snapshot over every partition
                connection.execute(t.fleet_snapshots.insert(), fleet_row(summarize(self._scores(connection)), at))
                connection.execute(t.partition_publishes.delete()
                                   .where(t.partition_publishes.c.at < at - KEEP_PUBLISHES_S))
            if status is not None:
                self._status(connection, status)
            self.store.publish_in(connection, bodies)
        refused = set(loaded) - valid
        if refused:
            log.warning("tick not published for %d partitions whose lease moved to another engine: %s",
                        len(refused), sorted(refused))
        return refused

    def active_alerts(self) -> list[ActiveAlert]:
        """The open alerts of the partitions this engine holds (what its alert tracker resumes)."""
        return self.active_alerts_in(self.ownership.tokens)

    # -- loading partitions -----------------------------------------------------------------

    def active_alerts_in(self, partitions: Iterable[int]) -> list[ActiveAlert]:
        partitions = list(partitions)
        if not partitions:
            return []
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(_A).where(_A.c.partition.in_(partitions))).mappings().all()
        return [alert_from_row(r) for r in rows]

    def histories_of(self, names: Sequence[str], limit_per_server: int | None) -> Iterator[ServerHistory]:
        """Yield the newest ``limit_per_server`` records of each of ``names`` as arrays, oldest first."""
        metric_columns = [t.records.c[name] for name in METRIC_FIELDS]
        with self.engine.connect() as connection:
            for name in names:
                query = (sa.select(t.records.c.ts, t.records.c.status, *metric_columns)
                         .where(t.records.c.server_name == name)
                         .order_by(t.records.c.ts.desc()).limit(limit_per_server))
                rows = connection.execute(query).all()
                if not rows:
                    continue
                rows.reverse()
                yield ServerHistory(
                    server_name=name,
                    timestamps=np.array([r[0] for r in rows], dtype=np.int64),
                    statuses=np.array([STATUS_CODE.get(r[1], 0) for r in rows], dtype=np.int8),
                    values=np.array([r[2:] for r in rows], dtype=np.float64).reshape(len(rows), len(METRIC_FIELDS)),
                )

    # -- inside the tick's transaction ------------------------------------------------------

    def _fenced(self, connection: sa.Connection, loaded: dict[int, int]) -> set[int]:
        if not loaded:
            return set()
        rows = connection.execute(sa.select(_L.c.partition, _L.c.owner, _L.c.token)
                                  .where(_L.c.partition.in_(list(loaded))).with_for_update(read=True))
        return {p for p, owner, token in rows if owner == self.engine_id and int(token) == loaded[p]}

    def _snapshots(self, connection, result: TickResult, valid: set[int], loaded: dict[int, int],
                   servers: dict[int, str], assessed) -> None:
        if not valid:
            return
        now = db_now(connection)
        at = result.at.timestamp()
        of = self.ownership.of
        scores: dict[int, list] = {p: [] for p in valid}
        for a in assessed:
            scores[of(a.server_name)].append([a.server_name, a.level.value, a.score, a.prob_30m, a.prob_8h])
        rows = [{"partition": p, "engine_id": self.engine_id, "token": loaded[p], "at": at, "updated_at": now,
                 "model": result.model_name, "min_history_steps": result.min_history_steps,
                 "servers": servers.get(p, "{}"), "scores": orjson.dumps(scores[p]).decode()} for p in sorted(valid)]
        insert = self.store._insert(_S)
        connection.execute(insert.on_conflict_do_update(
            index_elements=[_S.c.partition],
            set_={c: insert.excluded[c] for c in ("engine_id", "token", "at", "updated_at", "model",
                                                  "min_history_steps", "servers", "scores")}), rows)
        connection.execute(t.partition_publishes.insert(), [
            {"partition": p, "engine_id": self.engine_id, "token": loaded[p], "at": at,
             "servers": orjson.dumps([s[0] for s in scores[p]]).decode()} for p in sorted(valid)])

    def _scores(self, connection: sa.Connection) -> list[ScoredServer]:
        return [ScoredServer(AlertLevel(level), score, p30, p8h)
                for (body,) in connection.execute(sa.select(_S.c.scores))
                for _, level, score, p30, p8h in orjson.loads(body)]

    def _status(self, connection: sa.Connection, body: str) -> None:
        now = db_now(connection)
        insert = self.store._insert(_M)
        connection.execute(insert.on_conflict_do_update(
            index_elements=[_M.c.engine_id], set_={"status": insert.excluded.status,
                                                   "status_at": insert.excluded.status_at}),
            {"engine_id": self.engine_id, "seen_at": now, "status": body, "status_at": now})


@attrs.frozen
class PartitionRow:
    """One partition's latest published tick, as web workers read it."""

    partition: int
    engine_id: str
    at: float
    updated_at: float
    model: str
    min_history_steps: int
    servers: str
    scores: str

    def scored(self) -> list[ScoredServer]:
        return [ScoredServer(AlertLevel(level), score, p30, p8h)
                for _, level, score, p30, p8h in orjson.loads(self.scores)]


class SqlShardReader:
    """The web workers' reads of what sharded engines published."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def snapshot_version(self) -> float | None:
        """When any partition was last published (the database's clock), None when none ever was."""
        with self.engine.connect() as connection:
            value = connection.execute(sa.select(sa.func.max(_S.c.updated_at))).scalar()
        return None if value is None else float(value)

    def snapshots(self) -> list[PartitionRow]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(_S).order_by(_S.c.partition)).mappings().all()
        return [PartitionRow(**{f.name: r[f.name] for f in attrs.fields(PartitionRow)}) for r in rows]

    def active_alerts(self) -> list[ActiveAlert]:
        """The open alerts sharded engines published (rows with a partition)."""
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(_A).where(_A.c.partition.is_not(None))).mappings().all()
        return [alert_from_row(r) for r in rows]

    def status_version(self) -> float | None:
        with self.engine.connect() as connection:
            value = connection.execute(sa.select(sa.func.max(_M.c.status_at))).scalar()
        return None if value is None else float(value)

    def statuses(self, within_s: float) -> list[tuple[str, str, float, int]]:
        """(engine id, status JSON, when, partitions held) of engines whose status is at most ``within_s``
        older than the newest one, newest first."""
        newest = self.status_version()
        if newest is None:
            return []
        held = (sa.select(sa.func.count()).select_from(_L).where(_L.c.owner == _M.c.engine_id)
                .scalar_subquery())
        query = (sa.select(_M.c.engine_id, _M.c.status, _M.c.status_at, held)
                 .where(_M.c.status.is_not(None), _M.c.status_at >= newest - within_s)
                 .order_by(_M.c.status_at.desc()))
        with self.engine.connect() as connection:
            return [(e, s, float(at), int(n)) for e, s, at, n in connection.execute(query)]
