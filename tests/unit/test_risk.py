"""Risk scoring: the properties the issue asks for, many of them property-based."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from argus.domain.alerts import AlertLevel
from argus.domain.profiles import Limits
from argus.domain.risk import (
    assess,
    exceedance_probability,
    format_duration,
    summarize,
)
from argus.testing import make_forecast, ramp

LIMITS = Limits(cpu_pct=95, mem_pct=95, swap_pct=50, iowait_pct=30, disk_pct=90, load=12)
CALM = {"cpu_pct": 30.0, "mem_pct": 50.0, "swap_pct": 0.0, "iowait_pct": 1.0, "disk_pct": 40.0, "load": 1.0,
        "close_wait": 3.0}


def _assess(current=None, forecast=None, **kwargs):
    now = {**CALM, **(current or {})}
    return assess("ppdb001", "database", LIMITS, now, now, forecast, **kwargs)


def test_the_level_table_is_the_references():
    assert [AlertLevel.for_score(s) for s in (0, 49.9, 50, 59.9, 60, 79.9, 80, 100)] == [
        AlertLevel.HEALTHY, AlertLevel.HEALTHY, AlertLevel.DEGRADED, AlertLevel.DEGRADED,
        AlertLevel.WARNING, AlertLevel.WARNING, AlertLevel.CRITICAL, AlertLevel.CRITICAL,
    ]
    assert AlertLevel.WARNING.label == "🟠 Warning" and AlertLevel.WARNING.color == "#FFA500"
    assert AlertLevel.CRITICAL.label == "🔴 Critical" and AlertLevel.CRITICAL.color == "#FF0000"
    assert AlertLevel.DEGRADED.label == "🟡 Degraded" and AlertLevel.DEGRADED.color == "#FFD700"
    assert AlertLevel.HEALTHY.label == "🟢 Healthy" and AlertLevel.HEALTHY.color == "#00FF00"


def test_a_calm_server_with_a_flat_forecast_is_healthy():
    result = _assess(forecast=make_forecast())
    assert result.level is AlertLevel.HEALTHY and result.score < 50
    assert result.message == "All metrics within limits"
    assert result.prob_8h < 0.01


def test_memory_at_99_percent_now_is_critical_even_with_a_calm_forecast():
    result = _assess({"mem_pct": 99.0}, make_forecast())
    assert result.level is AlertLevel.CRITICAL
    assert result.message.startswith("Memory exhausted now")
    assert result.prob_30m == 1.0 and result.time_to_issue_minutes is None


def test_a_median_crossing_within_the_hour_is_critical_with_its_time_to_issue():
    rising = np.concatenate([np.linspace(80, 96, 9), np.full(87, 96.0)])  # crosses 95 at step 9: 45 min
    result = _assess({"mem_pct": 80.0}, make_forecast(mem_pct=rising))
    assert result.level is AlertLevel.CRITICAL
    assert result.time_to_issue_minutes == 45
    assert result.message.startswith("Memory exhaustion predicted in 45 minutes (limit 95%, ")
    assert result.time_to_issue_possible is False and result.issue_metric == "mem_pct"


def test_a_median_crossing_in_five_hours_is_a_warning():
    path = np.concatenate([np.full(60, 70.0), np.full(36, 97.0)])  # crosses at step 61: 5 h 5 min
    result = _assess({"cpu_pct": 70.0}, make_forecast(cpu_pct=path))
    assert result.level is AlertLevel.WARNING
    assert result.message.startswith("CPU saturation predicted in 5 hours 5 minutes (limit 95%, ")


def test_sooner_and_more_certain_crossings_score_higher():
    def score(step, spread):
        path = np.concatenate([np.full(step - 1, 70.0), np.full(96 - step + 1, 96.0)])
        return _assess(forecast=make_forecast(mem_pct=path, spread=spread)).score

    assert score(20, 2.0) > score(60, 2.0) > score(90, 2.0) >= 60
    assert score(60, 0.5) > score(60, 10.0)


def test_a_possible_crossing_from_the_upper_band_can_be_degraded_but_not_warning():
    result = _assess(forecast=make_forecast(swap_pct=40.0, spread=20.0))  # p90 60 > limit 50, p50 40 < 50
    assert result.level is AlertLevel.DEGRADED
    assert result.message.startswith("Swap exhaustion possible in ~5 minutes (limit 50%, ") and result.prob_8h > 0.25
    assert result.time_to_issue_minutes == 5 and result.time_to_issue_possible
    approaching = _assess(forecast=make_forecast(swap_pct=48.0, spread=1.0))
    assert approaching.level is AlertLevel.DEGRADED
    assert approaching.message == "Swap usage expected to reach 48% (limit 50%)"


def test_sustained_elevation_without_a_predicted_crossing_is_degraded():
    result = _assess({"mem_pct": 93.5}, make_forecast(mem_pct=93.5, spread=0.5))
    assert result.level is AlertLevel.DEGRADED
    assert result.message.startswith("Memory elevated at 93.5%")


def test_an_observation_far_outside_its_predicted_band_is_at_least_degraded():
    result = _assess(forecast=make_forecast(), anomaly=2.0, anomaly_metric="swap_pct")
    assert result.level is AlertLevel.DEGRADED
    assert result.message == "Swap usage outside its predicted band"


def test_servers_without_a_forecast_still_score_their_current_state():
    assert _assess({"cpu_pct": 99.0}).level is AlertLevel.CRITICAL
    assert _assess().level is AlertLevel.HEALTHY


def test_close_wait_counts_only_where_the_profile_limits_it():
    assert _assess({"close_wait": 5000.0}).level is AlertLevel.HEALTHY
    limited = assess("ppweb001", "web_api", Limits(close_wait=200), {**CALM, "close_wait": 250.0},
                     CALM, None)
    assert limited.level is AlertLevel.CRITICAL


values = st.floats(0, 100, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(current=values, bump=st.floats(0, 50), p50=values, rise=st.floats(0, 50), spread=st.floats(0, 20),
       tighten=st.floats(0, 20), metric=st.sampled_from(["cpu_pct", "mem_pct", "swap_pct", "disk_pct"]))
def test_the_score_never_decreases_when_any_input_gets_worse(current, bump, p50, rise, spread, tighten, metric):
    base = _assess({metric: current}, make_forecast(**{metric: ramp(p50, p50 + 5)}, spread=spread))
    worse_now = _assess({metric: min(100, current + bump)}, make_forecast(**{metric: ramp(p50, p50 + 5)}, spread=spread))
    worse_forecast = _assess({metric: current}, make_forecast(**{metric: ramp(p50 + rise, p50 + 5 + rise)}, spread=spread))
    assert worse_now.score >= base.score
    assert worse_forecast.score >= base.score
    lower_limit = assess("s", "p", Limits(**{_limit_name(metric): max(1.0, getattr(LIMITS, _limit_name(metric)) - tighten)}),
                         {**CALM, metric: current}, {**CALM, metric: current},
                         make_forecast(**{metric: ramp(p50, p50 + 5)}, spread=spread))
    default_limit = assess("s", "p", Limits(), {**CALM, metric: current}, {**CALM, metric: current},
                           make_forecast(**{metric: ramp(p50, p50 + 5)}, spread=spread))
    if tighten == 0:
        assert lower_limit.score == default_limit.score
    assert lower_limit.score >= default_limit.score or getattr(Limits(), _limit_name(metric)) - tighten < 1.0


def _limit_name(metric: str) -> str:
    return metric


@settings(max_examples=200, deadline=None)
@given(current=st.floats(0, 94.9), step=st.integers(1, 12))
def test_any_median_crossing_within_an_hour_is_critical(current, step):
    path = np.concatenate([np.full(step - 1, min(current, 90.0)), np.full(96 - step + 1, 96.0)])
    assert _assess({"mem_pct": current}, make_forecast(mem_pct=path)).level is AlertLevel.CRITICAL


@settings(max_examples=200, deadline=None)
@given(step=st.integers(13, 96))
def test_any_median_crossing_within_eight_hours_is_at_least_warning(step):
    path = np.concatenate([np.full(step - 1, 60.0), np.full(96 - step + 1, 96.0)])
    assert _assess(forecast=make_forecast(disk_pct=path)).level >= AlertLevel.WARNING


@settings(max_examples=200, deadline=None)
@given(limit=st.floats(0, 100), p50=st.floats(0, 100), lo=st.floats(0, 20), hi=st.floats(0, 20))
def test_exceedance_probability_matches_the_quantiles_and_falls_with_the_limit(limit, p50, lo, hi):
    probs = exceedance_probability(np.array([p50 - lo]), np.array([p50]), np.array([p50 + hi]), limit)
    higher = exceedance_probability(np.array([p50 - lo]), np.array([p50]), np.array([p50 + hi]), limit + 1)
    assert 0.0 <= probs[0] <= 1.0 and higher[0] <= probs[0] + 1e-12
    if hi > 1e-6:
        at_p90 = exceedance_probability(np.array([p50 - lo]), np.array([p50]), np.array([p50 + hi]), p50 + hi)
        assert at_p90[0] == pytest.approx(0.1, abs=1e-6)


def test_fleet_summary_counts_levels_and_combines_probabilities():
    calm = _assess(forecast=make_forecast())
    hot = _assess({"cpu_pct": 99.0})
    summary = summarize([calm, calm, hot])
    assert (summary.total_servers, summary.critical, summary.healthy) == (3, 1, 2)
    assert summary.prob_30m == 1.0
    assert summary.fleet_health == pytest.approx(100 - (calm.score * 2 + hot.score) / 3, abs=0.05)
    assert summarize([]).fleet_health == 100.0


@pytest.mark.parametrize(("minutes", "text"), [(45, "45 minutes"), (60, "1 hour"), (135, "2 hours 15 minutes"),
                                                 (5, "5 minutes"), (1, "1 minute")])
def test_durations_read_like_the_reference(minutes, text):
    assert format_duration(minutes) == text


@settings(max_examples=60, deadline=None)
@given(start=st.floats(20.0, 90.0), minutes=st.floats(5.0, 475.0))
def test_time_to_issue_of_a_line_is_its_crossing_time(start, minutes):
    """A median rising in a straight line to the 95 % limit at t minutes gives a time to issue of ≈ t."""
    steps = np.arange(1, 97) * 5.0
    line = start + (95.0 - start) * steps / minutes
    result = _assess({"mem_pct": start}, make_forecast(mem_pct=line, spread=1.0))
    assert result.time_to_issue_possible is False and result.issue_metric == "mem_pct"
    assert minutes - 1e-6 <= result.time_to_issue_minutes < minutes + 5.0 + 1e-6


@settings(max_examples=40, deadline=None)
@given(minutes=st.floats(5.0, 475.0))
def test_time_to_issue_from_the_band_alone_is_possible(minutes):
    """A flat median below the limit whose p90 rises to it at t minutes: "possible in ~t"."""
    steps = np.arange(1, 97) * 5.0
    spread = 10.0 * steps / minutes  # p90 = 40 + 10·k/t reaches the 50 % swap limit at t
    forecast = make_forecast(swap_pct=40.0)
    values = dict(forecast.values)
    values["swap_pct"] = np.stack([40.0 - spread, np.full(96, 40.0), 40.0 + spread], axis=1)
    result = _assess(forecast=attrs.evolve(forecast, values=values))
    assert result.time_to_issue_possible and result.issue_metric == "swap_pct"
    assert minutes - 1e-6 <= result.time_to_issue_minutes < minutes + 5.0 + 1e-6


def test_a_metric_over_its_limit_now_has_no_time_to_issue_but_another_metrics_crossing_has():
    rising = np.linspace(60, 100, 96)
    result = _assess({"cpu_pct": 99.0, "mem_pct": 60.0}, make_forecast(mem_pct=rising))
    assert result.driver.metric == "cpu_pct" and result.driver.over_now
    assert result.issue_metric == "mem_pct" and result.time_to_issue_minutes is not None


def _steady_window(mem: float, steps: int = 3 * 288, leak_to: float | None = None):
    from argus.domain.metrics import METRIC_FIELDS, MetricsWindow
    from argus.testing import make_record

    row = np.array(make_record("s1", 0).values, dtype=np.float32)
    values = np.tile(row, (steps, 1))
    mem_col = METRIC_FIELDS.index("mem_used_pct")
    values[:, mem_col] = mem + 0.3 * np.sin(np.arange(steps))
    if leak_to is not None:  # the last 8 hours climb to leak_to
        values[-96:, mem_col] = np.linspace(mem, leak_to, 96)
    ts = 1_700_000_000 + 300 * np.arange(steps, dtype=np.int64)
    return MetricsWindow.from_arrays("s1", steps, ts, values, np.zeros(steps, dtype=np.int8))


def test_a_server_whose_normal_is_high_is_not_near_critical_every_tick_under_the_default_policy():
    from argus.domain.profiles import LimitPolicy
    from argus.domain.risk import current_values, recent_means, server_limits

    window = _steady_window(88.0)
    now = current_values(window)
    flat = make_forecast("s1", mem_pct=88.0, spread=1.0)
    absolute_limits, none = server_limits(LIMITS, LimitPolicy(mode="absolute"), window)
    both_limits, normal = server_limits(LIMITS, LimitPolicy(), window)
    assert none == {} and both_limits == absolute_limits == LIMITS  # "both" keeps the incident limit
    assert 88.0 < normal["mem_pct"] < 89.0
    absolute = assess("s1", "generic", LIMITS, now, recent_means(window), flat)
    relative = assess("s1", "generic", LIMITS, now, recent_means(window), flat, normal=normal)
    assert absolute.level is AlertLevel.DEGRADED  # 88 of 95 counts as elevated from half the limit
    assert relative.level is AlertLevel.HEALTHY and relative.score < absolute.score
    # ... but its limit is still one: a forecast crossing 95 warns whatever the normal
    crossing = make_forecast("s1", mem_pct=np.linspace(88, 97, 96), spread=1.0)
    assert assess("s1", "generic", LIMITS, now, now, crossing, normal=normal).level >= AlertLevel.WARNING


def test_a_leak_of_the_last_hours_does_not_become_the_servers_normal():
    from argus.domain.profiles import LimitPolicy
    from argus.domain.risk import server_limits

    _, normal = server_limits(LIMITS, LimitPolicy(), _steady_window(60.0, leak_to=92.0))
    assert normal["mem_pct"] < 61.0


def test_learned_limits_sit_a_margin_above_the_servers_normal_and_never_below_half_the_absolute_one():
    from argus.domain.profiles import LimitPolicy
    from argus.domain.risk import server_limits

    limits, normal = server_limits(LIMITS, LimitPolicy(mode="learned", margin_points=5.0), _steady_window(70.0))
    assert limits.mem_pct == pytest.approx(normal["mem_pct"] + 5.0)
    assert limits.cpu_pct >= 0.5 * LIMITS.cpu_pct
    short, nothing = server_limits(LIMITS, LimitPolicy(mode="learned"), _steady_window(70.0, steps=300))
    assert short == LIMITS and nothing == {}  # too little history: the absolute limits


def test_the_predictor_recomputes_a_servers_normal_ceilings_once_per_hour_of_its_data():
    from argus.domain.metrics import METRIC_FIELDS, MetricsWindow
    from argus.domain.profiles import ProfileResolver
    from argus.domain.ticks import Predictor
    from argus.testing import make_record

    row = np.array(make_record("s1", 0).values, dtype=np.float32)
    mem = METRIC_FIELDS.index("mem_used_pct")

    def window(steps: int, level: float) -> MetricsWindow:
        values = np.tile(row, (steps, 1))
        values[:, mem] = level
        ts = 1_700_000_000 + 300 * np.arange(steps, dtype=np.int64)
        return MetricsWindow.from_arrays("s1", steps, ts, values, np.zeros(steps, dtype=np.int8))

    predictor = Predictor(forecaster=None, profiles=ProfileResolver())
    _, first = predictor.limits_for(window(3 * 288, 80.0))
    _, same_hour = predictor.limits_for(window(3 * 288 + 6, 60.0))  # 30 minutes later: the cached ceilings
    _, next_hour = predictor.limits_for(window(3 * 288 + 12, 60.0))  # an hour later: recomputed
    assert first["mem_pct"] == same_hour["mem_pct"] == pytest.approx(80.0)
    assert next_hour["mem_pct"] == pytest.approx(60.0)
