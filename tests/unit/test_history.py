"""History in the domain: time ranges, thinning, time in level, risk trend."""

from __future__ import annotations

import numpy as np
import pytest

from argus.domain.alerts import AlertLevel
from argus.domain.history import (
    InvalidTimeRangeError,
    RiskSeries,
    TimeRange,
    Trend,
    risk_trend,
    thin_indices,
    time_in_levels,
)


@pytest.mark.parametrize(("label", "seconds"), [("30m", 1800), ("1h", 3600), ("8h", 28800), ("1d", 86400),
                                                ("1w", 604800), ("1M", 30 * 86400)])
def test_time_ranges_are_the_reference_values(label, seconds):
    assert TimeRange.parse(label, "1d") == TimeRange(label, seconds)
    assert TimeRange.parse(label, "1d").window(10_000_000.0) == (10_000_000.0 - seconds, 10_000_000.0)


@pytest.mark.parametrize("bad", ["", "2h", "1m", "1D", "30 m", "1M "])
def test_anything_else_is_an_invalid_time_range(bad):
    with pytest.raises(InvalidTimeRangeError, match="permitted: '30m', '1h', '8h', '1d', '1w', '1M'"):
        TimeRange.parse(bad, "1d")


def test_a_missing_time_range_takes_the_default():
    assert TimeRange.parse(None, "1h").label == "1h"


def test_thinning_keeps_both_ends_and_spreads_evenly():
    assert thin_indices(10, 300) == list(range(10))
    picked = thin_indices(8640, 300)
    assert len(picked) == 300 and picked[0] == 0 and picked[-1] == 8639
    gaps = np.diff(picked)
    assert gaps.min() >= 28 and gaps.max() <= 30


def test_trend_follows_the_fitted_change_over_the_span():
    t = np.arange(0, 12 * 300, 300, dtype=np.float64)  # an hour of ticks
    assert risk_trend(t, np.linspace(20, 40, 12)) is Trend.WORSENING
    assert risk_trend(t, np.linspace(40, 20, 12)) is Trend.IMPROVING
    assert risk_trend(t, 30 + np.tile([2.0, -2.0], 6)) is Trend.STABLE  # noise, no direction
    assert risk_trend(t[:2], np.array([0.0, 90.0])) is Trend.STABLE  # too few points to tell


def test_a_level_holds_until_the_next_tick_but_not_across_a_long_gap():
    at = np.array([0.0, 300.0, 600.0, 7200.0])
    levels = np.array([AlertLevel.WARNING.rank, AlertLevel.CRITICAL.rank, AlertLevel.HEALTHY.rank,
                       AlertLevel.WARNING.rank], dtype=np.int8)
    series = RiskSeries(at=at, scores=np.zeros(4), levels=levels)
    shares = time_in_levels(series, 0.0, 7500.0, max_hold_s=600.0)
    assert shares[AlertLevel.WARNING] == pytest.approx((300 + 300) / 7500 * 100, abs=0.05)
    assert shares[AlertLevel.CRITICAL] == pytest.approx(300 / 7500 * 100, abs=0.05)
    assert shares[AlertLevel.HEALTHY] == pytest.approx(600 / 7500 * 100, abs=0.05)  # not the hour-long gap
