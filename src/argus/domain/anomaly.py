"""Anomaly: how far a server's latest observations fall outside the bands its earlier forecasts gave.

For each of the last ``recent_steps`` observations the tracker finds the most recent earlier
forecast that covered that moment and measures the distance outside its p10–p90 band in band
widths (0 inside the band). A metric's anomaly is the mean over those observations, so one odd
sample does not alarm; the server's anomaly is its worst metric's.
"""

from __future__ import annotations

from collections import deque

import attrs
import numpy as np

from argus.domain.forecast import TARGETS, Forecast
from argus.domain.metric_table import METRICS
from argus.domain.metrics import MetricsWindow
from argus.domain.risk import metric_matrix

#: Narrowest band width counted, so a constant series' zero-width band does not divide by zero.
MIN_BAND_WIDTH = {key: METRICS[key].min_band_width for key in TARGETS}
KEPT_STEPS = 12  # steps of each forecast kept: observations are compared within the hour after it


@attrs.frozen(eq=False)
class _Band:
    timestamps: np.ndarray
    low: dict[str, np.ndarray]
    high: dict[str, np.ndarray]


def observed_targets(window: MetricsWindow, rows: slice) -> dict[str, np.ndarray]:
    """The forecast targets as observed (cpu_pct = 100 − idle) for ``rows`` of the window."""
    observed = metric_matrix(window.values[rows])
    return {target: observed[target] for target in TARGETS}


class AnomalyTracker:
    """Remembers the first hour of each server's recent forecasts and scores new observations."""

    def __init__(self, recent_steps: int = 6, kept_forecasts: int = 12) -> None:
        self.recent_steps = recent_steps
        self._bands: dict[str, deque[_Band]] = {}
        self._kept = kept_forecasts

    def remember(self, forecast: Forecast) -> None:
        """Keep the p10–p90 band of the first steps of ``forecast`` for later comparison."""
        steps = slice(0, KEPT_STEPS)
        low = {t: np.asarray(forecast.quantile(t, 0.1)[steps], dtype=np.float64) for t in forecast.values}
        high = {t: np.asarray(forecast.quantile(t, 0.9)[steps], dtype=np.float64) for t in forecast.values}
        band = _Band(np.asarray(forecast.timestamps[steps]), low, high)
        self._bands.setdefault(forecast.server_name, deque(maxlen=self._kept)).append(band)

    def score(self, window: MetricsWindow) -> tuple[float, str | None]:
        """Return (anomaly in band widths, the worst metric) for the window's latest observations."""
        bands = self._bands.get(window.server_name)
        if not bands or len(window) == 0:
            return 0.0, None
        rows = slice(max(0, len(window) - self.recent_steps), len(window))
        stamps = window.timestamps[rows]
        observed = observed_targets(window, rows)
        distances: dict[str, list[float]] = {}
        for i, ts in enumerate(stamps):
            band = _covering_band(bands, int(ts))
            if band is None:
                continue
            j = int(np.searchsorted(band.timestamps, ts))
            for target, low in band.low.items():
                if target not in observed:
                    continue
                lo, hi = low[j], band.high[target][j]
                width = max(hi - lo, MIN_BAND_WIDTH.get(target, 1.0))
                x = observed[target][i]
                distances.setdefault(target, []).append(max(0.0, x - hi, lo - x) / width)
        if not distances:
            return 0.0, None
        means = {target: float(np.mean(d)) for target, d in distances.items()}
        worst = max(means, key=means.__getitem__)
        return (means[worst], worst) if means[worst] > 0 else (0.0, None)

    def forget(self, server_name: str) -> None:
        self._bands.pop(server_name, None)


def _covering_band(bands: deque[_Band], ts: int) -> _Band | None:
    """The most recent band made before ``ts`` whose steps include ``ts`` exactly."""
    for band in reversed(bands):
        if len(band.timestamps) and band.timestamps[0] <= ts <= band.timestamps[-1]:
            j = int(np.searchsorted(band.timestamps, ts))
            if band.timestamps[j] == ts:
                return band
    return None
