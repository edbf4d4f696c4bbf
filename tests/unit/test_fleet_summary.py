"""The fleet summary: counts per level, expected incidents and servers above 50 %, next to P(at least one)."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from argus.domain.profiles import Limits
from argus.domain.risk import RiskAssessment, assess, summarize
from argus.testing import make_forecast

LIMITS = Limits(cpu_pct=95, mem_pct=95, swap_pct=50, iowait_pct=30, disk_pct=90, load=12)
CALM = {"cpu_pct": 30.0, "mem_pct": 50.0, "swap_pct": 0.0, "iowait_pct": 1.0, "disk_pct": 40.0, "load": 1.0,
        "close_wait": 3.0}
BASE = assess("ppdb001", "database", LIMITS, CALM, CALM, make_forecast())


def _with(prob_30m: float, prob_8h: float) -> RiskAssessment:
    return attrs.evolve(BASE, prob_30m=prob_30m, prob_8h=prob_8h)


def test_expected_incidents_are_the_sum_of_the_servers_probabilities():
    summary = summarize([_with(0.1, 0.3), _with(0.2, 0.9), _with(0.05, 0.85), _with(0.0, 0.0)])
    assert summary.expected_incidents_30m == 0.35
    assert summary.expected_incidents_8h == 2.05
    assert (summary.servers_above_50pct_30m, summary.servers_above_50pct_8h) == (0, 2)


def test_one_critical_server_makes_p_at_least_one_certain_but_expects_one_incident():
    summary = summarize([_with(1.0, 1.0)] + [_with(0.001, 0.004)] * 44)
    assert (summary.prob_30m, summary.prob_8h) == (1.0, 1.0)  # what the header used to show: 100 %, 100 %
    assert (summary.expected_incidents_30m, summary.expected_incidents_8h) == (1.04, 1.18)
    assert (summary.servers_above_50pct_30m, summary.servers_above_50pct_8h) == (1, 1)


def test_above_50pct_counts_only_servers_strictly_over_one_half():
    summary = summarize([_with(0.5, 0.5), _with(0.5001, 0.51)])
    assert (summary.servers_above_50pct_30m, summary.servers_above_50pct_8h) == (1, 1)


def test_an_empty_fleet_expects_nothing():
    summary = summarize([])
    assert (summary.total_servers, summary.prob_30m, summary.prob_8h) == (0, 0.0, 0.0)
    assert (summary.expected_incidents_30m, summary.expected_incidents_8h) == (0.0, 0.0)
    assert (summary.servers_above_50pct_30m, summary.servers_above_50pct_8h) == (0, 0)
    assert summary.fleet_health == 100.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), max_size=60))
def test_expected_counts_bound_the_probability_of_at_least_one(probs):
    summary = summarize([_with(p30, p8h) for p30, p8h in probs])
    for expected, at_least_one, above in (
        (summary.expected_incidents_30m, summary.prob_30m, summary.servers_above_50pct_30m),
        (summary.expected_incidents_8h, summary.prob_8h, summary.servers_above_50pct_8h),
    ):
        assert expected >= at_least_one - 0.01  # P(N ≥ 1) ≤ E[N], up to rounding
        assert expected >= 0.5 * above - 0.01 and 0 <= above <= summary.total_servers
        assert expected == pytest.approx(round(expected, 2))
