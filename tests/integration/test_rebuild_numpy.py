"""The restart rebuild reads records straight into numpy and gives exactly the windows the per-row code gave."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import sqlalchemy as sa

from argus.adapters.sql import bulk
from argus.adapters.sql import tables as t
from argus.adapters.sql.bulk import driver_rows, read_histories
from argus.domain.ingestion import ServerHistory
from argus.domain.metrics import (
    FIELDS,
    INTEGER_FIELDS,
    METRIC_FIELDS,
    OPTIONAL_FIELDS,
    STATUS_CODE,
    STATUS_VALUES,
    FleetWindows,
    Record,
    utc_from_epoch,
)
from argus.domain.services import WindowKeeper

BASE = 1_736_899_200
NOW = BASE + 300 * 60


def per_row_histories(store, limit_per_server):
    """The conversion ``SqlMetricsStore.server_histories`` did before (one query per server, row by row)."""
    metric_columns = [t.records.c[name] for name in METRIC_FIELDS]
    with store.engine.connect() as connection:
        for name in store.server_names():
            query = (sa.select(t.records.c.ts, t.records.c.status, *metric_columns)
                     .where(t.records.c.server_name == name).order_by(t.records.c.ts.desc()).limit(limit_per_server))
            rows = connection.execute(query).all()
            if not rows:
                continue
            rows.reverse()
            yield (name,
                   np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
                   np.fromiter((STATUS_CODE[r[1]] for r in rows), dtype=np.int8, count=len(rows)),
                   np.array([r[2:] for r in rows], dtype=np.float32).reshape(len(rows), len(METRIC_FIELDS)))


def record(server: str, step: int, rng: np.random.Generator, status: str = "healthy") -> Record:
    values = []
    for name in METRIC_FIELDS:
        if name in INTEGER_FIELDS:
            values.append(int(rng.integers(2**24, 2**31)))  # past float32's exact integers: same rounding
        else:
            values.append(float(rng.choice([rng.uniform(0, 100), rng.uniform(-1e30, 1e30), 1 / 3, 1e-40])))
    return Record(utc_from_epoch(BASE + 300 * step), server, status, tuple(values))


@pytest.fixture
def seeded(sql_store):
    """Servers with gaps, silent lately, every status, a back-filled step, a re-sent (replaced) step, one far in
    the future, one server with no records."""
    rng = np.random.default_rng(3)
    steps = {"web-01": range(40), "db-é02": [*range(0, 10), *range(25, 30)], "a-03": [7], "Zeta-04": range(5, 45, 3)}
    for step in range(45):
        batch = [record(name, step, rng, STATUS_VALUES[(step + i) % len(STATUS_VALUES)])
                 for i, (name, wanted) in enumerate(steps.items()) if step in wanted]
        if batch:
            sql_store.write_batch(batch)
    sql_store.write_batch([record("web-01", -3, rng, "offline")])  # back-filled, older than everything
    sql_store.write_batch([record("web-01", 20, rng, "maintenance")])  # re-sent: replaces step 20
    sql_store.write_batch([record("web-01", 25_000_000, rng)])  # dated 2262, stored before ingestion refused it
    with sql_store.engine.begin() as connection:
        connection.execute(t.servers.insert(), {"name": "gone-05", "first_seen_at": 0.0, "last_ts": BASE})
        missing = {name: None for name in sorted(OPTIONAL_FIELDS)[:2]}  # a source without these fields: NULL
        connection.execute(t.records.update().where(t.records.c.ts % 600 == 0).values(**missing))
    return sql_store


@pytest.mark.parametrize("limit", [None, 1, 4, 12, 40, 1000])
def test_numpy_rebuild_gives_the_same_histories_as_the_per_row_conversion(seeded, limit):
    expected = list(per_row_histories(seeded, limit))
    got = list(seeded.server_histories(limit))
    assert [h.server_name for h in got] == [name for name, *_ in expected]
    for history, (_, ts, statuses, values) in zip(got, expected, strict=True):
        assert history.timestamps.dtype == ts.dtype and np.array_equal(history.timestamps, ts)
        assert history.statuses.dtype == statuses.dtype and np.array_equal(history.statuses, statuses)
        assert history.values.dtype == values.dtype and history.values.shape == values.shape
        assert np.array_equal(history.values, values, equal_nan=True)


def test_rebuilt_windows_are_the_windows_the_per_row_conversion_built(seeded):
    keeper = WindowKeeper(seeded, capacity=12, clock=lambda: NOW, max_future_s=300.0)
    keeper.rebuild()
    expected = FleetWindows(12)
    for name, ts, statuses, values in per_row_histories(seeded, 12):
        expected.load(ServerHistory(name, ts, statuses, values), not_after_epoch_s=NOW + 300)
    assert [w.server_name for w in keeper.windows] == [w.server_name for w in expected]
    for window in expected:
        rebuilt = keeper.windows.get(window.server_name)
        assert np.array_equal(rebuilt.timestamps, window.timestamps)
        assert np.array_equal(rebuilt.statuses, window.statuses)
        assert np.array_equal(rebuilt.values, window.values, equal_nan=True)
    assert "gone-05" not in keeper.windows  # its records were purged: no empty window


def test_histories_of_named_servers_only(seeded):
    got = [h.server_name for h in seeded.server_histories(5, names=["Zeta-04", "web-01", "nobody"])]
    assert got == ["Zeta-04", "web-01"]


def test_a_missing_metric_becomes_nan_and_an_unknown_status_healthy(sql_store):
    # The schema forbids NULL in a required field; a query that yields one shows it still comes back NaN.
    query = sa.select(sa.literal("x"), sa.literal(BASE), sa.literal(STATUS_CODE["idle"]),
                      *(sa.null() if i == 2 else sa.literal(float(i)) for i in range(len(METRIC_FIELDS))))
    (history,) = read_histories(sql_store.engine, query, ["x"], None)
    assert history.timestamps.tolist() == [BASE] and history.statuses.tolist() == [STATUS_CODE["idle"]]
    assert np.isnan(history.values[0, 2]) and history.values[0, 3] == 3.0
    sql_store.write_batch([Record(utc_from_epoch(BASE), "y", "idle", (1.0,) * len(METRIC_FIELDS))])
    with sql_store.engine.begin() as connection:  # a status no version knows: healthy, as the feed reads it
        connection.execute(t.records.update().values(status="retired"))
    (history,) = sql_store.server_histories(10)
    assert history.statuses.tolist() == [STATUS_CODE["healthy"]]


def test_rows_filed_over_many_chunks_come_back_whole_and_in_order(sql_store, monkeypatch):
    monkeypatch.setattr(bulk, "CHUNK_ROWS", 4)
    rng = np.random.default_rng(1)
    for step in reversed(range(7)):  # written newest first: rows arrive out of time order
        sql_store.write_batch([record(f"s{i}", step, rng) for i in range(3)])
    expected = {name: ts for name, ts, *_ in per_row_histories(sql_store, 5)}
    got = {h.server_name: h.timestamps for h in sql_store.server_histories(5)}
    assert list(got) == ["s0", "s1", "s2"]
    assert all(np.array_equal(got[name], expected[name]) for name in got)


def test_driver_rows_come_in_chunks_of_plain_tuples(sql_store):
    rng = np.random.default_rng(2)
    sql_store.write_batch([record("a", step, rng) for step in range(5)])
    with sql_store.engine.connect() as connection:
        chunks = list(driver_rows(connection, seeded_query().order_by(t.records.c.ts), chunk_rows=2))
    assert [len(c) for c in chunks] == [2, 2, 1]
    assert all(type(row) is tuple and len(row) == 3 + len(METRIC_FIELDS) for chunk in chunks for row in chunk)


def seeded_query() -> sa.Select:
    r = t.records
    status = sa.case(STATUS_CODE, value=r.c.status, else_=0)
    return sa.select(r.c.server_name, r.c.ts, status, *(r.c[name] for name in METRIC_FIELDS))


@pytest.mark.parametrize("field", range(len(METRIC_FIELDS)))
def test_a_null_in_any_field_comes_back_nan_in_that_field_only(sql_store, field):
    query = sa.select(sa.literal("x"), sa.literal(BASE), sa.literal(STATUS_CODE["offline"]),
                      *(sa.null() if i == field else sa.literal(i + 0.5) for i in range(len(METRIC_FIELDS))))
    (history,) = read_histories(sql_store.engine, query, ["x"], None)
    expected = np.arange(len(METRIC_FIELDS), dtype=np.float32) + 0.5
    expected[field] = np.nan
    assert np.array_equal(history.values[0], expected, equal_nan=True)
    assert history.statuses.tolist() == [STATUS_CODE["offline"]] and history.timestamps.tolist() == [BASE]


def test_stored_values_past_float32_are_clipped_by_the_windows_without_a_warning(sql_store, recwarn):
    sql_store.write_batch([Record(utc_from_epoch(BASE), "x", "healthy", (1.0,) * len(METRIC_FIELDS))])
    with sql_store.engine.begin() as connection:  # written straight into the database, past every bound
        connection.execute(t.records.update().values(net_in_mb_s=1e300, cpu_idle_pct=-1e300, load_average=4e38))
    keeper = WindowKeeper(sql_store, capacity=4, clock=lambda: BASE)
    keeper.rebuild()
    high = {f.name: f.high for f in FIELDS}
    window = keeper.windows.get("x")
    assert window.column("net_in_mb_s").tolist() == [high["net_in_mb_s"]]
    assert window.column("load_average").tolist() == [high["load_average"]]
    assert window.column("cpu_idle_pct").tolist() == [0.0]
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


@pytest.mark.parametrize("enabled", [True, False])
def test_the_cycle_collector_is_paused_while_rows_are_read_and_left_as_it_was(seeded, monkeypatch, enabled):
    seen = []
    add = bulk.ServerFiles.add
    monkeypatch.setattr(bulk.ServerFiles, "add", lambda self, *chunk: (seen.append(gc.isenabled()), add(self, *chunk)))
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        assert len(list(seeded.server_histories(None))) == 4  # one scan, no per-server queries
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
    assert seen and not any(seen)


def test_sqlite_packs_a_record_in_the_layout_numpy_reads():
    row = (BASE, STATUS_CODE["idle"], (1 << len(METRIC_FIELDS)) - 1, *(i + 0.25 for i in range(len(METRIC_FIELDS))))
    (record,) = np.frombuffer(bulk._PACK.pack(*row), dtype=bulk.PACKED_DTYPE)
    assert bulk._PACK.size == bulk.PACKED_DTYPE.itemsize
    assert (record["ts"], record["status"], record["missing"]) == row[:3]
    assert record["values"].tolist() == list(row[3:])
    ts, statuses, values = bulk.unpacked(np.array([record]))
    assert ts.tolist() == [BASE] and statuses.tolist() == [STATUS_CODE["idle"]] and np.isnan(values).all()
