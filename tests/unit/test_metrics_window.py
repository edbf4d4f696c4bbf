"""MetricsWindow: newest records, sorted by time, last write wins, gaps stay gaps."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from argus.domain.metrics import METRIC_FIELDS, FleetWindows, MetricsWindow
from argus.testing import make_record


def _row(value: float) -> list[float]:
    return [value] * len(METRIC_FIELDS)


def test_window_keeps_only_the_newest_records_oldest_first():
    window = MetricsWindow("a", capacity=3)
    for ts in (300, 600, 900, 1200, 1500):
        window.add(ts, _row(ts), "healthy")
    assert window.timestamps.tolist() == [900, 1200, 1500]
    assert window.column("mem_used_pct").tolist() == [900, 1200, 1500]


def test_out_of_order_record_is_placed_by_timestamp_and_a_repeat_replaces():
    window = MetricsWindow("a", capacity=10)
    for ts in (300, 900, 1500):
        window.add(ts, _row(ts), "healthy")
    window.add(600, _row(600), "healthy")
    window.add(900, _row(-1), "maintenance")
    assert window.timestamps.tolist() == [300, 600, 900, 1500]  # the 1200 gap stays a gap
    assert window.column("cpu_user_pct").tolist() == [300, 600, -1, 1500]
    assert window.statuses.tolist()[2] == 4  # maintenance


def test_record_older_than_a_full_window_is_dropped():
    window = MetricsWindow("a", capacity=2)
    for ts in (600, 900):
        window.add(ts, _row(ts), "healthy")
    window.add(300, _row(300), "healthy")
    assert window.timestamps.tolist() == [600, 900]


def test_a_full_window_keeps_appending_in_a_buffer_an_eighth_larger_than_its_capacity():
    window = MetricsWindow("a", capacity=800)
    for i in range(1, 3000):
        window.add(300 * i, _row(i), "healthy")
        assert len(window._ts) <= 900  # the slack whose pages become resident row by row stays small
    assert window.timestamps.tolist() == [300 * i for i in range(2200, 3000)]
    assert window.column("mem_used_pct").tolist() == list(range(2200, 3000))


def test_views_are_read_only():
    window = MetricsWindow("a", capacity=2)
    window.add(300, _row(1), "healthy")
    assert not window.values.flags.writeable


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(1, 20),
    writes=st.lists(st.tuples(st.integers(0, 60), st.floats(0, 100, width=32)), max_size=120),
)
def test_window_always_equals_the_newest_unique_timestamps_with_last_write_winning(capacity, writes):
    window = MetricsWindow("a", capacity=capacity)
    latest: dict[int, float] = {}
    dropped_below = -1
    for step, value in writes:
        ts = step * 300
        full_and_older = len(window) >= capacity and ts < window.timestamps[0]
        window.add(ts, _row(value), "healthy")
        if full_and_older:
            dropped_below = max(dropped_below, ts)
            continue
        latest[ts] = value
        # mirror the window's eviction: only the newest `capacity` timestamps survive
        for old in sorted(latest)[:-capacity]:
            del latest[old]
    expected = sorted(latest)[-capacity:]
    assert window.timestamps.tolist() == expected
    assert np.allclose(window.column("cpu_user_pct"), [latest[t] for t in expected])


def test_from_arrays_sorts_deduplicates_and_truncates():
    ts = np.array([900, 300, 600, 600], dtype=np.int64)
    values = np.array([_row(3), _row(1), _row(2), _row(9)], dtype=np.float32)
    window = MetricsWindow.from_arrays("a", 2, ts, values, np.zeros(4, dtype=np.int8))
    assert window.timestamps.tolist() == [600, 900]
    assert window.column("cpu_user_pct").tolist() == [9, 3]
    window.add(1200, _row(4), "healthy")
    assert window.timestamps.tolist() == [900, 1200]


def test_fleet_reports_ready_servers_by_history_length():
    fleet = FleetWindows(capacity=100)
    fleet.add([make_record("a", step) for step in range(12)] + [make_record("b", step) for step in range(5)])
    assert [w.server_name for w in fleet.ready(12)] == ["a"]
    assert fleet.total_records() == 17


def test_a_discarded_server_leaves_the_fleet_and_discarding_an_unknown_one_is_harmless():
    fleet = FleetWindows(capacity=100)
    fleet.add([make_record("web01", 0), make_record("db01", 0)])
    fleet.discard("web01")
    fleet.discard("never-seen")
    assert "web01" not in fleet and "db01" in fleet and len(fleet) == 1
