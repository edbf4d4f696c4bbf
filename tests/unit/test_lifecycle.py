"""Alert lifecycle: one alert per server, transitions as events, hysteresis, maintenance, restarts."""

from __future__ import annotations

from datetime import timedelta

from argus.domain.alerts import AlertLevel, EventType
from argus.domain.lifecycle import AlertTracker
from argus.domain.profiles import Limits
from argus.domain.risk import assess
from argus.testing import BASE_TIME

CALM = {"cpu_pct": 30.0, "mem_pct": 50.0, "swap_pct": 0.0, "iowait_pct": 1.0, "disk_pct": 40.0, "load": 1.0}


def _with_cpu(cpu: float, maintenance: bool = False, server: str = "ppweb001"):
    """An assessment whose score follows ``cpu`` (no forecast: current-state only)."""
    now = {**CALM, "cpu_pct": cpu}
    return assess(server, "web_api", Limits(cpu_pct=100.0), now, now, None, maintenance=maintenance)


def _run(tracker, cpus, start=0, **kwargs):
    events = []
    for i, cpu in enumerate(cpus):
        events += tracker.update([_with_cpu(cpu, **kwargs)], BASE_TIME + timedelta(minutes=5 * (start + i)))
    return events


def test_a_rising_server_is_raised_then_escalated_once_per_level():
    tracker = AlertTracker()
    events = _run(tracker, [40, 99, 99.5, 99.6, 100])  # elevated, then over the 100 limit
    kinds = [(e.event_type, e.previous_level, e.new_level) for e in events]
    assert kinds[0] == (EventType.RAISED, AlertLevel.HEALTHY, AlertLevel.DEGRADED)
    assert kinds[-1] == (EventType.ESCALATED, AlertLevel.DEGRADED, AlertLevel.CRITICAL)
    assert len(events) == 2
    (active,) = tracker.active()
    assert active.level is AlertLevel.CRITICAL and active.raised_at == events[0].at


def test_a_score_hovering_at_a_boundary_does_not_flap():
    tracker = AlertTracker(margin=5.0, calm_ticks=3)
    scores = [_with_cpu(c).score for c in (91.2, 90.6)]
    assert scores[0] >= 50 > scores[1]  # straddles degraded/healthy
    events = _run(tracker, [91.2, 90.6, 91.2, 90.6, 91.2, 90.6])
    assert [e.event_type for e in events] == [EventType.RAISED]


def test_an_alert_resolves_after_calm_ticks_with_its_duration():
    tracker = AlertTracker(calm_ticks=3)
    events = _run(tracker, [100, 100, 30, 30, 30])
    assert [e.event_type for e in events] == [EventType.RAISED, EventType.RESOLVED]
    resolved = events[-1]
    assert resolved.at - resolved.raised_at == timedelta(minutes=20)
    assert tracker.active() == []


def test_de_escalation_steps_down_without_closing():
    tracker = AlertTracker(calm_ticks=2)
    events = _run(tracker, [100, 97.5, 97.5])  # critical, then degraded-ish scores
    assert [e.event_type for e in events] == [EventType.RAISED, EventType.DE_ESCALATED]
    assert events[-1].new_level is AlertLevel.DEGRADED


def test_maintenance_raises_nothing_and_closes_an_open_alert():
    tracker = AlertTracker()
    assert _run(tracker, [100, 100], maintenance=True) == []
    tracker = AlertTracker()
    events = _run(tracker, [100]) + _run(tracker, [100], start=1, maintenance=True)
    assert [e.event_type for e in events] == [EventType.RAISED, EventType.RESOLVED]
    assert events[-1].message == "Server in maintenance; alert closed"


def test_restored_alerts_continue_without_a_new_raise():
    first = AlertTracker()
    _run(first, [100])
    second = AlertTracker()
    second.restore(first.active())
    assert _run(second, [100], start=1) == []
    assert second.active()[0].raised_at == BASE_TIME


def test_resolution_says_whether_a_limit_was_actually_breached_and_the_peak_level():
    tracker = AlertTracker(calm_ticks=1)
    prevented = _run(tracker, [99.5, 30])  # elevated (degraded), never over the 100 limit
    assert prevented[-1].event_type is EventType.RESOLVED and prevented[-1].breached is False
    tracker = AlertTracker(calm_ticks=1)
    breached = _run(tracker, [99.5, 100, 99.5, 30, 30])
    assert breached[-1].event_type is EventType.RESOLVED
    assert breached[-1].breached is True and breached[-1].peak_level is AlertLevel.CRITICAL
