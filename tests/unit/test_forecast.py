"""The Forecast value: quantile access by level."""

from __future__ import annotations

import numpy as np
import pytest

from argus.domain.forecast import Forecast


def _forecast() -> Forecast:
    values = {"cpu_pct": np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])}
    return Forecast("s", np.array([600, 900], dtype=np.int64), (0.1, 0.5, 0.9), values)


def test_quantile_and_median_paths():
    forecast = _forecast()
    assert list(forecast.p50("cpu_pct")) == [2.0, 5.0]
    assert list(forecast.quantile("cpu_pct", 0.9)) == [3.0, 6.0]
    assert forecast.start_epoch_s == 600 and forecast.last_observation_epoch_s == 300
    assert forecast.horizon_steps == 2


def test_an_unknown_quantile_is_a_key_error():
    with pytest.raises(KeyError):
        _forecast().quantile("cpu_pct", 0.75)
