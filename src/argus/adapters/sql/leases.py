"""Partition leases in the database: which engine forecasts which servers (ARGUS_ENGINE_SHARDING=1).

Each engine runs a lease round every ``ttl_s / 4`` seconds, in a thread of its own so a long
tick never lets its leases lapse: heartbeat its member row, read the lease table, plan (see
``argus.domain.partitions.plan_leases``) and carry the plan out with conditional updates. A claim
only succeeds on a row that is still free or expired and bumps the row's fencing token; a renewal
only succeeds while the token is the one this engine got. A dead engine stops renewing, so its
partitions are claimed by the others at most ``ttl_s`` plus one round after its last renewal.

Times are the database's clock (PostgreSQL ``clock_timestamp()``), so hosts need not agree on
the time; tests pass a fake ``clock``.

Adapter-internal (no port): PostgreSQL-only machinery the container wires into sharded engines;
the rules it applies are the domain's (``argus.domain.sharding``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping

import sqlalchemy as sa

from argus.adapters.sql import tables as t
from argus.domain.partitions import PARTITIONS, Lease, plan_leases

log = logging.getLogger(__name__)
_L, _M = t.partition_leases, t.engine_members
FORGET_MEMBERS_AFTER_S = 3600.0


def db_now(connection: sa.Connection) -> float:
    """The database's clock in epoch seconds (this host's clock for SQLite, which runs on this host)."""
    if connection.dialect.name == "postgresql":
        return float(connection.execute(sa.text("SELECT EXTRACT(EPOCH FROM clock_timestamp())")).scalar_one())
    return time.time()


class SqlPartitionLeases:
    """One engine's side of the lease table."""

    def __init__(self, engine: sa.Engine, engine_id: str, ttl_s: float = 10.0, partitions: int = PARTITIONS,
                 clock: Callable[[], float] | None = None) -> None:
        self.engine = engine
        self.engine_id = engine_id
        self.ttl_s = ttl_s
        self.partitions = partitions
        self._clock = clock
        self._created = False

    def now(self, connection: sa.Connection) -> float:
        return self._clock() if self._clock is not None else db_now(connection)

    def sync(self) -> dict[int, int]:
        """Run one lease round; return the partitions this engine holds afterwards (partition -> token)."""
        with self.engine.begin() as connection:
            self._ensure_rows(connection)
            now = self.now(connection)
            self._heartbeat(connection, now)
            engines = connection.execute(
                sa.select(sa.func.count()).select_from(_M).where(_M.c.seen_at > now - self.ttl_s)
            ).scalar_one()
            leases = [Lease(r.partition, r.owner, int(r.token), float(r.expires_at))
                      for r in connection.execute(sa.select(_L))]
        plan = plan_leases(leases, self.engine_id, int(engines), now, self.partitions)
        held: dict[int, int] = {}
        with self.engine.begin() as connection:
            now = self.now(connection)
            for partition, token in plan.release.items():
                connection.execute(_L.update().where(_L.c.partition == partition, _L.c.owner == self.engine_id,
                                                     _L.c.token == token).values(owner=None, expires_at=0.0))
            for partition, token in plan.renew.items():
                renewed = connection.execute(
                    _L.update().where(_L.c.partition == partition, _L.c.owner == self.engine_id, _L.c.token == token)
                    .values(expires_at=now + self.ttl_s))
                if renewed.rowcount:
                    held[partition] = token
        for partition in plan.claim:  # one transaction each: a lost race costs one row, not the round
            with self.engine.begin() as connection:
                now = self.now(connection)
                token = connection.execute(
                    _L.update().where(_L.c.partition == partition)
                    .where(sa.or_(_L.c.owner.is_(None), _L.c.expires_at <= now))
                    .values(owner=self.engine_id, token=_L.c.token + 1, expires_at=now + self.ttl_s)
                    .returning(_L.c.token)).scalar()
            if token is not None:
                held[partition] = int(token)
        return held

    def leave(self) -> None:
        """Give every partition back and leave (a clean stop hands the partitions over at once)."""
        with self.engine.begin() as connection:
            connection.execute(_L.update().where(_L.c.owner == self.engine_id).values(owner=None, expires_at=0.0))
            connection.execute(_M.delete().where(_M.c.engine_id == self.engine_id))

    def leases(self) -> list[Lease]:
        with self.engine.connect() as connection:
            return [Lease(r.partition, r.owner, int(r.token), float(r.expires_at))
                    for r in connection.execute(sa.select(_L).order_by(_L.c.partition))]

    def _ensure_rows(self, connection: sa.Connection) -> None:
        if self._created:
            return
        present = set(connection.execute(sa.select(_L.c.partition)).scalars())
        missing = [{"partition": p, "owner": None, "token": 0, "expires_at": 0.0}
                   for p in range(self.partitions) if p not in present]
        if missing:
            insert = _insert(connection, _L).on_conflict_do_nothing(index_elements=[_L.c.partition])
            connection.execute(insert, missing)
        self._created = True

    def _heartbeat(self, connection: sa.Connection, now: float) -> None:
        insert = _insert(connection, _M)
        connection.execute(insert.on_conflict_do_update(index_elements=[_M.c.engine_id],
                                                        set_={"seen_at": insert.excluded.seen_at}),
                           {"engine_id": self.engine_id, "seen_at": now})
        connection.execute(_M.delete().where(_M.c.seen_at < now - FORGET_MEMBERS_AFTER_S))


def _insert(connection: sa.Connection, table: sa.Table):
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


class LeaseRenewer:
    """Runs lease rounds in a daemon thread; ``held()`` is the latest round's answer (empty after a failed one)."""

    def __init__(self, leases: SqlPartitionLeases, every_s: float | None = None) -> None:
        self.leases = leases
        self.every_s = every_s if every_s is not None else leases.ttl_s / 4
        self._held: dict[int, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def held(self) -> Mapping[int, int]:
        with self._lock:
            return dict(self._held)

    def round(self) -> Mapping[int, int]:
        """Run one round now (the engine's first one, before it loads anything)."""
        try:
            held = self.leases.sync()
        except sa.exc.DBAPIError as ex:
            # Keep what we had: a publish under a token the database has since given away is refused
            # anyway (fencing), and dropping every window on a hiccup would cost a full reload.
            log.error("lease round failed (%s); keeping the partitions held so far", ex.__class__.__name__)
            return self.held()
        with self._lock:
            if held != self._held:
                log.info("engine %s holds %d partitions", self.leases.engine_id, len(held))
            self._held = held
        return held

    def start(self) -> None:
        """Run two rounds one period apart before the engine loads anything, then keep renewing in a thread.

        Engines started together see each other by the second round, so the first one does not
        load (and tick) the whole fleet only to give most of it away moments later.
        """
        self.round()
        self._stop.wait(self.every_s)
        self.round()
        self._thread = threading.Thread(target=self._run, name="argus-leases", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.round()

    def stop(self) -> None:
        """Stop renewing and give the partitions back."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with contextlib.suppress(sa.exc.DBAPIError):
            self.leases.leave()
        with self._lock:
            self._held = {}
