"""Known-future guides (same time yesterday, trend line), drift augmentation, and models made before them."""

from __future__ import annotations

import json

import numpy as np

from argus.adapters.tft.features import (
    DAY_STEPS,
    KNOWN_REALS,
    FeatureSpec,
    WindowSlice,
    encode_windows,
    guide_features,
)
from argus.adapters.tft.forecaster import TftForecaster
from argus.adapters.tft.registry import DirectoryModelRegistry
from argus.domain.forecast import TARGETS
from tests.model.conftest import synthetic_values, window_of

N = len(TARGETS)


def test_a_spec_without_guides_builds_the_inputs_older_models_were_trained_on():
    old = FeatureSpec(max_encoder_steps=48, horizon_steps=24)
    assert old.known_reals == list(KNOWN_REALS)
    assert old.x_reals == old.static_reals + list(KNOWN_REALS) + old.unknown_reals
    new = FeatureSpec(max_encoder_steps=48, horizon_steps=24, guides=True)
    assert len(new.known_reals) == len(KNOWN_REALS) + 1 + 2 * N
    assert "mem_pct_yday_z" in new.known_reals and "disk_pct_trend_z" in new.known_reals


def test_the_trend_guide_extrapolates_a_line_and_yesterday_is_read_a_day_back():
    length, horizon = DAY_STEPS, 96
    k = np.arange(length, dtype=np.float32)
    z = np.stack([0.01 * (k - (length - 1))] * N, axis=1)  # a line ending at 0
    z[:, 1] = np.sin(2 * np.pi * k / DAY_STEPS)
    _, dec = guide_features(z, horizon)
    assert np.all(dec[:, 0] == 1.0)
    np.testing.assert_allclose(dec[:, 1 + N], 0.01 * np.arange(1, horizon + 1), rtol=1e-4)
    # step h's yesterday is encoder position h - 1 (smoothed: a sine barely changes over 5 steps)
    np.testing.assert_allclose(dec[2:, 2], z[np.arange(2, horizon), 1], atol=0.01)


def test_yesterday_is_flagged_unavailable_for_short_encoders():
    _, dec = guide_features(np.zeros((200, N), dtype=np.float32), 96)
    assert dec[:88, 0].sum() == 0 and np.all(dec[88:, 0] == 1.0)  # step h needs 289 - 200 = 89 steps
    _, dec = guide_features(np.zeros((12, N), dtype=np.float32), 96)
    assert dec[:, 0].sum() == 0 and np.all(dec[:, 1 : 1 + N] == 0)


def test_guides_sit_in_the_decoder_inputs():
    spec = FeatureSpec(max_encoder_steps=288, horizon_steps=96, guides=True)
    targets = np.full((288, N), 50.0, dtype=np.float32)
    targets[:, 1] = 40 + 0.1 * np.arange(288)
    batch = encode_windows([WindowSlice(targets, np.zeros((288, 7), np.float32), 1_736_899_200, 0)], spec)
    col = spec.x_reals.index("mem_pct_trend_z")
    scale = batch["scale"][0, 1]
    np.testing.assert_allclose(batch["decoder_cont"][0, :, col] * scale, 0.1 * np.arange(1, 97), rtol=1e-3)
    assert np.all(batch["encoder_cont"][0, :, col] == 0)


def test_drift_augmentation_is_one_line_through_encoder_and_future():
    from argus.adapters.tft.features import WindowSlice as W
    from argus.adapters.tft.loop import augment

    flat = W(np.full((100, N), 50.0, np.float32), np.zeros((100, 7), np.float32), 0, 0,
             np.full((24, N), 50.0, np.float32))
    out = augment(flat, np.random.default_rng(3), drift_share=1.0, daily_share=0.0)
    series = np.concatenate([out.targets, out.future])
    moved = np.flatnonzero(np.abs(series[-1] - 50) > 1e-3)
    assert len(moved) >= 1
    for j in moved:
        d = np.diff(series[-30:, j])
        np.testing.assert_allclose(d, d[-1], atol=1e-3)  # constant slope across the encoder/future boundary
    assert np.all(series >= 0) and np.all(series[:, :5] <= 100)


def test_a_model_made_before_the_guides_still_loads_and_serves(tmp_path):
    from tests.model.conftest import build_tiny_model

    build_tiny_model(tmp_path, "tft_20240101_000000", guides=False, drift_share=0.0, daily_share=0.0)
    manifest_path = tmp_path / "tft_20240101_000000" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["features"]["known_reals"] == list(KNOWN_REALS)
    del manifest["feature_spec"]["guides"]  # exactly what manifests written before the guides hold
    manifest_path.write_text(json.dumps(manifest))
    forecaster = TftForecaster.load(DirectoryModelRegistry(tmp_path), device="cpu")
    assert not forecaster.spec.guides
    out = forecaster.forecast([window_of("ppdb000", synthetic_values(80, seed=0))], {})
    assert out["ppdb000"].values["cpu_pct"].shape == (24, 7)


def test_the_trend_check_reports_every_case(tiny_forecaster):
    from argus.adapters.tft.evaluation import trend_check

    report = trend_check(tiny_forecaster, seeds=2)
    assert {"mem_leak", "disk_fill", "daily_cycle_peak", "level"} <= set(report)
    assert all(m > 0 for m in report["mem_leak"]["true_crossing_minutes"])


def test_drift_augmentation_touches_only_the_drift_targets():
    from argus.adapters.tft.loop import augment

    flat = WindowSlice(np.full((100, N), 50.0, np.float32), np.zeros((100, 7), np.float32), 0, 0,
                       np.full((24, N), 50.0, np.float32))
    rng = np.random.default_rng(5)
    allowed = [TARGETS.index(t) for t in ("mem_pct", "disk_pct")]
    for _ in range(20):
        out = augment(flat, rng, drift_share=1.0, daily_share=0.0, drift_targets=("mem_pct", "disk_pct"))
        moved = set(np.flatnonzero(np.abs(out.future[-1] - 50) > 1e-3).tolist())
        assert moved and moved <= set(allowed)


def test_a_model_with_guides_and_augmentation_trains_saves_and_serves(tmp_path):
    from tests.model.conftest import build_tiny_model

    build_tiny_model(tmp_path, "tft_20240101_000001", guides=True, drift_share=0.4, daily_share=0.1)
    forecaster = TftForecaster.load(DirectoryModelRegistry(tmp_path), device="cpu")
    assert forecaster.spec.guides
    assert "cpu_pct_trend_z" in forecaster.manifest["features"]["known_reals"]
    out = forecaster.forecast([window_of("ppdb000", synthetic_values(80, seed=0))], {})
    assert np.isfinite(out["ppdb000"].values["mem_pct"]).all()
