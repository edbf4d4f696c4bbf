"""Raw records are kept ARGUS_RECORDS_RETENTION_DAYS, purged by the engine in small batches on the ts index."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from dependency_injector import providers

from argus.adapters.http.snapshots import render_status
from argus.adapters.sql import store as store_module
from argus.adapters.sql import tables as t
from argus.domain.schedule import TickScheduler
from argus.domain.services import Engine, EngineStatus, RecordsRetention, WindowKeeper
from argus.entrypoints.container import Container
from argus.testing import BASE_TIME, make_record

DAY = 86400
T0 = int(BASE_TIME.timestamp())


def _records(store) -> list[tuple[str, int]]:
    with store.engine.connect() as connection:
        return [tuple(r) for r in connection.execute(
            sa.select(t.records.c.server_name, t.records.c.ts).order_by(t.records.c.ts, t.records.c.server_name))]


def _batch_ids(store) -> list[int]:
    with store.engine.connect() as connection:
        return list(connection.execute(sa.select(t.ingest_batches.c.id).order_by(t.ingest_batches.c.id)).scalars())


def _seed(store, steps: int, servers=("a", "b")) -> None:
    for step in range(steps):
        store.write_batch([make_record(name, step) for name in servers])


def test_purge_deletes_only_records_older_than_the_cutoff_oldest_first_a_batch_at_a_time(sql_store):
    _seed(sql_store, 10)
    cutoff = T0 + 6 * 300  # steps 0..5 are older
    assert sql_store.purge_records(cutoff, limit=5) == 5
    left = _records(sql_store)
    assert len(left) == 15 and min(ts for _, ts in left) == T0 + 2 * 300  # the oldest five went: steps 0, 1, half of 2
    assert sql_store.purge_records(cutoff, limit=5) == 5
    assert sql_store.purge_records(cutoff, limit=5) == 2
    assert sql_store.purge_records(cutoff, limit=5) == 0
    assert _records(sql_store) == [(name, T0 + 300 * step) for step in range(6, 10) for name in ("a", "b")]
    assert sql_store.server_names() == ["a", "b"]  # servers stay known (404s keep meaning "never seen")


def test_purge_also_forgets_old_ingest_batches_but_keeps_the_newest(sql_store, monkeypatch):
    monkeypatch.setattr(store_module, "KEEP_BATCHES", 3)
    _seed(sql_store, 10)  # batches 1..10, all received "now"
    sql_store.purge_records(T0 + 100 * DAY, limit=4)
    assert _batch_ids(sql_store) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]  # received after the cutoff: kept
    far_future = 2**40
    assert sql_store.purge_records(far_future, limit=4) == 4
    assert _batch_ids(sql_store) == [5, 6, 7, 8, 9, 10]
    for _ in range(5):
        sql_store.purge_records(far_future, limit=4)
    assert _batch_ids(sql_store) == [7, 8, 9, 10]  # the newest and the KEEP_BATCHES before it
    assert sql_store.write_batch([make_record("a", 99)]).batch_id == 11  # ids never restart


def test_the_purge_is_led_by_the_ts_index(sql_store):
    _seed(sql_store, 3)
    statements = []

    def remember(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("DELETE FROM RECORDS"):
            statements.append((statement, parameters))

    sa.event.listen(sql_store.engine, "before_cursor_execute", remember)
    try:
        sql_store.purge_records(T0 + 300, limit=10)
    finally:
        sa.event.remove(sql_store.engine, "before_cursor_execute", remember)
    (statement, parameters), = statements
    with sql_store.engine.connect() as connection:
        raw = connection.connection.driver_connection
        if sql_store.engine.dialect.name == "sqlite":
            plan = " ".join(str(row[-1]) for row in raw.execute(f"EXPLAIN QUERY PLAN {statement}", parameters))
        else:  # a tiny table is cheaper to scan: ask whether the index *can* serve the purge
            cursor = raw.cursor()
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {statement}", parameters)
            plan = " ".join(row[0] for row in cursor.fetchall())
    assert "ix_records_ts" in plan
    if sql_store.engine.dialect.name == "sqlite":
        assert "SCAN" not in plan  # searches only: no table (or whole index) scan


def test_the_chore_purges_again_at_once_while_a_backlog_remains_then_waits(sql_store):
    _seed(sql_store, 10)
    now = [T0 + 35 * DAY + 8 * 300]  # 35 days after step 8: steps 0..7 (16 records) are too old
    chore = RecordsRetention(sql_store, retention_days=35, batch_size=6, idle_s=300.0, clock=lambda: now[0])
    assert [chore() for _ in range(4)] == [6, 6, 4, 0]  # third call: a partial batch, caught up; fourth: not due
    assert len(_records(sql_store)) == 4 and chore.deleted == 16
    now[0] += 150  # caught up: the chore waits idle_s before looking again
    assert chore() == 0
    now[0] += 150  # step 8 has become too old
    assert chore() == 2


def test_the_engine_purges_records_as_housekeeping_without_losing_its_windows(sql_store):
    _seed(sql_store, 12)
    now = [T0 + 35 * DAY + 10 * 300]
    chore = RecordsRetention(sql_store, retention_days=35, batch_size=4, clock=lambda: now[0])
    engine = Engine(WindowKeeper(sql_store, capacity=2880, clock=lambda: now[0]), sql_store,
                    EngineStatus(started_at=0.0, rolling_window_size=2880), render_status,
                    schedule=TickScheduler(housekeeping=[(0.0, chore)], clock=lambda: now[0]))
    engine.start()
    assert engine.keeper.windows.total_records() == 24
    engine.step()
    assert len(_records(sql_store)) == 20  # one small batch per step
    for _ in range(5):
        engine.step()
    assert _records(sql_store) == [(name, T0 + 300 * step) for step in (10, 11) for name in ("a", "b")]
    assert engine.keeper.windows.total_records() == 24  # the windows hold what they held; the database forgot


@pytest.mark.parametrize("days", [35, 7])
def test_the_engine_process_runs_the_purge_with_the_configured_retention(settings, days):
    import attrs

    container = Container()
    container.settings.override(providers.Object(attrs.evolve(settings, records_retention_days=days)))
    try:
        chores = [chore.task for chore in container.engine().schedule.housekeeping]
    finally:
        container.shutdown_resources()
    (sweep,) = [task for task in chores if isinstance(task, RecordsRetention)]
    assert sweep.retention_days == days and sweep.batch_size <= 5000


def test_a_failing_purge_waits_idle_s_instead_of_failing_on_every_step():
    calls = []

    class Down:
        def purge_records(self, before_epoch_s, limit):
            calls.append(before_epoch_s)
            raise ConnectionError("database unreachable")

    now = [1_000_000.0]
    chore = RecordsRetention(Down(), retention_days=1, idle_s=60.0, clock=lambda: now[0])
    with pytest.raises(ConnectionError):
        chore()
    assert chore() == 0 and len(calls) == 1
    now[0] += 60
    with pytest.raises(ConnectionError):
        chore()
    assert len(calls) == 2
