"""The trend check: hand-made scenarios (checked without a model), and the report's shape."""

from __future__ import annotations

import json

import numpy as np
import pytest

from argus.adapters import structural
from argus.adapters.tft.evaluation import (
    TREND_HISTORY_STEPS,
    TREND_ORIGIN_EPOCH_S,
    TREND_REACH_STEPS,
    TREND_SCENARIOS,
    TrendScenario,
    format_trend,
    trend_check,
    trend_scenario,
)
from argus.domain.forecast import TARGETS, Forecast
from argus.domain.metrics import FIELD_INDEX, STEP_SECONDS

#: scenario -> (earliest, latest) true crossing in minutes after the origin
WINDOWS = {"mem_leak": (120, 365), "disk_fill": (120, 365), "daily_cycle_peak": (60, 425)}


def _series(case: TrendScenario) -> np.ndarray:
    return structural.targets_of(case.window.values.astype(np.float64))[:, TARGETS.index(case.target)]


@pytest.mark.parametrize("name", list(TREND_SCENARIOS))
def test_a_scenario_window_is_three_days_of_complete_records_ending_at_the_origin(name):
    case = trend_scenario(name, seed=4)
    w = case.window
    assert len(w) == TREND_HISTORY_STEPS and w.last_epoch_s == TREND_ORIGIN_EPOCH_S
    assert np.all(np.diff(w.timestamps) == STEP_SECONDS)
    assert np.isfinite(w.values).all()
    cpu = 100 - w.values[:, FIELD_INDEX["cpu_idle_pct"]]
    np.testing.assert_allclose(w.values[:, FIELD_INDEX["cpu_user_pct"]], 0.8 * cpu, atol=1e-3)
    assert case.truth.shape == (TREND_REACH_STEPS,)
    assert (case.target, case.limit) == TREND_SCENARIOS[name]


@pytest.mark.parametrize("name", list(TREND_SCENARIOS))
def test_the_true_crossing_is_the_first_step_the_noise_free_truth_reaches_the_limit(name):
    crossings = set()
    for seed in range(20):
        case = trend_scenario(name, seed)
        steps = case.true_crossing_steps
        assert case.true_crossing_minutes == steps * 5
        lo, hi = WINDOWS[name]
        assert lo <= case.true_crossing_minutes <= hi
        assert case.truth[steps - 1] >= case.limit and (steps == 1 or case.truth[steps - 2] < case.limit)
        assert _series(case)[-1] < case.limit  # not crossed yet at the origin
        crossings.add(steps)
    assert len(crossings) > 10  # the start level / phase varies per seed


def test_the_leak_and_the_fill_extrapolate_to_their_true_crossing_by_hand():
    """A straight line fitted to the window's own noisy rise reaches the limit where the truth does."""
    for name, fit_steps, slope in (("mem_leak", 144, 0.08), ("disk_fill", 864, 0.04)):
        for seed in (0, 7, 19):
            case = trend_scenario(name, seed)
            y = _series(case)[-fit_steps:]
            x = np.arange(-(fit_steps - 1), 1)
            b, a = np.polyfit(x, y, 1)
            assert b == pytest.approx(slope, rel=0.05)
            steps_to_limit = (case.limit - a) / b
            assert steps_to_limit * 5 == pytest.approx(case.true_crossing_minutes, abs=10)
    leak = _series(trend_scenario("mem_leak", 3))
    assert abs(np.polyfit(np.arange(400), leak[-600:-200], 1)[0]) < 0.005  # flat before the last 12 h


def test_the_daily_peak_repeats_yesterday():
    case = trend_scenario("daily_cycle_peak", 5)
    cpu = _series(case)
    steps = case.true_crossing_steps
    # a day before the crossing the (noisy) series was near the limit, and two days before as well
    for days in (1, 2):
        around = cpu[len(cpu) - days * 288 + steps - 3 : len(cpu) - days * 288 + steps + 3]
        assert abs(np.mean(around) - case.limit) < 4


class TruthTeller:
    """Forecasts each trend window's noise-free truth (rebuilt from its name) with a +-1 band."""

    quantiles = (0.1, 0.5, 0.9)
    horizon_steps = 96
    history_steps = 2880

    def forecast(self, windows, profiles):
        out = {}
        for w in windows:
            _, name, seed = w.server_name.split("-")
            case = trend_scenario(name, int(seed))
            last = structural.targets_of(w.values[-1:].astype(np.float64))[0]
            values = np.repeat(last[None, :], self.horizon_steps, axis=0)
            values[:, TARGETS.index(case.target)] = case.truth
            band = np.stack([values - 1, values, values + 1], axis=2)
            out[w.server_name] = Forecast(w.server_name, w.last_epoch_s + STEP_SECONDS * np.arange(1, 97),
                                          self.quantiles, {t: band[:, j] for j, t in enumerate(TARGETS)})
        return out


def test_a_forecaster_that_knows_the_truth_finds_every_crossing():
    report = trend_check(TruthTeller())
    assert set(report) == {*TREND_SCENARIOS, "level", "notes"}
    for name, (target, limit) in TREND_SCENARIOS.items():
        r = report[name]
        assert r["target"] == target and r["limit"] == limit and r["seeds"] == 20
        assert r["median_crossing_minutes"] == r["true_crossing_minutes"]
        assert len(r["true_crossing_minutes"]) == 20
        assert r["within_15pct"] == 1.0 and r["crossing_error_minutes_median"] == 0
        assert set(r["plus5min_minus_last"]) == set(TARGETS)
        assert r["plus5min_minus_last"]["swap_pct"] == 0
    assert report["level"]["windows"] == 60 and report["level"]["median_abs_plus5min_minus_last"] > 0
    assert json.loads(json.dumps(report)) == report
    assert "daily_cycle_peak" in format_trend(report)


@pytest.mark.slow
def test_the_cli_trend_check_reports_the_served_blend(tiny_model_dir, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from argus.entrypoints.cli import cli

    monkeypatch.setenv("ARGUS_MODEL_DIR", str(tiny_model_dir))
    out = tmp_path / "trend.json"
    result = CliRunner().invoke(cli, ["evaluate", "--trend-check", "--json", str(out)])
    assert result.exit_code == 0, result.output
    trend = json.loads(out.read_text())["trend"]
    assert set(trend) == {*TREND_SCENARIOS, "level", "notes"}
    for name in TREND_SCENARIOS:
        r = trend[name]
        assert len(r["median_crossing_minutes"]) == len(r["true_crossing_minutes"]) == 20
        assert all(m is None or 5 <= m <= 120 for m in r["median_crossing_minutes"])  # tiny model: 2 h horizon
        assert 0 <= r["within_15pct"] <= 1
    assert trend["level"]["windows"] == 60
    assert "trend check" in result.output
    assert CliRunner().invoke(cli, ["evaluate"]).exit_code != 0  # neither --data nor --trend-check
