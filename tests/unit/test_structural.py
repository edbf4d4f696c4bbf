"""The structural forecasts on hand-made series with known answers, and their properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from argus.adapters import structural
from argus.domain.forecast import TARGETS
from argus.domain.metrics import FIELD_INDEX, METRIC_FIELDS, STATUS_CODE, MetricsWindow

L, H = 2880, 96
CPU, MEM, DISK = TARGETS.index("cpu_pct"), TARGETS.index("mem_pct"), TARGETS.index("disk_pct")


def _y(series: dict[int, np.ndarray]) -> np.ndarray:
    y = np.full((1, L, len(TARGETS)), 10.0)
    for t, values in series.items():
        y[0, :, t] = values
    return y


def _run(y: np.ndarray, origins=None) -> dict[str, np.ndarray]:
    origins = np.array([[L - 1]]) if origins is None else origins
    return structural.run({**structural.PEERS, **structural.COMPONENTS}, y, origins, H)


t = np.arange(L)
LINE = 20 + 0.01 * t
SINE = 50 + 20 * np.sin(2 * np.pi * t / 288)
FUTURE = np.arange(L, L + H)


def test_a_line_is_extrapolated_by_the_trend_peers_and_held_by_last_value():
    out = _run(_y({MEM: LINE}))
    ideal = 20 + 0.01 * FUTURE
    for name in ("predict_linear_1h", "predict_linear_6h"):
        np.testing.assert_allclose(out[name][0, 0, :, MEM], ideal, atol=1e-6)
    np.testing.assert_allclose(out["damped_trend"][0, 0, :, MEM], ideal, atol=0.5)
    np.testing.assert_allclose(out["last_value"][0, 0, :, MEM], LINE[-1])


def test_a_daily_sine_is_repeated_by_the_seasonal_peers():
    out = _run(_y({CPU: SINE}))
    ideal = 50 + 20 * np.sin(2 * np.pi * FUTURE / 288)
    for name in ("seasonal_naive", "same_time_median_7d"):
        np.testing.assert_allclose(out[name][0, 0, :, CPU], ideal, atol=1e-6)
    # the smoothed profile follows the sine within its smoothing; anchored on the level, it converges to it
    np.testing.assert_allclose(out["profile_median"][0, 0, :, CPU], ideal, atol=0.5)
    profile_level = out["profile_level"][0, 0, :, CPU]
    assert abs(profile_level[-1] - ideal[-1]) < 0.3


def test_the_7_day_median_ignores_one_odd_day_and_a_step_moves_the_last_value():
    y = SINE.copy()
    y[L - 288 : L - 200] = 95.0  # yesterday morning was odd
    out = _run(_y({CPU: y}))
    ideal = 50 + 20 * np.sin(2 * np.pi * FUTURE / 288)
    np.testing.assert_allclose(out["same_time_median_7d"][0, 0, :, CPU], ideal, atol=1e-6)
    assert out["seasonal_naive"][0, 0, 0, CPU] == 95.0
    step = np.where(t < L - 20, 30.0, 60.0)
    out = _run(_y({DISK: step}))
    assert out["last_value"][0, 0, 0, DISK] == 60.0


def test_past_origins_never_read_after_themselves():
    y = _y({MEM: LINE})
    changed = y.copy()
    changed[0, L - 100 :, MEM] = 99.0  # only after the past origin
    origins = np.array([[L - 1 - 200]])
    a, b = _run(y, origins), _run(changed, origins)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_gaps_are_tolerated_and_no_origin_gives_nan():
    y = _y({CPU: SINE})
    y[0, L - 50 : L - 10, :] = np.nan
    out = _run(y, np.array([[L - 1, -1]]))
    for name, forecast in out.items():
        assert np.isfinite(forecast[0, 0]).all(), name
        assert np.isnan(forecast[0, 1]).all(), name


@settings(max_examples=25, deadline=None)
@given(shift=st.floats(-5, 5), seed=st.integers(0, 1000))
def test_every_peer_moves_with_a_level_shift_and_stays_in_range(shift, seed):
    rng = np.random.default_rng(seed)
    base = 50 + 10 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 3, L)
    a = _run(_y({CPU: base}))
    b = _run(_y({CPU: base + shift}))
    for name in a:
        before, after = a[name][0, 0, :, CPU], b[name][0, 0, :, CPU]
        inside = (before > 0) & (before < 100) & (after > 0) & (after < 100)  # clipping aside
        np.testing.assert_allclose(after[inside], before[inside] + shift, atol=1e-6, err_msg=name)
    wild = _run(_y({CPU: np.clip(base * 3 - 100, 0, 100), MEM: np.clip(LINE * 5, 0, 100)}))
    for name, forecast in wild.items():
        assert (forecast[..., :5] >= 0).all() and (forecast[..., :5] <= 100).all(), name


def test_histories_align_each_window_on_its_last_measured_step():
    n = 30
    ts = 1_736_899_200 + np.arange(n, dtype=np.int64) * 300
    values = np.zeros((n, len(METRIC_FIELDS)), dtype=np.float32)
    values[:, FIELD_INDEX["cpu_idle_pct"]] = 100 - np.arange(n)
    status = np.full(n, STATUS_CODE["healthy"], dtype=np.int8)
    status[-2:] = STATUS_CODE["offline"]
    status[10] = STATUS_CODE["offline"]
    window = MetricsWindow.from_arrays("a", 100, ts, values, status)
    hist = structural.histories([window], 40)
    assert hist.last_epoch_s[0] == ts[-3]
    assert hist.y[0, -1, CPU] == n - 3
    assert np.isnan(hist.y[0, -1 - (n - 3 - 10), CPU])
    assert np.isnan(hist.y[0, : 40 - (n - 2)]).all()


@pytest.mark.parametrize("name", list(structural.PEERS))
def test_peers_are_the_issue_list(name):
    assert name in {"last_value", "seasonal_naive", "same_time_median_7d", "predict_linear_1h",
                    "predict_linear_6h", "damped_trend"}


def test_profile_level_anchors_on_the_last_half_hour_not_on_one_noisy_step():
    """Today runs 5 points above the daily profile: the offset carries at short horizons; one spike in the
    last step moves the anchor by a sixth of itself (the mean over GAP_STEPS), not by all of it."""
    y = SINE.copy()
    y[L - 288 :] += 5.0  # today: the same shape, 5 points higher
    calm = _run(_y({CPU: y}))["profile_level"][0, 0, :, CPU]
    ideal = 50 + 20 * np.sin(2 * np.pi * FUTURE / 288)
    assert abs(calm[0] - (ideal[0] + 5.0 * structural.PROFILE_LEVEL_DECAY)) < 0.3
    spiked = y.copy()
    spiked[-1] += 30.0
    jumped = _run(_y({CPU: spiked}))["profile_level"][0, 0, :, CPU]
    shift = (jumped[0] - calm[0]) / structural.PROFILE_LEVEL_DECAY
    assert shift == pytest.approx(30.0 / structural.GAP_STEPS, abs=0.05)
