"""FleetWindows.load and from_arrays skip copies for sorted, clean histories: the windows stay what they were."""

from __future__ import annotations

import numpy as np

from argus.domain.ingestion import ServerHistory
from argus.domain.metrics import _HIGH, _LOW, METRIC_FIELDS, FleetWindows, MetricsWindow, clip_values


def test_float32_rows_are_clipped_exactly_as_through_float64():
    edges = [np.inf, -np.inf, np.nan, -0.0, 3.4e38, -3.4e38, 1e-45, *_LOW, *_HIGH,
             *np.nextafter(_HIGH, np.float32(np.inf)), *np.nextafter(_LOW, np.float32(-np.inf))]
    rng = np.random.default_rng(4)
    values = rng.choice(np.array(edges, dtype=np.float32), size=(500, len(METRIC_FIELDS)))
    via_float64 = np.clip(values.astype(np.float64), _LOW, _HIGH).astype(np.float32)
    clipped = clip_values(values)
    assert clipped.dtype == np.float32
    assert np.array_equal(clipped.view(np.int32), via_float64.view(np.int32))  # bit for bit, -0.0 and NaN too


def test_a_sorted_history_with_a_repeated_timestamp_keeps_the_last_row():
    ts = np.array([300, 600, 600, 900], dtype=np.int64)
    values = np.arange(4 * len(METRIC_FIELDS), dtype=np.float32).reshape(4, -1)
    window = MetricsWindow.from_arrays("a", 10, ts, values, np.arange(4, dtype=np.int8))
    assert window.timestamps.tolist() == [300, 600, 900]
    assert window.statuses.tolist() == [0, 2, 3]


def test_a_loaded_window_shares_no_memory_with_the_history_it_came_from():
    ts = np.arange(5, dtype=np.int64) * 300
    values = np.full((5, len(METRIC_FIELDS)), 50.0, dtype=np.float32)
    statuses = np.zeros(5, dtype=np.int8)
    windows = FleetWindows(capacity=3)
    assert windows.load(ServerHistory("a", ts, statuses, values)) == 3
    ts[:], values[:], statuses[:] = 0, 1.0, 7
    window = windows.get("a")
    assert window.timestamps.tolist() == [600, 900, 1200]
    assert (window.values == 50.0).all() and (window.statuses == 0).all()
