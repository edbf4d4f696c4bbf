"""Seasonal naive and last value: the yardsticks (numpy only, fast)."""

from __future__ import annotations

import numpy as np

from argus.adapters.baselines import LastValueForecaster, SeasonalNaiveForecaster
from argus.domain.metrics import METRIC_FIELDS, STATUS_CODE, MetricsWindow

STEP, DAY = 300, 288
CPU_IDLE, MEM = METRIC_FIELDS.index("cpu_idle_pct"), METRIC_FIELDS.index("mem_used_pct")


def _window(n: int, end: int = 1_736_899_200) -> MetricsWindow:
    ts = end - np.arange(n - 1, -1, -1, dtype=np.int64) * STEP
    values = np.zeros((n, len(METRIC_FIELDS)), dtype=np.float32)
    values[:, CPU_IDLE] = 100 - (np.arange(n) % DAY) / 4  # cpu_pct = step of day / 4
    values[:, MEM] = 50
    return MetricsWindow.from_arrays("s", 2880, ts, values, np.full(n, STATUS_CODE["healthy"], dtype=np.int8))


def test_seasonal_naive_repeats_yesterday_from_the_step_after_the_last_observation():
    window = _window(2 * DAY)
    forecast = SeasonalNaiveForecaster(horizon_steps=96).forecast([window], {})["s"]
    assert forecast.start_epoch_s == window.last_epoch_s + STEP
    expected = ((np.arange(2 * DAY, 2 * DAY + 96)) % DAY) / 4
    np.testing.assert_allclose(forecast.p50("cpu_pct"), expected, atol=1e-4)
    np.testing.assert_allclose(forecast.p50("mem_pct"), 50)


def test_seasonal_naive_falls_back_to_the_last_value_with_less_than_a_day():
    window = _window(12)
    forecast = SeasonalNaiveForecaster(horizon_steps=6).forecast([window], {})["s"]
    np.testing.assert_allclose(forecast.p50("cpu_pct"), 11 / 4, atol=1e-4)


def test_last_value_is_flat_and_bands_are_ordered():
    forecast = LastValueForecaster(horizon_steps=10).forecast([_window(3 * DAY)], {})["s"]
    assert np.all(forecast.p50("cpu_pct") == forecast.p50("cpu_pct")[0])
    for values in forecast.values.values():
        assert np.all(np.diff(values, axis=1) >= 0)


def test_windows_shorter_than_the_minimum_are_skipped():
    assert SeasonalNaiveForecaster(min_history_steps=12).forecast([_window(11)], {}) == {}
