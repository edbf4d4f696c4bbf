"""Baseline forecasters (numpy only): the yardstick in evaluations and a fast stand-in for domain tests.

Never the served model when a TFT model is present.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from argus.domain.forecast import TARGET_FIELDS, TARGETS, Forecast
from argus.domain.metrics import FIELD_INDEX, STATUS_CODE, STEP_SECONDS, MetricsWindow

DAY_S = 86_400
UPPER = {t: (np.inf if t == "load" else 100.0) for t in TARGETS}


def window_targets(window: MetricsWindow) -> tuple[np.ndarray, np.ndarray]:
    """Return (timestamps, (n, 6) targets) of a window's measured (non-offline) records."""
    keep = window.statuses != STATUS_CODE["offline"]
    values = window.values[keep]
    cols = []
    for target in TARGETS:
        col = values[:, FIELD_INDEX[TARGET_FIELDS[target]]].astype(np.float64)
        cols.append(100.0 - col if target == "cpu_pct" else col)
    return window.timestamps[keep], np.stack(cols, axis=1) if len(values) else np.empty((0, len(TARGETS)))


class SeasonalNaiveForecaster:
    """Same time yesterday (the last value where yesterday is missing), with an empirical band.

    The band adds quantiles of the window's own day-over-day changes (zero width when the window
    is shorter than a day), so coverage can be compared with the model's.
    """

    def __init__(self, horizon_steps: int = 96, min_history_steps: int = 1,
                 quantiles: tuple[float, ...] = (0.1, 0.5, 0.9), name: str = "seasonal_naive") -> None:
        self.name = name
        self.horizon_steps = horizon_steps
        self.min_history_steps = min_history_steps
        self.quantiles = quantiles

    def forecast(self, windows: Sequence[MetricsWindow], profiles: Mapping[str, str]) -> dict[str, Forecast]:
        """Forecast every window with at least ``min_history_steps`` measured records."""
        out = {}
        for window in windows:
            ts, y = window_targets(window)
            if len(ts) < self.min_history_steps or len(ts) == 0:
                continue
            out[window.server_name] = self._one(window.server_name, ts, y, profiles.get(window.server_name, ""))
        return out

    def point(self, ts: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Return the (horizon, 6) point forecast after the last of ``ts``."""
        future = int(ts[-1]) + STEP_SECONDS * np.arange(1, self.horizon_steps + 1, dtype=np.int64)
        pos = np.searchsorted(ts, future - DAY_S)
        found = (pos < len(ts)) & (ts[np.minimum(pos, len(ts) - 1)] == future - DAY_S)
        return np.where(found[:, None], y[np.minimum(pos, len(ts) - 1)], y[-1][None, :])

    def _one(self, server: str, ts: np.ndarray, y: np.ndarray, profile: str) -> Forecast:
        point = self.point(ts, y)
        pos = np.searchsorted(ts, ts - DAY_S)
        has_lag = (pos < len(ts)) & (ts[np.minimum(pos, len(ts) - 1)] == ts - DAY_S)
        changes = y[has_lag] - y[pos[has_lag]]
        values = {}
        for j, target in enumerate(TARGETS):
            offsets = np.quantile(changes[:, j], self.quantiles) if len(changes) else np.zeros(len(self.quantiles))
            offsets = offsets - offsets[np.argmin(np.abs(np.asarray(self.quantiles) - 0.5))]
            band = np.clip(point[:, j, None] + offsets[None, :], 0.0, UPPER[target])
            values[target] = np.sort(band, axis=1)
        timestamps = int(ts[-1]) + STEP_SECONDS * np.arange(1, self.horizon_steps + 1, dtype=np.int64)
        return Forecast(server, timestamps, self.quantiles, values, model_name=self.name, profile=profile)


class LastValueForecaster(SeasonalNaiveForecaster):
    """The last measured value held flat: the other yardstick."""

    def __init__(self, horizon_steps: int = 96, min_history_steps: int = 1) -> None:
        super().__init__(horizon_steps, min_history_steps, (0.1, 0.5, 0.9), name="last_value")

    def point(self, ts: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.repeat(y[-1][None, :], self.horizon_steps, axis=0)
