"""Explanation values: stars, normalisation, attention phrases and focus, counterfactual scenarios."""

from __future__ import annotations

import numpy as np

from argus.domain.explanation import (
    EFFECT_STEPS,
    SCENARIOS,
    analysis_sentence,
    focus_periods,
    impact_text,
    period_phrase,
    rank_importances,
    relevant_scenarios,
    stars,
)
from argus.domain.metrics import FIELD_INDEX, METRIC_FIELDS

HOUR = 3600


def test_stars_round_half_up_and_any_weight_gets_one_star():
    assert stars(1.0) == "★★★★★"
    assert stars(0.62) == "★★★☆☆"
    assert stars(0.34) == "★★☆☆☆"
    assert stars(0.03) == "★☆☆☆☆"
    assert stars(0.0) == "☆☆☆☆☆"


def test_importances_are_sorted_by_magnitude_and_normalised_to_the_largest():
    ranked = rank_importances({"cpu_pct": -2.0, "mem_pct": 8.0, "swap_pct": 0.5, "load": 1.0}, top=3)
    assert [f.feature for f in ranked] == ["mem_pct", "cpu_pct", "load"]
    assert [f.importance for f in ranked] == [1.0, 0.25, 0.125]
    assert ranked[1].value == -2.0  # the sign is kept: cpu pushed the output down
    assert abs(sum(f.share for f in rank_importances({"a": 1.0, "b": 3.0}, top=2)) - 1.0) < 1e-9


def test_periods_are_worded_by_age():
    assert period_phrase(0, 25 * 60) == "Last 30 minutes"
    assert period_phrase(30 * 60, 55 * 60) == "45 minutes ago"
    assert period_phrase(2 * HOUR - 600, 2 * HOUR + 900) == "2 hours ago"
    assert period_phrase(int(23.6 * HOUR), int(24 * HOUR)) == "Yesterday at this time"


def test_focus_periods_follow_the_attention_and_stay_inside_the_window():
    steps = 288
    ts = 1_736_899_200 + 300 * np.arange(steps)
    attention = np.full(steps, 1.0)
    attention[-6:] = 40.0  # the last 30 minutes
    attention[:6] = 20.0  # the same time yesterday (the oldest steps of a one-day window)
    attention /= attention.sum()
    periods = focus_periods(attention, ts)
    assert [p.phrase for p in periods] == ["Last 30 minutes", "Yesterday at this time"]
    assert periods[0].latest and periods[0].attention > periods[1].attention
    assert all(ts[0] <= p.start_epoch_s <= p.end_epoch_s <= ts[-1] for p in periods)


def test_even_attention_still_names_one_period():
    ts = 1_736_899_200 + 300 * np.arange(48)
    assert len(focus_periods(np.full(48, 1 / 48), ts)) == 1


def test_the_analysis_says_what_the_top_feature_did_where_the_model_looked():
    ts = 1_736_899_200 + 300 * np.arange(48)
    memory = np.full(48, 60.0)
    memory[-6:] = [70.0, 75.0, 80.0, 84.0, 88.0, 90.0]
    attention = np.full(48, 1.0)
    attention[-6:] = 30.0
    (period, *_) = focus_periods(attention / attention.sum(), ts)
    sentence = analysis_sentence(period, "mem_pct", memory, ts)
    assert sentence == "Model focused on recent memory spike (last 30 minutes: 70.0% → 90.0%)"


def _rows(n=300):
    values = np.zeros((n, len(METRIC_FIELDS)))
    values[:, FIELD_INDEX["mem_used_pct"]] = np.linspace(50.0, 90.0, n)
    values[:, FIELD_INDEX["swap_used_pct"]] = 20.0
    values[:, FIELD_INDEX["back_close_wait"]] = 150.0
    values[:, FIELD_INDEX["cpu_idle_pct"]] = 40.0
    values[:, FIELD_INDEX["cpu_user_pct"]] = 50.0
    values[:, FIELD_INDEX["uptime_days"]] = 30.0
    return values


def test_reduce_memory_rewrites_only_the_last_hour_of_memory():
    values = _rows()
    changed = next(s for s in SCENARIOS if s.id == "reduce_memory").apply(values)
    mem = FIELD_INDEX["mem_used_pct"]
    np.testing.assert_allclose(changed[-EFFECT_STEPS:, mem], 0.85 * values[-EFFECT_STEPS:, mem])
    np.testing.assert_array_equal(np.delete(changed, mem, axis=1), np.delete(values, mem, axis=1))
    np.testing.assert_array_equal(changed[:-EFFECT_STEPS], values[:-EFFECT_STEPS])


def test_restart_acts_through_model_inputs_swap_memory_and_close_wait():
    values = _rows()
    changed = next(s for s in SCENARIOS if s.id == "restart").apply(values)
    tail = changed[-EFFECT_STEPS:]
    assert (tail[:, FIELD_INDEX["swap_used_pct"]] == 0).all() and (tail[:, FIELD_INDEX["back_close_wait"]] == 0).all()
    assert tail[:, FIELD_INDEX["mem_used_pct"]].max() <= np.quantile(values[-288:, FIELD_INDEX["mem_used_pct"]], 0.05)


def test_shedding_cpu_keeps_idle_and_busy_consistent():
    values = _rows()
    changed = next(s for s in SCENARIOS if s.id == "shed_cpu").apply(values)
    assert np.allclose(100 - changed[-1, FIELD_INDEX["cpu_idle_pct"]], 0.7 * 60.0)


def test_only_scenarios_tied_to_the_top_features_or_the_driver_are_relevant():
    ids = [s.id for s in relevant_scenarios(["mem_pct"])]
    assert ids == ["reduce_memory", "restart"]
    assert "close_connections" in [s.id for s in relevant_scenarios([], driver="close_wait")]


def test_impact_is_worded_from_the_two_scores():
    assert impact_text(72.5, 45.2) == "Risk drops from 72.5 to 45.2"
    assert impact_text(72.5, 72.5) == "Risk stays at 72.5"
    assert impact_text(40.0, 41.0) == "Risk rises from 40.0 to 41.0"
