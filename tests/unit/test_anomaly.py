"""Anomaly: observations measured against the bands earlier forecasts gave for them."""

from __future__ import annotations

from argus.domain.anomaly import AnomalyTracker
from argus.domain.metrics import MetricsWindow
from argus.testing import make_forecast, make_record

TYPICAL = {"cpu_pct": 35.6, "swap_pct": 5.2, "iowait_pct": 2.1, "disk_pct": 45.8, "load": 2.4}


def _window(mem_values):
    window = MetricsWindow("a", 100)
    for step, mem in enumerate(mem_values):
        record = make_record("a", step, mem_used_pct=mem)
        window.add(record.epoch_s, record.values, "healthy")
    return window


def test_observations_inside_the_band_are_not_anomalous():
    tracker = AnomalyTracker()
    tracker.remember(make_forecast("a", make_record("a", 11).epoch_s, mem_pct=72.0, spread=3.0, **TYPICAL))
    assert tracker.score(_window([72.0] * 18)) == (0.0, None)


def test_observations_far_outside_the_band_score_in_band_widths():
    tracker = AnomalyTracker(recent_steps=6)
    tracker.remember(make_forecast("a", make_record("a", 11).epoch_s, mem_pct=72.0, spread=1.0, **TYPICAL))
    anomaly, metric = tracker.score(_window([72.0] * 12 + [80.0] * 6))  # 7 above p90=73 → 3.5 widths of 2
    assert metric == "mem_pct" and anomaly == 3.5


def test_only_forecasts_made_before_an_observation_judge_it():
    tracker = AnomalyTracker()
    tracker.remember(make_forecast("a", make_record("a", 17).epoch_s, mem_pct=10.0))
    assert tracker.score(_window([80.0] * 18)) == (0.0, None)
