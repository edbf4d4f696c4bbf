"""The calibration map of incident probabilities: monotone, stored, applied."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from argus.domain.probability import CalibrationMap, ProbabilityCalibration, isotonic_knots
from argus.domain.profiles import Limits
from argus.domain.risk import BreachHistory, assess
from argus.testing import make_forecast

CALM = {"cpu_pct": 30.0, "mem_pct": 50.0, "swap_pct": 0.0, "iowait_pct": 1.0, "disk_pct": 40.0, "load": 1.0}


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(5, 400))
def test_an_isotonic_map_is_monotone_bounded_and_defined_on_the_unit_interval(seed, n):
    rng = np.random.default_rng(seed)
    raw = rng.random(n) ** 2
    outcomes = (rng.random(n) < raw).astype(float)
    fitted = isotonic_knots(raw, outcomes)
    grid = np.linspace(0, 1, 101)
    values = np.array([fitted(x) for x in grid])
    assert np.all(np.diff(values) >= -1e-12)
    assert values.min() >= 0.0 and values.max() <= 1.0
    assert fitted.xs[0] == 0.0 and fitted.xs[-1] == 1.0


def test_an_overconfident_forecast_is_pulled_to_the_observed_frequency():
    rng = np.random.default_rng(0)
    raw = rng.random(20_000)
    outcomes = (rng.random(20_000) < raw / 4).astype(float)  # says p, one time in four as often happens
    fitted = isotonic_knots(raw, outcomes)
    assert fitted(0.8) == pytest.approx(0.2, abs=0.05)
    assert fitted(0.2) == pytest.approx(0.05, abs=0.03)


def test_the_calibration_round_trips_through_the_manifest_and_keeps_8h_at_least_30m():
    quiet, busy = CalibrationMap((0.0, 1.0), (0.0, 0.6)), CalibrationMap((0.0, 1.0), (0.5, 0.9))
    calibration = ProbabilityCalibration((quiet, busy), (CalibrationMap((0.0, 1.0), (0.0, 0.3)), busy), (0.0,),
                                         fitted_on={"samples": 10})
    again = ProbabilityCalibration.from_manifest(calibration.to_manifest())
    assert again == calibration
    p30, p8 = again.apply(0.5, 0.5)
    assert p30 == pytest.approx(0.3) and p8 == pytest.approx(0.3)  # 8 h never below 30 min
    busy_server = BreachHistory(share=0.02, age_minutes=30.0)
    assert again.apply(0.5, 0.5, busy_server) == pytest.approx((0.7, 0.7))  # a server that breaches often
    assert ProbabilityCalibration.from_manifest(None) is None
    with pytest.raises(ValueError):
        ProbabilityCalibration((quiet,), (quiet,), (0.0,))


@pytest.mark.parametrize("knots", [[[0, 1], [0.5, 0.2]], [[1, 0], [0, 1]], [[0], [0]], [[0, 1], [0, 1.5]]])
def test_a_map_that_is_not_monotone_or_not_a_probability_is_refused(knots):
    with pytest.raises(ValueError):
        CalibrationMap.from_knots(knots)


def test_assess_serves_calibrated_probabilities_and_keeps_the_raw_ones():
    halve = ProbabilityCalibration((CalibrationMap((0.0, 1.0), (0.0, 0.5)),), (CalibrationMap((0.0, 1.0), (0.0, 0.5)),))
    forecast = make_forecast(swap_pct=40.0, spread=20.0)
    plain = assess("s1", "generic", Limits(), CALM, CALM, forecast)
    calibrated = assess("s1", "generic", Limits(), CALM, CALM, forecast, calibration=halve)
    assert calibrated.raw_prob_8h == pytest.approx(plain.prob_8h)
    assert calibrated.prob_8h == pytest.approx(plain.prob_8h / 2)
    assert calibrated.score == plain.score  # the score reads the forecast, not the map
    over = assess("s1", "generic", Limits(), {**CALM, "cpu_pct": 99.0}, CALM, forecast, calibration=halve)
    assert over.prob_30m == 1.0  # a breach now is certain, whatever the map says


def test_blocks_of_a_few_samples_are_pooled_with_a_neighbour():
    rng = np.random.default_rng(1)
    raw = np.concatenate([rng.random(5000) * 0.5, [0.95, 0.96, 0.97]])  # three lonely high forecasts
    outcomes = np.concatenate([(rng.random(5000) < 0.05).astype(float), [1.0, 1.0, 1.0]])
    loose, pooled = isotonic_knots(raw, outcomes), isotonic_knots(raw, outcomes, min_block=100)
    assert loose(0.99) == 1.0  # three samples make a certainty ...
    assert pooled(0.99) < 0.2  # ... that 100 samples do not support
    values = [pooled(x) for x in np.linspace(0, 1, 51)]
    assert all(b >= a for a, b in zip(values, values[1:], strict=False))


def test_a_server_in_maintenance_over_a_limit_is_not_certain_to_have_an_incident():
    flat = ProbabilityCalibration((CalibrationMap((0.0, 1.0), (0.0, 0.5)),), (CalibrationMap((0.0, 1.0), (0.0, 0.5)),))
    now = {**CALM, "cpu_pct": 100.0}
    result = assess("s1", "generic", Limits(), now, now, make_forecast(), calibration=flat, maintenance=True)
    assert result.raw_prob_30m == 1.0 and result.prob_30m == pytest.approx(0.5)
