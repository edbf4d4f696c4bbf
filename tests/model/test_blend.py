"""The served blend over the tiny TFT: shape, skill, band, cache, frozen re-runs, calibration, old manifests."""

from __future__ import annotations

import json

import numpy as np
import pytest

from argus.adapters.blend import BINS, BlendConfig, BlendForecaster, window_at
from argus.adapters.calibration import band_factors, calibrate_saved
from argus.adapters.tft.data import load_series
from argus.adapters.tft.registry import DirectoryModelRegistry
from argus.domain.forecast import TARGETS
from argus.domain.metrics import FIELD_INDEX
from tests.model.conftest import START_EPOCH_S, STEP, build_tiny_model, synthetic_records, synthetic_values, window_of

MEM = TARGETS.index("mem_pct")


@pytest.fixture()
def blend(tiny_forecaster):
    return BlendForecaster(tiny_forecaster)


def _fleet(days: float = 3.0):
    n = int(days * 288)
    windows = [window_of(f"srv{s}", synthetic_values(n, s, level=20 + 10 * s)) for s in range(3)]
    leak = synthetic_values(n, 7)
    leak[:, FIELD_INDEX["mem_used_pct"]] = 30 + 0.04 * np.arange(n)  # a steady leak
    return windows + [window_of("leaky", leak)]


def test_serves_every_server_the_tft_serves_with_sorted_bounded_quantiles(blend):
    windows = _fleet()
    out = blend.forecast(windows, {})
    assert set(out) == set(blend.inner.forecast(windows, {}))
    for forecast in out.values():
        values = forecast.values_array()
        assert values.shape == (blend.horizon_steps, len(TARGETS), len(blend.quantiles))
        assert (np.diff(values, axis=-1) >= 0).all()
        assert (values >= 0).all() and (values[:, :5] <= 100).all()
        # no zero-width band, also on a constant series (swap is a constant 2.0 here)
        width = forecast.quantile("swap_pct", 0.9) - forecast.quantile("swap_pct", 0.1)
        assert (width > 0.1).all()


def test_a_leak_is_followed_and_the_first_step_sits_at_the_last_value(blend):
    windows = _fleet()
    out = blend.forecast(windows, {})
    last = windows[-1].values[-1, FIELD_INDEX["mem_used_pct"]]
    median = out["leaky"].p50("mem_pct")
    assert abs(median[0] - last) < 1.0
    assert median[-1] > last + 0.5 * 0.04 * blend.horizon_steps  # rises with the leak
    weights = blend.states["leaky"].component_shares("mem_pct", blend.horizon_steps)
    trend = weights["predict_linear_6h"] + weights["predict_linear_1h"] + weights["damped_trend"]
    assert trend > 0.6, weights


def test_past_tft_forecasts_are_cached_and_the_budget_is_kept(tiny_forecaster, monkeypatch):
    calls = []
    real = tiny_forecaster.predict_slices

    def counting(slices):
        calls.append(len(slices))
        return real(slices)

    blend = BlendForecaster(tiny_forecaster, max_new_past_per_tick=5)
    monkeypatch.setattr(tiny_forecaster, "predict_slices", counting)
    windows = _fleet()
    blend.forecast(windows, {})
    first = sum(calls)
    assert first <= len(windows) + 5  # the current origins plus at most 5 past ones
    calls.clear()
    unlimited = BlendForecaster(tiny_forecaster)
    unlimited.forecast(windows, {})
    calls.clear()
    unlimited.forecast(windows, {})
    assert sum(calls) == len(windows)  # every past origin came from the cache


def test_a_frozen_blend_reproduces_the_served_forecast_of_its_tick(blend):
    windows = _fleet()
    served = blend.forecast(windows, {})["srv1"]
    again = blend.frozen(served).forecast([windows[1]], {})["srv1"]
    np.testing.assert_allclose(again.values_array(), served.values_array(), atol=1e-4)


def test_band_factors_find_the_scale_that_covers_80_percent():
    rng = np.random.default_rng(0)
    n, horizon = 400, 96
    actual = rng.normal(50, 2.0, (n, horizon, len(TARGETS)))
    quantiles = (0.1, 0.5, 0.9)
    z = 1.2816 * 2.0 * 0.5  # a band half as wide as it should be
    values = np.stack([np.full_like(actual, 50 - z), np.full_like(actual, 50.0), np.full_like(actual, 50 + z)], -1)
    factors = band_factors(values, actual, quantiles, coverage=0.8)
    assert factors.shape == (len(BINS), len(TARGETS))
    assert np.all(np.abs(factors - 2.0) < 0.25)


def test_band_factors_fit_only_the_windows_that_vary():
    rng = np.random.default_rng(1)
    n, horizon, quantiles = 400, 96, (0.1, 0.5, 0.9)
    actual = rng.normal(50, 2.0, (n, horizon, len(TARGETS)))
    actual[: n // 2] = 50.0  # half the windows: a constant server, inside any band around its median
    z = 1.2816 * 2.0 * 0.5
    values = np.stack([np.full_like(actual, 50 - z), np.full_like(actual, 50.0), np.full_like(actual, 50 + z)], -1)
    varying = np.zeros((n, len(TARGETS)), dtype=bool)
    varying[n // 2 :] = True
    pooled = band_factors(values, actual, quantiles, coverage=0.8)
    fitted = band_factors(values, actual, quantiles, coverage=0.8, varying=varying)
    assert np.all(pooled < 1.7)  # the constants pull the factor down: the varying half would be under-covered
    assert np.all(np.abs(fitted - 2.0) < 0.25)


def test_season_scale_is_the_mean_change_since_the_same_time_yesterday():
    from argus.adapters.calibration import season_scale
    from argus.adapters.tft.data import ServerSeries

    steps = 3 * 288
    values = synthetic_values(steps, 0)
    values[:, FIELD_INDEX["mem_used_pct"]] = 40 + 3.0 * (np.arange(steps) // 288)  # +3 points each day
    ts = START_EPOCH_S + STEP * np.arange(steps)
    series = ServerSeries("srv", ts, values, np.zeros(steps, dtype=np.int8))
    scale = season_scale(series, before=int(ts[-1]) + 1)
    assert scale[MEM] == pytest.approx(3.0)
    assert np.isnan(season_scale(series, before=int(ts[100]))).all()  # not a day of history before it


def test_an_old_manifest_without_a_blend_section_still_serves(tmp_path):
    build_tiny_model(tmp_path, calibrate=False)
    registry = DirectoryModelRegistry(tmp_path)
    assert "blend" not in registry.info(registry.current()).manifest
    blend = BlendForecaster.load(registry, device="cpu")
    assert blend.config == BlendConfig()
    out = blend.forecast(_fleet(), {})
    assert len(out) == 4


@pytest.mark.slow
def test_training_calibrates_the_blend_and_the_manifest_round_trips(tmp_path):
    build_tiny_model(tmp_path)
    registry = DirectoryModelRegistry(tmp_path)
    manifest = json.loads((tmp_path / registry.current() / "manifest.json").read_text())
    section = manifest["blend"]
    assert set(section["band_scale"]) == set(TARGETS)
    assert section["calibration"]["windows"] > 0
    config = BlendConfig.from_manifest(manifest)
    assert config.band_scale["cpu_pct"] == tuple(section["band_scale"]["cpu_pct"])
    priors = np.array([config.prior["cpu_pct"][c] for c in config.prior["cpu_pct"]])
    np.testing.assert_allclose(priors.sum(axis=0), 1.0, atol=0.01)
    # a calibration with no usable origin records why and keeps the defaults
    series = load_series(synthetic_records(servers=2, days=0.5))
    out = calibrate_saved(registry, registry.current(), series, list(series), START_EPOCH_S, START_EPOCH_S + STEP)
    assert "skipped" in out["calibration"]


def test_window_at_cuts_history_and_future():
    series = load_series(synthetic_records(servers=1, days=2))
    s = next(iter(series.values()))
    origin = START_EPOCH_S + 300 * STEP
    window, actual = window_at(s, origin, 100, 24)
    assert len(window) == 100 and window.last_epoch_s == origin
    assert actual.shape == (24, len(TARGETS)) and np.isfinite(actual).all()
    assert actual[0, MEM] == pytest.approx(s.values[301, FIELD_INDEX["mem_used_pct"]])
