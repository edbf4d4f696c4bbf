"""SqlMetricsStore on real SQLite (and PostgreSQL when configured): durable, atomic, idempotent."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from argus.adapters.sql import tables as t
from argus.adapters.sql.database import LeaderLock, create_db_engine, migrate
from argus.adapters.sql.store import SqlMetricsStore
from argus.testing import make_record


def _count(store: SqlMetricsStore, table: sa.Table) -> int:
    with store.engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_a_batch_is_committed_with_its_tick_and_servers(sql_store):
    receipt = sql_store.write_batch([make_record("a", 0), make_record("b", 0), make_record("a", 1)])
    assert (receipt.batch_id, receipt.records, receipt.servers) == (1, 3, 2)
    assert sql_store.write_batch([make_record("c", 0)]).batch_id == 2
    assert sql_store.server_names() == ["a", "b", "c"]
    assert sql_store.count_records(up_to=100) == 4
    assert sql_store.count_records(up_to=2) == 2


def test_resending_the_same_records_is_idempotent_and_last_write_wins(sql_store):
    sql_store.write_batch([make_record("a", 0, mem_used_pct=50.0)])
    sql_store.write_batch([make_record("a", 0, mem_used_pct=60.0)])
    assert _count(sql_store, t.records) == 1
    (record,) = sql_store.records_in_batches([2])
    assert record.value("mem_used_pct") == 60.0
    assert sql_store.records_in_batches([1]) == []


def test_a_failing_batch_leaves_nothing_half_written(sql_store, monkeypatch):
    sql_store.write_batch([make_record("a", 0)])
    broken = make_record("b", 0)
    object.__setattr__(broken, "status", None)  # violates NOT NULL inside the transaction
    with pytest.raises(sa.exc.IntegrityError):
        sql_store.write_batch([make_record("b", 1), broken])
    assert _count(sql_store, t.records) == 1
    assert _count(sql_store, t.ingest_batches) == 1
    assert sql_store.server_names() == ["a"]


def test_server_last_timestamp_never_moves_backwards(sql_store):
    sql_store.write_batch([make_record("a", 10)])
    sql_store.write_batch([make_record("a", 3)])
    with sql_store.engine.connect() as connection:
        last_ts = connection.execute(sa.select(t.servers.c.last_ts)).scalar_one()
    assert last_ts == make_record("a", 10).epoch_s


def test_histories_hold_each_servers_newest_records_oldest_first(sql_store):
    sql_store.write_batch([make_record("a", s, cpu_user_pct=float(s)) for s in range(10)] + [make_record("b", 0)])
    histories = {h.server_name: h for h in sql_store.server_histories(limit_per_server=4)}
    assert histories["a"].values[:, 0].tolist() == [6.0, 7.0, 8.0, 9.0]
    assert histories["a"].timestamps.tolist() == sorted(histories["a"].timestamps.tolist())
    assert len(histories["b"].timestamps) == 1


def test_feed_cursor_lists_batches_after_an_id(sql_store):
    for step in range(3):
        sql_store.write_batch([make_record("a", step)])
    assert [b for b, _ in sql_store.batches_after(1)] == [2, 3]
    assert sql_store.last_batch_id() == 3


def test_published_bodies_are_replaced_by_key(sql_store):
    assert sql_store.read_published("status") is None
    sql_store.publish({"status": '{"a": 1}'})
    sql_store.publish({"status": '{"a": 2}', "other": "{}"})
    assert sql_store.read_published("status").body == '{"a": 2}'


def test_migrating_twice_changes_nothing(database_url):
    engine = create_db_engine(database_url)
    migrate(engine)
    SqlMetricsStore(engine).write_batch([make_record("a", 0)])
    migrate(engine)
    assert SqlMetricsStore(engine).count_records(10) == 1
    engine.dispose()


def test_only_one_engine_holds_the_leader_lock_until_it_lets_go(database_url):
    first_db, second_db = create_db_engine(database_url), create_db_engine(database_url)
    migrate(first_db)
    first, second = LeaderLock(first_db), LeaderLock(second_db)
    try:
        assert first.try_acquire()
        assert not second.try_acquire()
        assert first.still_held()
        first.release()
        assert second.try_acquire()
    finally:
        first.release()
        second.release()
        first_db.dispose()
        second_db.dispose()


def test_sqlite_runs_in_wal_mode_with_full_sync(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    engine.dispose()
