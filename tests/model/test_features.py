"""The one feature pipeline: grid, gaps, per-server scaling (pitfall 2), same inputs in training and serving."""

from __future__ import annotations

import numpy as np

from argus.adapters.tft.features import (
    FeatureSpec,
    encode_windows,
    segments_from_arrays,
    targets_from_values,
    window_from_segment,
)
from argus.adapters.tft.forecaster import latest_window
from argus.domain.forecast import TARGETS
from argus.domain.metrics import STATUS_CODE
from tests.model.conftest import START_EPOCH_S, STEP, synthetic_values, window_of

HEALTHY = STATUS_CODE["healthy"]


def _arrays(n, drop=()):
    ts = START_EPOCH_S + np.arange(n, dtype=np.int64) * STEP
    keep = np.setdiff1d(np.arange(n), np.asarray(drop, dtype=int))
    values = synthetic_values(n, seed=1)
    return ts[keep], values[keep], np.full(len(keep), HEALTHY, dtype=np.int8)


def test_short_gaps_are_bridged_and_long_gaps_split_the_series():
    short = segments_from_arrays("a", *_arrays(50, drop=[10, 11, 12]))
    assert len(short) == 1 and len(short[0]) == 50
    assert np.all(np.diff(short[0].ts) == STEP)
    long = segments_from_arrays("a", *_arrays(50, drop=[10, 11, 12, 13]))
    assert [len(s) for s in long] == [10, 36]


def test_offline_records_are_not_measurements():
    ts, values, status = _arrays(30)
    status[20:] = STATUS_CODE["offline"]
    segments = segments_from_arrays("a", ts, values, status)
    assert len(segments) == 1 and segments[0].ts[-1] == ts[19]


def test_cpu_target_is_total_cpu_from_idle():
    values = synthetic_values(5, seed=2)
    targets = targets_from_values(values)
    np.testing.assert_allclose(targets[:, TARGETS.index("cpu_pct")], 100 - values[:, 3], rtol=1e-6)


def test_each_server_is_scaled_by_its_own_data():
    """Pitfall 2: a wrong group mapping silently gives a server another server's scale."""
    spec = FeatureSpec(max_encoder_steps=48, horizon_steps=24)
    quiet = window_of("quiet", synthetic_values(48, seed=1, level=5, mem=10))
    busy = window_of("busy", synthetic_values(48, seed=2, level=70, mem=80))
    slices = [latest_window(w, spec, 0) for w in (quiet, busy)]
    batch = encode_windows(slices, spec)
    for i, window in enumerate((quiet, busy)):
        own = targets_from_values(np.asarray(window.values))
        np.testing.assert_allclose(batch["center"][i], own[-1], rtol=1e-5)
        expected_scale = np.maximum(own.std(axis=0), [1.0, 0.5, 0.5, 0.5, 0.5, 0.05])
        np.testing.assert_allclose(batch["scale"][i], expected_scale, rtol=1e-4)
    assert batch["center"][0, 1] < 20 < batch["center"][1, 1]


def test_serving_builds_exactly_the_inputs_training_builds():
    spec = FeatureSpec(max_encoder_steps=48, horizon_steps=24)
    window = window_of("s", synthetic_values(100, seed=4))
    served = latest_window(window, spec, 1)
    segment = segments_from_arrays("s", window.timestamps, np.asarray(window.values), window.statuses)[0]
    trained = window_from_segment(segment, len(segment), spec, 1)
    a, b = encode_windows([served], spec), encode_windows([trained], spec)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_encoder_lengths_vary_and_are_right_padded():
    spec = FeatureSpec(max_encoder_steps=48, horizon_steps=24)
    slices = [latest_window(window_of(f"s{n}", synthetic_values(n, seed=n)), spec, 0) for n in (12, 48)]
    batch = encode_windows(slices, spec)
    assert list(batch["encoder_lengths"]) == [12, 48]
    assert batch["encoder_cont"].shape == (2, 48, len(spec.x_reals))
    assert np.all(batch["encoder_cont"][0, 12:] == 0)
    assert batch["decoder_cont"].shape == (2, 24, len(spec.x_reals))


def test_training_skips_maintenance_records_but_serving_keeps_them():
    import numpy as np

    from argus.adapters.tft.features import segments_from_arrays
    from argus.domain.metrics import METRIC_FIELDS, STATUS_CODE

    ts = np.arange(20, dtype=np.int64) * 300
    values = np.full((20, len(METRIC_FIELDS)), 50.0, dtype=np.float32)
    status = np.full(20, STATUS_CODE["healthy"], dtype=np.int8)
    status[5:15] = STATUS_CODE["maintenance"]
    served = segments_from_arrays("a", ts, values, status)
    trained = segments_from_arrays("a", ts, values, status, skip_maintenance=True)
    assert [len(s.ts) for s in served] == [20]
    assert [len(s.ts) for s in trained] == [5, 5]
