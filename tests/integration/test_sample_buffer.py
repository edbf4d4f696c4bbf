"""The rollup's database side: samples committed, duplicates and late ones dropped, steps closed crash-safely."""

from __future__ import annotations

import math

import pytest
import sqlalchemy as sa

from argus.adapters.sql.database import create_db_engine, migrate
from argus.adapters.sql.sample_buffer import SqlSampleBuffer, StepCloser, rollup_samples, rollup_servers
from argus.adapters.sql.store import SqlMetricsStore
from argus.domain.rollup import Observation, RollupPolicy

STEP = 60
T0 = 1_800_000_000  # a step end
NOW = T0 + 10 * STEP  # wall clock of the tests


@pytest.fixture
def parts(database_url):
    engine = create_db_engine(database_url)
    migrate(engine)
    buffer = SqlSampleBuffer(engine, RollupPolicy(step_s=STEP))
    store = SqlMetricsStore(engine)
    stored = []
    closer = StepCloser(buffer, store, on_stored=lambda source, n: stored.append((source, n)), idle_s=0.0,
                        clock=lambda: NOW)
    yield buffer, store, closer, stored
    engine.dispose()


def scrape(server: str, t_s: float, k: int) -> list[Observation]:
    """One scrape of a small host at ``t_s``, the ``k``-th: counters advance, gauges steady."""
    ms = int(t_s * 1000)
    out = [Observation(server, name, series, ms, value) for name, series, value in (
        ("mem_total_bytes", "", 8e9), ("mem_available_bytes", "", 2e9), ("swap_total_bytes", "", 0.0),
        ("fs_size_bytes", "/", 100e9), ("fs_avail_bytes", "/", 30e9), ("load1", "", 0.5 + k),
        ("boot_time_s", "", T0 - 86400 * 2))]
    for mode, share in (("user", 0.2), ("system", 0.1), ("iowait", 0.1), ("idle", 0.6)):
        out.append(Observation(server, f"cpu.{mode}", "0", ms, 100.0 + 15 * k * share))
    return out


def records(store: SqlMetricsStore) -> dict[tuple[str, int], object]:
    return {(h.server_name, int(ts)): row for h in store.server_histories(None)
            for ts, row in zip(h.timestamps, h.values, strict=True)}


def test_accept_commits_and_a_resent_request_stores_nothing_twice(parts):
    buffer, *_ = parts
    batch = scrape("web1", T0 + 15, 1) + scrape("web1", T0 + 30, 2)
    first = buffer.accept(batch, "remote_write", now=NOW)
    assert (first.stored, first.duplicate, first.out_of_order) == (len(batch), 0, 0)
    again = buffer.accept(batch + batch[:3], "remote_write", now=NOW)
    assert (again.stored, again.duplicate, again.out_of_order) == (0, len(batch) + 3, 0)
    with buffer.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(rollup_samples)).scalar_one() == len(batch)


def test_a_step_closes_once_data_is_past_its_grace_and_becomes_one_record(parts):
    buffer, store, closer, stored = parts
    for k, t in enumerate(range(T0 + 15, T0 + STEP + 1, 15)):  # four scrapes in (T0, T0 + 60]
        buffer.accept(scrape("web1", t, k), "remote_write", now=NOW - 1)
    assert closer() == 0  # newest sample at the step's end: not past the grace yet
    buffer.accept(scrape("web1", T0 + STEP + 12, 4), "remote_write", now=NOW - 1)  # grace is 12 s at a 60 s step
    assert closer() == 1 and stored == [("remote_write", 1)]
    row = records(store)[("web1", T0 + STEP)]
    values = dict(zip(("cpu_user_pct", "cpu_sys_pct", "cpu_iowait_pct", "cpu_idle_pct"), row[:4], strict=True))
    assert values == pytest.approx({"cpu_user_pct": 20.0, "cpu_sys_pct": 10.0, "cpu_iowait_pct": 10.0,
                                    "cpu_idle_pct": 60.0})
    assert row[5] == pytest.approx(75.0) and row[6] == 0.0 and row[7] == pytest.approx(70.0) and row[12] == 3.5
    assert math.isnan(row[4]) and math.isnan(row[8]) and math.isnan(row[10])  # java, net, close_wait: missing
    assert row[13] == 2.0


def test_samples_of_a_closed_step_are_dropped_as_out_of_order(parts):
    buffer, store, closer, _ = parts
    buffer.accept(scrape("web1", T0 + 30, 0) + scrape("web1", T0 + STEP, 1), "remote_write", now=NOW - 1)
    buffer.accept(scrape("web1", T0 + STEP + 30, 2), "remote_write", now=NOW - 1)
    assert closer() == 1
    late = buffer.accept(scrape("web1", T0 + 45, 9), "remote_write", now=NOW - 1)
    assert (late.stored, late.out_of_order) == (0, len(scrape("web1", 0, 0)))
    assert closer() == 0 and len(records(store)) == 1


def test_a_quiet_server_has_its_last_step_closed_by_the_clock(parts):
    buffer, store, closer, _ = parts
    buffer.accept(scrape("web1", T0 + 20, 0) + scrape("web1", T0 + 40, 1), "remote_write", now=NOW - STEP + 1)
    assert closer() == 0  # quiet for 59 s of a 60 s step
    buffer.accept([], "remote_write", now=NOW)
    closer.clock = lambda: NOW + 1
    assert closer() == 1 and list(records(store)) == [("web1", T0 + STEP)]


def test_a_step_missing_a_forecast_target_is_not_stored(parts):
    buffer, store, closer, _ = parts
    no_disk = [o for o in scrape("web1", T0 + 30, 0) if not o.signal.startswith("fs_")]
    buffer.accept(no_disk + [Observation("web1", "load1", "", (T0 + 2 * STEP) * 1000, 1.0)], "remote_write",
                  now=NOW - 1)
    assert closer() == 0 and closer.incomplete == 1 and records(store) == {}


def test_a_closer_killed_between_claim_and_store_is_redone_by_the_next(parts):
    buffer, store, closer, _ = parts
    buffer.accept(scrape("web1", T0 + 30, 0) + scrape("web1", T0 + STEP, 1) + scrape("web1", T0 + STEP + 30, 2),
                  "remote_write", now=NOW - 1)

    class Killed(Exception):
        pass

    def die(*_args, **_kwargs):
        raise Killed

    closer.store = type("Dying", (), {"write_batch": die})()
    with pytest.raises(Killed):
        closer()
    with buffer.engine.connect() as connection:
        closed, emitted = connection.execute(sa.select(rollup_servers.c.closed_through_s,
                                                       rollup_servers.c.emitted_through_s)).one()
    assert closed == T0 + STEP > emitted  # claimed, not emitted: samples kept
    late = buffer.accept(scrape("web1", T0 + 50, 5), "remote_write", now=NOW - 1)
    assert late.out_of_order > 0 and late.stored == 0  # the claimed step no longer changes
    closer.store = store
    assert closer() == 1 and list(records(store)) == [("web1", T0 + STEP)]
    assert closer() == 0


def test_servers_close_independently_and_in_batches(parts):
    buffer, store, closer, _ = parts
    closer.batch_servers = 2
    for i in range(5):
        buffer.accept(scrape(f"h{i}", T0 + 20, 0) + scrape(f"h{i}", T0 + 40, 1) + scrape(f"h{i}", T0 + STEP + 30, 2),
                      "otlp", now=NOW - 1)
    assert closer() == 2 and closer() == 2 and closer() == 1 and closer() == 0
    assert sorted(name for name, _ in records(store)) == [f"h{i}" for i in range(5)]


def test_old_samples_are_forgotten_once_a_later_step_is_emitted(parts):
    buffer, _, closer, _ = parts
    for k in range(4):
        buffer.accept(scrape("web1", T0 + 30 + k * STEP, k), "remote_write", now=NOW - 1)
    # Steps ending T0+60, +120, +180 close (the last sample's step is still open); the first has one CPU
    # sample and no baseline before it: no CPU shares, not stored.
    assert closer() == 2 and closer.incomplete == 1
    with buffer.engine.connect() as connection:
        left = connection.execute(sa.select(sa.func.min(rollup_samples.c.ts_ms))).scalar_one()
    assert left == (T0 + 30 + 2 * STEP) * 1000  # the last closed step's samples stay: the next one's baselines


def test_a_server_quiet_for_two_steps_leaves_no_samples_behind(parts):
    buffer, store, closer, _ = parts
    buffer.accept(scrape("web1", T0 + 20, 0) + scrape("web1", T0 + 40, 1), "remote_write", now=NOW)
    buffer.accept(scrape("web2", T0 + 20, 0), "remote_write", now=NOW + 3 * STEP)  # still sending
    closer.clock = lambda: NOW + STEP  # web1 quiet for a step: its step closes, its samples stay (baselines)
    assert closer() == 1
    assert closer() == 0
    with buffer.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(rollup_samples)).scalar_one() > 0
    closer.clock = lambda: NOW + 2 * STEP + 1
    closer._due_at = -math.inf
    assert closer() == 0
    with buffer.engine.connect() as connection:
        left = connection.execute(sa.select(rollup_samples.c.server_name).distinct()).scalars().all()
    assert left == ["web2"] and list(records(store)) == [("web1", T0 + STEP)]


def test_a_sharded_engine_closes_only_the_servers_it_owns(parts):
    buffer, store, closer, _ = parts
    closer.owns = lambda name: name == "h1"
    for name in ("h1", "h2"):
        buffer.accept(scrape(name, T0 + 20, 0) + scrape(name, T0 + 40, 1) + scrape(name, T0 + STEP + 30, 2),
                      "remote_write", now=NOW - 1)
    assert closer() == 1 and closer() == 0 and list(records(store)) == [("h1", T0 + STEP)]
    closer.owns = None  # another engine's share
    assert closer() == 1 and sorted(records(store)) == [("h1", T0 + STEP), ("h2", T0 + STEP)]
