"""History over real ticks: the AlertTracker and risk scoring drive SqlMetricsStore.record_tick, and
SqlHistoryStore reads back events, durations, time in level and incidents prevented (SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from argus.adapters.sql.database import create_db_engine, migrate
from argus.adapters.sql.history import SqlHistoryStore
from argus.adapters.sql.store import SqlMetricsStore
from argus.domain.history import RetentionSweep, Trend, report_server
from argus.domain.lifecycle import AlertTracker
from argus.domain.profiles import Limits
from argus.domain.risk import assess, summarize
from argus.domain.ticks import TickResult
from argus.testing import BASE_TIME, make_forecast, make_record, ramp

CALM = {"cpu_pct": 30.0, "mem_pct": 50.0, "swap_pct": 0.0, "iowait_pct": 1.0, "disk_pct": 40.0, "load": 1.0}
#: p50 memory paths: flat (healthy), crossing 95% in about 4 hours (warning), in 30 minutes (critical).
MEM_PATHS = {
    "healthy": 50.0,
    "warning": np.concatenate([ramp(50, 96, 48), np.full(48, 96.0)]),
    "critical": np.concatenate([ramp(60, 96, 6), np.full(90, 96.0)]),
}
#: ppdb001 goes healthy -> warning -> critical -> warning -> healthy on predictions alone (never over a
#: limit); ppweb002 is over its CPU limit now on ticks 3-4 (a breach); ppweb003 stays calm.
SCRIPT = {
    "ppdb001": ["healthy"] * 2 + ["warning"] * 3 + ["critical"] * 3 + ["warning"] * 3 + ["healthy"] * 5,
    "ppweb002": ["healthy"] * 3 + ["over"] * 2 + ["healthy"] * 11,
    "ppweb003": ["healthy"] * 16,
}
TICKS = 16
STEP = timedelta(minutes=5)


def _assessment(server: str, state: str):
    if state == "over":
        now = {**CALM, "cpu_pct": 99.0}
        return assess(server, "Web API", Limits(), now, now, make_forecast(server))
    return assess(server, "Database", Limits(), CALM, CALM, make_forecast(server, mem_pct=MEM_PATHS[state]))


def _tick(store: SqlMetricsStore, tracker: AlertTracker, at: datetime, assessments) -> TickResult:
    events = tracker.update(assessments, at)
    result = TickResult(
        at=at, model_name="fixed", assessments=assessments, forecasts={}, windows={}, events=events,
        active=tracker.active(), summary=summarize(assessments), servers_warming_up=0, records_in_windows=0,
        min_history_steps=12, duration_s=0.0,
    )
    store.record_tick(result, {})
    return result


def play_script(store: SqlMetricsStore, start: datetime = BASE_TIME) -> list:
    """Record the scripted ticks (5 minutes apart from ``start``); return every alert event."""
    store.write_batch([make_record(server, 0) for server in SCRIPT])
    tracker = AlertTracker()
    events = []
    for i in range(TICKS):
        assessments = [_assessment(server, states[i]) for server, states in SCRIPT.items()]
        events += _tick(store, tracker, start + i * STEP, assessments).events
    return events


def at(i: int) -> float:
    return (BASE_TIME + i * STEP).timestamp()


END = at(TICKS)  # the range ends 5 minutes after the last tick


@pytest.fixture
def stores(database_url):
    engine = create_db_engine(database_url)
    migrate(engine)
    store = SqlMetricsStore(engine)
    play_script(store)
    yield store, SqlHistoryStore(engine)
    engine.dispose()


def test_the_scripted_episode_is_stored_as_four_transitions(stores):
    _, history = stores
    events = list(reversed(history.alert_events(at(0), END, server_name="ppdb001")))
    assert [(e.event_type, e.previous_level, e.new_level) for e in events] == [
        ("raised", "healthy", "warning"), ("escalated", "warning", "critical"),
        ("de-escalated", "critical", "warning"), ("resolved", "warning", "healthy"),
    ]
    assert [e.at_epoch_s for e in events] == [at(2), at(5), at(10), at(13)]
    assert {e.raised_at_epoch_s for e in events} == {at(2)}
    assert {e.resolved_at_epoch_s for e in events} == {at(13)}  # every row of the episode learns it
    assert {e.resolution_duration_minutes for e in events} == {55.0}  # raised 10:10, resolved 11:05
    assert events[-1].peak_level == "critical" and events[-1].breached is False


def test_summary_counts_episodes_by_worst_level_and_only_unbreached_ones_as_prevented(stores):
    _, history = stores
    totals = history.alert_totals(at(0), END)
    assert totals.by_level == {"critical": 2, "warning": 0, "degraded": 0} and totals.total == 2
    assert totals.avg_resolution_minutes == pytest.approx((55.0 + 20.0) / 2)  # ppweb002: 10:15 -> 10:35
    assert totals.incidents_prevented == 1  # ppdb001 peaked critical without a breach; ppweb002 breached
    breached = history.alert_events(at(0), END, server_name="ppweb002")
    assert {e.breached for e in breached if e.event_type == "resolved"} == {True}
    assert history.alert_totals(at(0), END, server_name="ppweb003").total == 0


def test_time_in_level_percentages_and_trend_of_a_server(stores):
    _, history = stores
    series = history.risk_series("ppdb001", at(0), END)
    report = report_server(series, history.alert_totals(at(0), END, "ppdb001").total, at(0), END)
    assert report.samples == TICKS and report.alert_count == 1
    assert report.time_in_warning_pct == pytest.approx(6 / 16 * 100, abs=0.06)  # 6 ticks of 16
    assert report.time_in_critical_pct == pytest.approx(3 / 16 * 100, abs=0.06)
    assert report.max_risk_score == pytest.approx(float(series.scores.max()), abs=0.05) and report.max_risk_score >= 80
    late = history.risk_series("ppdb001", at(5), END)  # critical, warning, then calm: falling
    assert report_server(late, 0, at(5), END).risk_trend is Trend.IMPROVING


def test_time_ranges_cut_events_snapshots_and_risk(stores):
    _, history = stores
    later = history.alert_events(at(8), END, server_name="ppdb001")
    assert [e.event_type for e in later] == ["resolved", "de-escalated"]  # newest first
    totals = history.alert_totals(at(8), END)
    assert totals.total == 0  # nothing was raised or escalated after 10:40 ...
    assert totals.avg_resolution_minutes == 55.0 and totals.incidents_prevented == 1  # ... but one resolved
    assert len(history.fleet_snapshots(at(8), END)) == TICKS - 8
    assert len(history.risk_series("ppweb003", at(6), at(9))) == 4  # both ends inclusive
    assert history.alert_count(at(0), END) == 6 and history.alert_count(at(0), END, "ppweb002") == 2
    assert [e.event_type for e in history.alert_events(at(0), END, limit=2, offset=1)] == ["de-escalated", "resolved"]


def test_environment_snapshots_are_thinned_evenly_keeping_both_ends(stores):
    _, history = stores
    full = history.fleet_snapshots(at(0), END)
    assert [s.total_servers for s in full] == [3] * TICKS
    assert sum(s.critical_count for s in full) == 3 + 2  # ppdb001 on ticks 5-7, ppweb002 on 3-4
    thinned = history.fleet_snapshots(at(0), END, max_points=5)
    assert [s.at_epoch_s for s in thinned] == [full[i].at_epoch_s for i in (0, 4, 8, 11, 15)]
    assert history.fleet_health_avg(at(0), END) == pytest.approx(np.mean([s.fleet_health for s in full]), abs=0.05)
    assert history.fleet_health_avg(END + 1, END + 100) is None


def test_purge_removes_only_rows_older_than_the_cutoff(stores):
    _, history = stores
    deleted = history.purge(at(8))
    assert deleted == {"alert_events": 4, "fleet_snapshots": 8, "server_risk": 24}
    assert [e.event_type for e in history.alert_events(0, END)] == ["resolved", "de-escalated"]
    assert history.alert_totals(0, END).avg_resolution_minutes == 55.0  # raised_at survives on later rows
    assert len(history.fleet_snapshots(0, END)) == TICKS - 8
    assert history.purge(at(8)) == {"alert_events": 0, "fleet_snapshots": 0, "server_risk": 0}


def test_the_retention_sweep_purges_what_is_older_than_the_retention_period(stores):
    _, history = stores
    sweep = RetentionSweep(history, retention_days=1, clock=lambda: at(8) + 86400)
    assert sweep()["fleet_snapshots"] == 8


def test_history_survives_a_restart(stores, database_url):
    _, before = stores
    expected = before.alert_totals(at(0), END)
    engine = create_db_engine(database_url)  # a new process: new engine, new store, same database
    migrate(engine)
    try:
        after = SqlHistoryStore(engine)
        assert after.alert_totals(at(0), END) == expected
        assert len(after.alert_events(at(0), END)) == 6
        assert after.server_known("ppdb001") and not after.server_known("nope")
    finally:
        engine.dispose()


def test_snapshots_store_the_expected_incidents_of_their_tick(stores):
    _, history = stores
    full = history.fleet_snapshots(at(0), END)
    expected = [summarize([_assessment(server, states[i]) for server, states in SCRIPT.items()])
                for i in range(TICKS)]
    assert [(s.expected_incidents_30m, s.expected_incidents_8h) for s in full] == [
        (e.expected_incidents_30m, e.expected_incidents_8h) for e in expected]
    assert max(s.expected_incidents_8h for s in full) >= 1.0  # ppdb001 critical on ticks 5-7


def test_snapshots_recorded_before_revision_0006_have_no_expected_incidents(tmp_path):
    from alembic import command
    from alembic.config import Config

    from argus.adapters.sql import database

    engine = create_db_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(database._MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
        connection.exec_driver_sql(
            "INSERT INTO fleet_snapshots (at, total_servers, critical_count, warning_count, degraded_count, "
            f"healthy_count, fleet_health, prob_30m, prob_8h) VALUES ({at(0)}, 3, 1, 0, 0, 2, 70.0, 0.9, 0.95)")
    migrate(engine)
    (old,) = SqlHistoryStore(engine).fleet_snapshots(at(0), END)
    assert (old.prob_8h, old.expected_incidents_30m, old.expected_incidents_8h) == (0.95, None, None)
    engine.dispose()
