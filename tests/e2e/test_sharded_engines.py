"""Three sharded engines on PostgreSQL share the fleet; one is killed and its servers move, none twice.

Every publish of a partition is logged in ``partition_publishes`` (engine, token, tick time,
servers), which is what the assertions read: per partition the engines follow each other
without overlapping, and a partition whose engine died is forecast again within two ticks of
its new owner (and within 15 s of the kill).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict

import pytest
import sqlalchemy as sa

from argus.adapters.http.merged import ShardedPublished
from argus.adapters.sql import tables as t
from argus.adapters.sql.database import create_db_engine, migrate
from argus.adapters.sql.shards import SqlShardReader
from argus.adapters.sql.store import SqlMetricsStore
from argus.domain.metrics import METRIC_FIELDS, Record, utc_from_epoch
from argus.domain.partitions import PARTITIONS
from tests.conftest import POSTGRES_URL, _reset_postgres
from tests.e2e.test_serve import _wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(not POSTGRES_URL, reason="needs ARGUS_TEST_POSTGRES_URL (CI sets it)"),
]
SERVERS = [f"ppweb{i:03d}" for i in range(30)]
TICK_S, LEASE_S = 2.0, 1.5


def _records(step: int, end_s: int, value: float) -> list[Record]:
    values = [value] * len(METRIC_FIELDS)
    return [Record(utc_from_epoch(end_s - step * 300), name, "healthy", tuple(values)) for name in SERVERS]


class Feeder(threading.Thread):
    """Re-sends every server's latest record (new values) a few times a second, so every engine keeps ticking."""

    def __init__(self, store: SqlMetricsStore, end_s: int) -> None:
        super().__init__(daemon=True)
        self.store, self.end_s = store, end_s
        self.stop = threading.Event()

    def run(self) -> None:
        value = 10.0
        while not self.stop.wait(0.25):
            value = 10.0 + (value + 1.0) % 20
            self.store.write_batch(_records(0, self.end_s, value))


def _engine(tmp_path, model_dir, i: int) -> subprocess.Popen:
    env = {**os.environ, "ARGUS_DATA_DIR": str(tmp_path), "ARGUS_DATABASE_URL": POSTGRES_URL,
           "ARGUS_MODEL_DIR": str(model_dir), "ARGUS_ENGINE_SHARDING": "1", "ARGUS_ENGINE_LEASE_S": str(LEASE_S),
           "ARGUS_TICK_INTERVAL_S": str(TICK_S), "ARGUS_ENGINE_POLL_S": "0.1", "ARGUS_EXPLAIN_PRECOMPUTE_MAX": "0",
           "ARGUS_DEVICE": "cpu", "ARGUS_ROLLING_WINDOW_SIZE": "288"}
    log = open(tmp_path / f"engine{i}.log", "w")  # noqa: SIM115 - closed when the process is reaped
    return subprocess.Popen([sys.executable, "-m", "argus", "engine"], env=env, start_new_session=True,
                            stdout=log, stderr=subprocess.STDOUT)


def _publishes(db: sa.Engine, since: float, until: float = float("inf")) -> list[tuple[int, str, int, float, list[str]]]:
    p = t.partition_publishes
    query = (sa.select(p.c.partition, p.c.engine_id, p.c.token, p.c.at, p.c.servers)
             .where(p.c.at >= since, p.c.at <= min(until, 1e12)))
    with db.connect() as connection:
        return [(r[0], r[1], int(r[2]), float(r[3]), json.loads(r[4])) for r in connection.execute(query.order_by(p.c.at))]


def _holders(db: sa.Engine) -> dict[str, int]:
    with db.connect() as connection:
        rows = connection.execute(sa.select(t.partition_leases.c.owner, sa.func.count())
                                  .where(t.partition_leases.c.owner.is_not(None))
                                  .group_by(t.partition_leases.c.owner)).all()
    return {owner: n for owner, n in rows}


def _balanced(db: sa.Engine) -> dict[str, int] | None:
    holders = _holders(db)
    if len(holders) == 3 and sum(holders.values()) == PARTITIONS and min(holders.values()) >= 20:
        recent = {row[1] for row in _publishes(db, time.time() - TICK_S * 2)}
        if recent == set(holders):
            return holders
    return None


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def test_three_engines_share_the_fleet_and_a_killed_ones_servers_move_within_two_ticks(tmp_path, engine_model_dir):
    _reset_postgres(POSTGRES_URL)
    db = create_db_engine(POSTGRES_URL)
    migrate(db)
    store = SqlMetricsStore(db)
    end_s = int(time.time()) // 300 * 300 - 300
    for step in range(24, 0, -1):  # two hours of history: every server ready for the tiny model
        store.write_batch(_records(step, end_s, 20.0))
    feeder = Feeder(store, end_s)
    feeder.start()
    engines = [_engine(tmp_path, engine_model_dir, i) for i in range(3)]
    try:
        holders = _wait_for(lambda: _balanced(db), timeout_s=90)
        observed_from = time.time()
        time.sleep(2 * TICK_S)
        victim = next(p for p in engines if any(owner.split(":")[1] == str(p.pid) for owner in holders))
        victim_id = next(owner for owner in holders if owner.split(":")[1] == str(victim.pid))
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(10)
        killed_at = time.time()
        _wait_for(lambda: len(_holders(db)) == 2 and sum(_holders(db).values()) == PARTITIONS, timeout_s=30)
        time.sleep(3 * TICK_S)
        observed_until = time.time()  # before the survivors stop (a clean stop hands partitions over too)
    finally:
        feeder.stop.set()
        feeder.join(10)
        for process in engines:
            _stop(process)

    rows = _publishes(db, observed_from, observed_until)
    by_partition: dict[int, list[tuple[float, str, int]]] = defaultdict(list)
    ticks: dict[str, list[float]] = defaultdict(list)
    for partition, engine_id, token, at, _ in rows:
        by_partition[partition].append((at, engine_id, token))
        ticks[engine_id].append(at)
    assert set(by_partition) == set(range(PARTITIONS))

    moved = 0
    for partition, publishes in by_partition.items():
        owners = [engine_id for _, engine_id, _ in publishes]
        changes = [i for i in range(1, len(owners)) if owners[i] != owners[i - 1]]
        assert len(changes) <= 1, f"partition {partition} changed hands {len(changes)} times: {owners}"
        tokens = [token for _, _, token in publishes]
        assert tokens == sorted(tokens), f"partition {partition} published under an older token after a newer one"
        for i in changes:  # the dead engine's partition: first publish of its new owner
            (last_at, old, _), (first_at, new, _) = publishes[i - 1], publishes[i]
            assert old == victim_id and first_at > last_at  # never forecast by two engines in one tick
            missed = sorted({at for at in ticks[new] if last_at < at < first_at})
            assert len(missed) <= 2, f"partition {partition}: {len(missed)} ticks of {new} without it"
            assert first_at - killed_at < 15.0
            moved += 1
        assert owners[-1] != victim_id
    assert moved == holders[victim_id]

    servers_per_tick: dict[tuple[str, float], list[str]] = defaultdict(list)
    for _, engine_id, _, at, servers in rows:
        servers_per_tick[(engine_id, at)].extend(servers)
    for names in servers_per_tick.values():
        assert len(names) == len(set(names))
    final = json.loads(ShardedPublished(store, SqlShardReader(db)).read_published("predictions").body)
    assert sorted(final["predictions"]) == SERVERS
    assert final["summary"]["total_servers"] == len(SERVERS)
    db.dispose()
