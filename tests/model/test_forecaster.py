"""TftForecaster on the tiny model: the real future, one batch for the fleet, explanations included."""

from __future__ import annotations

import numpy as np

from argus.domain.forecast import TARGETS
from argus.domain.metrics import STATUS_CODE, MetricsWindow
from tests.model.conftest import START_EPOCH_S, STEP, synthetic_values, window_of

END = START_EPOCH_S + 5 * 86_400  # after the training data: forecasting the real future


def test_forecast_starts_one_step_after_the_last_observation_and_covers_the_horizon(tiny_forecaster):
    window = window_of("ppdb000", synthetic_values(200, seed=0), end_epoch_s=END)
    forecast = tiny_forecaster.forecast([window], {"ppdb000": "database"})["ppdb000"]
    assert forecast.start_epoch_s == window.last_epoch_s + STEP
    assert len(forecast.timestamps) == tiny_forecaster.horizon_steps == 24
    assert np.all(np.diff(forecast.timestamps) == STEP)
    assert forecast.timestamps.dtype == np.int64
    assert set(forecast.values) == set(TARGETS)
    for target in TARGETS:
        assert forecast.values[target].shape == (24, len(forecast.quantiles))
        assert np.isfinite(forecast.values[target]).all()


def test_quantiles_are_ordered_and_within_physical_bounds(tiny_forecaster):
    windows = [window_of(f"srv{i}", synthetic_values(100, seed=i, level=10 + 20 * i)) for i in range(4)]
    for forecast in tiny_forecaster.forecast(windows, {}).values():
        for target, values in forecast.values.items():
            assert np.all(np.diff(values, axis=1) >= 0), target
            assert values.min() >= 0
            if target != "load":
                assert values.max() <= 100
        assert np.array_equal(forecast.p50("cpu_pct"), forecast.quantile("cpu_pct", 0.5))


def test_an_unseen_server_with_an_unknown_profile_gets_a_forecast(tiny_forecaster):
    window = window_of("brand-new-host-42", synthetic_values(60, seed=9))
    result = tiny_forecaster.forecast([window], {"brand-new-host-42": "no_such_profile"})
    assert "brand-new-host-42" in result


def test_one_hour_of_history_is_enough_and_less_is_skipped(tiny_forecaster):
    hour = window_of("fresh", synthetic_values(12, seed=3))
    too_short = window_of("fresher", synthetic_values(11, seed=4))
    result = tiny_forecaster.forecast([hour, too_short], {})
    assert set(result) == {"fresh"}
    assert len(result["fresh"].encoder_attention) == 12


def test_a_server_offline_for_longer_than_a_short_gap_gets_no_forecast(tiny_forecaster):
    values = synthetic_values(60, seed=5)
    window = window_of("gone", values)
    status = np.array(window.statuses)
    status[-5:] = STATUS_CODE["offline"]
    offline_now = MetricsWindow.from_arrays("gone", 2880, window.timestamps.copy(), values, status)
    assert tiny_forecaster.forecast([offline_now], {}) == {}


def test_attention_and_importances_come_with_every_forecast(tiny_forecaster):
    window = window_of("ppweb001", synthetic_values(100, seed=1))
    forecast = tiny_forecaster.forecast([window], {})["ppweb001"]
    n = tiny_forecaster.spec.max_encoder_steps
    assert len(forecast.encoder_attention) == len(forecast.encoder_timestamps) == n
    assert forecast.encoder_timestamps[-1] == window.last_epoch_s
    assert abs(float(forecast.encoder_attention.sum()) - 1.0) < 1e-4
    assert "cpu_pct_z" in forecast.encoder_importance and "profile" in forecast.static_importance
    assert abs(sum(forecast.encoder_importance.values()) - 1.0) < 1e-3


def test_chunked_fleet_forecasts_equal_one_big_batch(tiny_forecaster):
    windows = [window_of(f"srv{i}", synthetic_values(30 + 7 * i, seed=i)) for i in range(5)]
    whole = tiny_forecaster.forecast(windows, {})
    tiny_forecaster.chunk_size, saved = 2, tiny_forecaster.chunk_size
    try:
        chunked = tiny_forecaster.forecast(windows, {})
    finally:
        tiny_forecaster.chunk_size = saved
    assert set(whole) == set(chunked) == {f"srv{i}" for i in range(5)}
    for name in whole:
        np.testing.assert_allclose(whole[name].values["cpu_pct"], chunked[name].values["cpu_pct"], atol=1e-4)


def test_the_engine_is_called_between_chunks_and_forecasts_do_not_change(tiny_forecaster):
    """Five servers in chunks of two: the callback runs between the three chunks (twice), never after the last."""
    windows = [window_of(f"srv{i}", synthetic_values(30 + 7 * i, seed=i)) for i in range(5)]
    whole = tiny_forecaster.forecast(windows, {})
    calls: list[int] = []
    tiny_forecaster.chunk_size, saved = 2, tiny_forecaster.chunk_size
    try:
        chunked = tiny_forecaster.forecast(windows, {}, between_chunks=lambda: calls.append(1))
    finally:
        tiny_forecaster.chunk_size = saved
    assert len(calls) == 2
    for name in whole:
        np.testing.assert_allclose(whole[name].values["mem_pct"], chunked[name].values["mem_pct"], atol=1e-4)


def test_inference_runs_without_onednn_whose_per_shape_cache_grew_the_engine(tiny_forecaster, monkeypatch):
    """oneDNN keeps a primitive per batch shape (each with its weights); the engine's batch sizes vary every
    tick, so the engine grew by ~0.7 MB a tick in the soak. The forward pass runs with it off, and the flag
    is restored afterwards for the rest of the process."""
    import torch

    seen: list[bool] = []
    net = tiny_forecaster._net
    forward = net.forward
    monkeypatch.setattr(net, "forward", lambda *a, **k: seen.append(torch.backends.mkldnn.enabled) or forward(*a, **k))
    before = torch.backends.mkldnn.enabled
    windows = [window_of(f"srv{i}", synthetic_values(40, seed=i)) for i in range(3)]
    assert set(tiny_forecaster.forecast(windows, {})) == {"srv0", "srv1", "srv2"}
    assert seen == [False]
    assert torch.backends.mkldnn.enabled == before
