"""Synthetic incident scenarios: each does what it says on a flat series, stays in range, is seeded, is recorded."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from argus.adapters.tft.features import WindowSlice
from argus.adapters.tft.scenarios import (
    CPU,
    DEFAULT_MIX,
    DISK,
    LOAD,
    MEM,
    SCENARIOS,
    SWAP,
    apply_scenario,
    resolve_mix,
)
from argus.domain.forecast import TARGETS
from tests.model.conftest import START_EPOCH_S

ENC, HOR = 100, 24
LAST = ENC - 1
N = len(TARGETS)
BASE = np.array([30.0, 50.0, 5.0, 2.0, 40.0, 1.0], dtype=np.float32)  # cpu, mem, swap, iowait, disk, load
SEEDS = range(25)


def flat() -> np.ndarray:
    return np.tile(BASE, (ENC + HOR, 1))


def run(name: str, seed: int, series: np.ndarray | None = None, last_epoch_s: int = START_EPOCH_S) -> np.ndarray:
    return SCENARIOS[name](flat() if series is None else series, LAST, np.random.default_rng(seed), last_epoch_s)


def changed(out: np.ndarray) -> set[int]:
    return set(np.flatnonzero(np.abs(out - BASE).max(axis=0) > 1e-4).tolist())


@pytest.mark.parametrize(("name", "col", "lo", "hi"), [("mem_leak", MEM, 0.02, 0.3), ("disk_fill", DISK, 0.005, 0.2)])
def test_leaks_and_disk_fills_rise_at_one_rate_from_at_least_2h_before_the_origin_through_the_future(name, col, lo,
                                                                                                      hi):
    rates = []
    for seed in SEEDS:
        out = run(name, seed)
        assert changed(out) == {col}
        slope = np.diff(out[LAST - 24 :, col])  # already rising 2 h before the last encoder step
        np.testing.assert_allclose(slope, slope[-1], atol=1e-4)
        assert lo - 1e-6 <= slope[-1] <= hi + 1e-6
        rates.append(slope[-1])
    assert max(rates) > 3 * min(rates)  # the rate is drawn, not fixed


def test_a_swap_storm_has_high_memory_and_swap_on_an_accelerating_ramp():
    for seed in SEEDS:
        out = run("swap_storm", seed)
        assert changed(out) <= {MEM, SWAP}
        assert out[LAST, MEM] >= 87 and out[-1, MEM] >= 87
        swap = out[:, SWAP]
        assert swap[-1] > BASE[SWAP] + 0.01 and swap[-1] >= swap[LAST]
        d = np.diff(swap)
        d = d[(d > 0) & (swap[1:] < 100)]
        assert np.all(np.diff(d) >= -1e-3)  # accelerating until the limit


def test_a_cpu_runaway_reaches_90_within_10_minutes_and_stays():
    for seed in SEEDS:
        out = run("cpu_runaway", seed)
        assert changed(out) == {CPU, LOAD}
        first = int(np.flatnonzero(out[:, CPU] > BASE[CPU] + 1e-3)[0])
        assert first >= LAST - 23  # inside the encoder's last 2 h, or in the future
        assert np.all(out[first + 1 :, CPU] >= 90)  # 2 steps after the last normal value
        assert np.all(out[first + 1 :, LOAD] > BASE[LOAD])


def test_a_burst_returns_to_baseline_within_15_to_45_minutes():
    for seed in SEEDS:
        out = run("burst", seed)
        assert changed(out) == {CPU, LOAD}
        up = np.flatnonzero(out[:, CPU] > BASE[CPU] + 1e-3)
        assert np.all(np.diff(up) == 1) and 2 <= len(up) <= 8  # one spike, normal again after 3..9 steps
        assert up[0] >= LAST - 22 and up[-1] < ENC + HOR - 1
        assert out[:, CPU].max() >= BASE[CPU] + 10
        np.testing.assert_array_equal(out[up[-1] + 1 :], flat()[up[-1] + 1 :])


def test_a_restart_drops_memory_and_recovers_slowly():
    for seed in SEEDS:
        out = run("restart", seed)
        mem = out[:, MEM]
        drop = int(np.argmin(mem))
        assert mem[drop] <= 25 and LAST - 23 <= drop <= LAST + HOR // 2
        np.testing.assert_array_equal(mem[:drop], BASE[MEM])
        assert np.all(np.diff(mem[drop:]) >= 0) and mem[-1] < BASE[MEM]
        assert np.all(out[drop:, SWAP] < BASE[SWAP])


def test_a_daily_cycle_is_one_sine_of_a_day_through_encoder_and_future():
    omega = 2 * np.pi / 288
    for seed in SEEDS:
        out = run("daily_cycle", seed)
        (col,) = changed(out)
        assert col in (CPU, MEM, LOAD)
        d = np.diff(out[:, col].astype(np.float64))
        scale = np.abs(d).max()
        np.testing.assert_allclose(d[2:] + d[:-2], 2 * math.cos(omega) * d[1:-1], atol=1e-3 * scale + 1e-5)
        assert np.ptp(out[:ENC, col]) > 0 and np.ptp(out[ENC:, col]) > 0


def test_a_weekly_cycle_steps_at_the_real_weekend_boundary():
    saturday = START_EPOCH_S + 3 * 86_400  # 2025-01-18T00:00Z
    last_epoch_s = saturday + 10 * 300  # the last encoder step is 00:50 on Saturday
    for seed in SEEDS:
        out = run("weekly_cycle", seed, last_epoch_s=last_epoch_s)
        (col,) = changed(out)
        jumps = np.flatnonzero(np.abs(np.diff(out[:, col])) > 1e-4)
        np.testing.assert_array_equal(jumps, [LAST - 11])  # between Friday 23:55 and Saturday 00:00
    midweek = run("weekly_cycle", 0, last_epoch_s=START_EPOCH_S + 12 * 3600)  # Wednesday noon: no boundary
    (col,) = changed(midweek)
    assert np.ptp(midweek[:, col]) < 1e-4


def test_a_step_change_shifts_one_target_once():
    for seed in SEEDS:
        out = run("step_change", seed)
        (col,) = changed(out)
        assert len(np.flatnonzero(np.abs(np.diff(out[:, col])) > 1e-4)) == 1


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_scenario_stays_in_range_is_seeded_and_leaves_its_input_alone(name):
    rng = np.random.default_rng(1)
    for seed in SEEDS:
        series = np.concatenate([rng.uniform(0, 100, (ENC + HOR, N - 1)), rng.uniform(0, 8, (ENC + HOR, 1))], axis=1)
        series[: seed % 3 * 40] = [99, 99, 99, 99, 99, 0]  # limits at either end
        series = series.astype(np.float32)
        before = series.copy()
        out = run(name, seed, series)
        np.testing.assert_array_equal(series, before)
        assert out.shape == series.shape and out.dtype == np.float32 and np.isfinite(out).all()
        assert out.min() >= 0 and out[:, :LOAD].max() <= 100
        np.testing.assert_array_equal(out, run(name, seed, series))
    short = np.tile(BASE, (12 + HOR, 1))  # the shortest encoder still works
    assert SCENARIOS[name](short, 11, np.random.default_rng(0), START_EPOCH_S).shape == short.shape


def test_the_default_mix_sums_to_one_and_names_known_scenarios():
    assert math.isclose(sum(DEFAULT_MIX.values()), 1.0)
    assert set(DEFAULT_MIX) <= set(SCENARIOS) and set(DEFAULT_MIX) == set(SCENARIOS)
    assert resolve_mix(()) == DEFAULT_MIX
    assert resolve_mix([("mem_leak", 3), ("burst", 1)]) == {"mem_leak": 0.75, "burst": 0.25}
    with pytest.raises(ValueError, match="unknown"):
        resolve_mix({"meteor_strike": 1.0})
    with pytest.raises(ValueError):
        resolve_mix({"burst": -1.0})


def _window() -> WindowSlice:
    covariates = np.full((ENC, 7), 0.2, np.float32)
    return WindowSlice(flat()[:ENC], covariates, START_EPOCH_S, 1, flat()[ENC:])


def test_apply_scenario_changes_encoder_and_future_together_and_follows_cpu_in_the_user_covariate():
    window = _window()
    assert apply_scenario(window, np.random.default_rng(0), 0.0, DEFAULT_MIX) == (window, None)
    out, name = apply_scenario(window, np.random.default_rng(0), 1.0, {"cpu_runaway": 1.0})
    assert name == "cpu_runaway"
    cpu = np.concatenate([out.targets[:, CPU], out.future[:, CPU]])
    assert cpu[-1] >= 90 and out.last_epoch_s == window.last_epoch_s and out.profile_index == 1
    expected = np.clip(0.2 + (out.targets[:, CPU] - BASE[CPU]) / 100, 0, 1)
    np.testing.assert_allclose(out.covariates[:, 0], expected, atol=1e-6)
    np.testing.assert_array_equal(out.covariates[:, 1:], window.covariates[:, 1:])
    np.testing.assert_array_equal(window.covariates, np.float32(0.2))  # the input window is untouched
    leak, name = apply_scenario(window, np.random.default_rng(0), 1.0, {"mem_leak": 1.0})
    assert name == "mem_leak" and leak.covariates is window.covariates
    assert leak.future[-1, MEM] > leak.targets[-1, MEM] > BASE[MEM]


def test_apply_scenario_draws_by_the_mix_and_is_reproducible():
    window = _window()
    rng = np.random.default_rng(7)
    names = [apply_scenario(window, rng, 0.5, DEFAULT_MIX)[1] for _ in range(400)]
    assert 150 < names.count(None) < 250
    assert set(names) - {None} <= set(DEFAULT_MIX) and len(set(names)) >= 7
    a, b = (apply_scenario(window, np.random.default_rng(3), 1.0, DEFAULT_MIX) for _ in range(2))
    assert a[1] == b[1]
    np.testing.assert_array_equal(a[0].future, b[0].future)


def test_the_train_command_passes_scenario_share(tmp_path, monkeypatch):
    import click
    from click.testing import CliRunner

    from argus.adapters.tft import training
    from argus.entrypoints import model_cli

    seen = {}

    def fake_train(source, model_dir, config, **kwargs):
        seen["config"] = config
        manifest = {"size_bytes": 1, "training": {"epochs_run": 1, "steps_run": 1, "seconds": 0.1,
                                                  "best_val_loss": 0.5}}
        return training.TrainingResult("tft_20250101_000000", tmp_path, manifest)

    monkeypatch.setattr(training, "train_model", fake_train)
    monkeypatch.setenv("ARGUS_MODEL_DIR", str(tmp_path / "models"))
    data = tmp_path / "records.jsonl"
    data.write_text("")
    group = click.Group("argus")
    model_cli.register(group)
    result = CliRunner().invoke(group, ["train", "--data", str(data), "--scenario-share", "0.3"])
    assert result.exit_code == 0, result.output
    assert seen["config"].scenario_share == 0.3 and seen["config"].scenario_mix == ()
    assert CliRunner().invoke(group, ["train", "--data", str(data), "--scenario-share", "1.5"]).exit_code != 0


def test_the_config_takes_a_mix_as_a_mapping_or_pairs():
    from argus.adapters.tft.training import TrainingConfig

    assert TrainingConfig(scenario_mix={"burst": 1}).scenario_mix == (("burst", 1.0),)
    assert TrainingConfig(scenario_mix=[["burst", 1]]) == TrainingConfig(scenario_mix={"burst": 1.0})
    assert TrainingConfig().scenario_share == 0.0 and TrainingConfig().scenario_mix == ()


@pytest.mark.slow
def test_training_batches_with_scenarios_are_reproducible_and_differ_from_plain_ones():
    from argus.adapters.tft.features import FeatureSpec, segments_from_arrays
    from argus.adapters.tft.loop import WindowBatches
    from argus.adapters.tft.training import window_index
    from argus.domain.metrics import STATUS_CODE
    from tests.model.conftest import STEP, synthetic_values

    n = 600
    values = synthetic_values(n, seed=0)
    ts = START_EPOCH_S + np.arange(n, dtype=np.int64) * STEP
    segments = segments_from_arrays("ppdb000", ts, values, np.full(n, STATUS_CODE["healthy"], np.int8))
    spec = FeatureSpec(max_encoder_steps=48, horizon_steps=24)
    index = window_index(segments, spec)

    def batches(share):
        return WindowBatches(segments, index, spec, [1], 16, 64, 0.3, 42, scenario_share=share)

    a, b, plain = batches(0.5)[1], batches(0.5)[1], batches(0.0)[1]
    np.testing.assert_array_equal(a["future_z"], b["future_z"])
    np.testing.assert_array_equal(a["encoder_cont"], b["encoder_cont"])
    assert not np.array_equal(a["future_z"], plain["future_z"])


@pytest.mark.slow
def test_a_training_run_with_scenarios_records_them_in_the_manifest(tmp_path):
    from tests.model.conftest import build_tiny_model

    result = build_tiny_model(tmp_path, "tft_20240101_000002", scenario_share=0.5)
    manifest = json.loads((result.path / "manifest.json").read_text())
    scenarios = manifest["training"]["scenarios"]
    assert scenarios["share"] == 0.5 and scenarios["seed"] == manifest["training"]["config"]["seed"]
    assert scenarios["mix"] == pytest.approx(DEFAULT_MIX)
    assert manifest["training"]["config"]["scenario_share"] == 0.5
