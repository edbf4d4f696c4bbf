"""Hostile values at the feed and in storage: the API refuses them, the engine's windows stay physical."""

from __future__ import annotations

import gc
import logging
import math
import secrets
import tracemalloc
from datetime import UTC, timedelta

import attrs
import numpy as np
import pytest

from argus.adapters.http.schemas import RequestValidationError, UnknownFieldReport, parse_feed
from argus.domain.alerts import AlertLevel
from argus.domain.ingestion import AcceptedTimes
from argus.domain.metrics import FIELDS, METRIC_FIELDS, FleetWindows
from argus.domain.profiles import ProfileResolver
from argus.domain.services import WindowKeeper
from argus.domain.ticks import Predictor, finite_forecasts
from argus.testing import BASE_TIME, FixedForecaster, InMemoryMetricsStore, make_forecast, make_record, wire_record

STEP = timedelta(minutes=5)
YEAR_2099 = BASE_TIME.replace(year=2099)


def _problems(records: list[dict], **kwargs) -> list[dict]:
    with pytest.raises(RequestValidationError) as caught:
        parse_feed({"records": records}, 1000, **kwargs)
    return caught.value.details


# --- 2. unknown field names: counted, never stored; a sample logged at a limited rate --------------------------


def test_fresh_unknown_field_names_on_every_request_neither_grow_memory_nor_flood_the_log(caplog):
    def with_fresh_names() -> dict:
        names = {f"x_{secrets.token_hex(8)}_{'y' * 2000}": 1 for _ in range(20)}  # 40 kB of new names
        return {"records": [{**wire_record("ppdb001"), **names}]}

    parse_feed(with_fresh_names(), 10)  # warm up the converter's caches before measuring
    caplog.clear()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        with caplog.at_level(logging.WARNING, logger="argus.adapters.http.schemas"):
            for _ in range(60):  # 2.4 MB of names in all
                assert len(parse_feed(with_fresh_names(), 10)) == 1
        gc.collect()
        kept = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    finally:
        tracemalloc.stop()
    assert kept < 300_000, f"{kept} bytes kept after 60 requests of fresh unknown names"
    lines = [r for r in caplog.records if "unknown record field" in r.getMessage()]
    assert len(lines) <= 1  # at most one report a minute
    assert all(len(r.getMessage()) < 1000 for r in lines)  # names are cut short in the sample


def test_unknown_field_report_keeps_a_bounded_sample_and_reports_once_per_interval(caplog):
    now = [0.0]
    report = UnknownFieldReport(interval_s=60.0, sample_size=3, max_name_chars=10, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="argus.adapters.http.schemas"):
        for i in range(600):  # ten minutes of a request a second, each with 50 new names
            report.note([{f"name{i}_{j}_{'z' * 100}": 0 for j in range(50)}])
            assert len(report._sample) <= 3 and all(len(n) <= 10 for n in report._sample)
            now[0] += 1.0
    assert report.total == 600 * 50
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 10  # at 0 s, 60 s, ... 540 s
    assert "'name0_0_zz'" in lines[0] and "50 unknown field(s)" in lines[0]
    assert "3000 unknown field(s)" in lines[1]  # 60 requests of 50, counted while silent


def test_known_fields_alone_are_not_reported(caplog):
    report = UnknownFieldReport(clock=lambda: 0.0)
    with caplog.at_level(logging.WARNING, logger="argus.adapters.http.schemas"):
        report.note([wire_record("ppdb001"), "not a record", {"cpu_user_pct": 1}])
    assert report.total == 0 and not caplog.records


# --- 3. timestamps: within the clock skew and the records retention ---------------------------------------------


def test_timestamps_beyond_the_clock_skew_or_older_than_the_retention_are_listed_with_the_other_problems():
    now = BASE_TIME
    accepted = AcceptedTimes(max_clock_skew_s=300, retention_days=35)

    def at(moment) -> dict:
        return wire_record("ppdb001", timestamp=moment.replace(tzinfo=None).isoformat())

    ok = [at(now + timedelta(seconds=299)), at(now - timedelta(days=34, hours=23))]
    assert len(parse_feed({"records": ok}, 10, accepted, now=now)) == 2
    bad = [at(now + timedelta(seconds=301)), at(YEAR_2099), at(now - timedelta(days=35, seconds=1)),
           {**at(now), "cpu_user_pct": 101}]
    problems = _problems(bad, accepted=accepted, now=now)
    assert [(p["loc"][2:], p["type"]) for p in problems] == [
        ([0, "timestamp"], "value_error.datetime.future"),
        ([1, "timestamp"], "value_error.datetime.future"),
        ([2, "timestamp"], "value_error.datetime.too_old"),
        ([3, "cpu_user_pct"], "value_error.number.not_le"),
    ]
    assert "300 s ahead of the server's clock (2025-01-15T10:00:00 UTC)" in problems[0]["msg"]
    assert "35 days: before 2024-12-11T10:00:00 UTC" in problems[2]["msg"]


def test_a_timestamp_with_a_zone_is_compared_in_utc():
    now = BASE_TIME
    ahead = (now + timedelta(minutes=4)).astimezone(UTC).replace(tzinfo=None).isoformat() + "+02:00"  # 2 h earlier
    assert parse_feed({"records": [wire_record(timestamp=ahead)]}, 10, AcceptedTimes(), now=now)


# --- 4. physical upper bounds of every rate and count ------------------------------------------------------------


@pytest.mark.parametrize(("field", "too_big"), [
    ("net_in_mb_s", 1e308), ("net_out_mb_s", 1_000_001.0), ("load_average", 5e6),
    ("back_close_wait", 10_000_001), ("front_close_wait", 1_000_000_000), ("uptime_days", 366),
])
def test_rates_and_counts_above_their_physical_bound_are_refused(field, too_big):
    bound = next(f.high for f in FIELDS if f.name == field)
    at_bound = int(bound) if isinstance(too_big, int) else bound
    assert parse_feed({"records": [wire_record(**{field: at_bound})]}, 10)[0].value(field) == bound
    [problem] = _problems([wire_record(**{field: too_big})])
    assert problem["loc"] == ["body", "records", 0, field] and problem["type"] == "value_error.number.not_le"
    assert problem["msg"] == f"ensure this value is less than or equal to {int(bound)}"


def test_every_field_of_the_table_has_a_finite_bound_a_float32_can_hold():
    assert [f.name for f in FIELDS] == list(METRIC_FIELDS)
    assert all(0 <= f.low < f.high < np.finfo(np.float32).max / 1e6 for f in FIELDS)


# --- 5. server names: the whole name, ASCII only -------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "ppdb001\n", "ppdb001\r\n", "ppdb001\x00", "pp\tdb001", "ppdb\x7f001", "ppdb001 ",
    "\u0440\u0440db001",  # Cyrillic "рр"
    "\uff50\uff50\uff44\uff42\uff10\uff10\uff11",  # fullwidth "ｐｐｄｂ００１" (NFKC would turn it into ppdb001)
    "ppdb001\u200b",  # zero-width space
    "ppdb\u0661\u0662\u0663",  # Arabic-Indic digits
    "ppdb00\u0131",  # dotless i
])
def test_server_names_with_control_characters_or_lookalike_letters_are_refused(name):
    [problem] = _problems([wire_record(server_name=name)])
    assert problem["loc"] == ["body", "records", 0, "server_name"] and problem["type"] == "value_error.str.regex"


# --- the engine's windows: physical values, no far-future step ---------------------------------------------------


def _record_at(server: str, step: int, **values):
    return make_record(server, step, **values)


def test_a_far_future_record_stays_out_of_the_window_and_the_server_keeps_its_forecasts():
    store = InMemoryMetricsStore()
    store.write_batch([_record_at("ppdb001", s) for s in range(24)])
    store.write_batch([attrs.evolve(_record_at("ppdb001", 24), timestamp=YEAR_2099)])  # stored before the API refused it
    clock = [(BASE_TIME + 24 * STEP).timestamp()]
    keeper = WindowKeeper(store, capacity=100, clock=lambda: clock[0])
    keeper.rebuild()
    window = keeper.windows.get("ppdb001")
    assert len(window) == 24 and window.last_epoch_s == _record_at("ppdb001", 23).epoch_s

    store.write_batch([_record_at("ppdb001", 24)])
    store.write_batch([attrs.evolve(_record_at("ppdb001", 25), timestamp=YEAR_2099 + STEP)])  # arrives while running
    keeper.poll()
    assert window.last_epoch_s == _record_at("ppdb001", 24).epoch_s
    assert keeper.windows.future_skipped >= 2  # counted (the batches rebuild re-reads count again)

    predictor = Predictor(FixedForecaster(min_history_steps=12), ProfileResolver())
    forecast = predictor.tick(keeper.windows, BASE_TIME).forecasts["ppdb001"]
    assert forecast.timestamps[0] == _record_at("ppdb001", 25).epoch_s  # right after the real last step


def test_a_record_within_the_clock_skew_is_placed():
    windows = FleetWindows(capacity=10)
    latest = _record_at("a", 1).epoch_s
    assert windows.add([_record_at("a", 0), _record_at("a", 1), _record_at("a", 2)], not_after_epoch_s=latest) == 2
    assert windows.add([_record_at("a", 2)], not_after_epoch_s=latest + 300) == 1


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # the in-memory store's float32 copy
def test_stored_extreme_values_are_clipped_to_the_field_table_and_nan_rows_are_gaps():
    store = InMemoryMetricsStore()
    store.write_batch([_record_at("a", 0, net_in_mb_s=1e308, load_average=math.inf, back_close_wait=1e300)])
    store.write_batch([_record_at("a", 1, mem_used_pct=math.nan)])
    keeper = WindowKeeper(store, capacity=10)
    keeper.rebuild()
    store.write_batch([_record_at("a", 2, net_out_mb_s=1e308, cpu_idle_pct=-1e308), _record_at("a", 3, load_average=math.nan)])
    keeper.poll()
    window = keeper.windows.get("a")
    assert window.timestamps.tolist() == [_record_at("a", s).epoch_s for s in (0, 2)]
    assert np.isfinite(window.values).all()
    high = {f.name: f.high for f in FIELDS}
    assert window.column("net_in_mb_s")[0] == high["net_in_mb_s"] and window.column("load_average")[0] == high["load_average"]
    assert window.column("back_close_wait")[0] == high["back_close_wait"]
    assert window.column("net_out_mb_s")[1] == high["net_out_mb_s"] and window.column("cpu_idle_pct")[1] == 0.0


def _window_of(store: InMemoryMetricsStore, capacity: int = 100) -> FleetWindows:
    keeper = WindowKeeper(store, capacity=capacity)
    keeper.rebuild()
    return keeper.windows


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
def test_extreme_stored_values_give_finite_scores_and_the_alert_agrees_with_the_prediction():
    store = InMemoryMetricsStore()
    for server in ("ppdb001", "ppweb002"):
        store.write_batch([_record_at(server, s) for s in range(20)])
    store.write_batch([_record_at("ppdb001", s, net_in_mb_s=1e308, load_average=1e308) for s in range(20, 24)])
    windows = _window_of(store)
    predictor = Predictor(FixedForecaster(min_history_steps=12), ProfileResolver())
    result = predictor.tick(windows, BASE_TIME)
    by_name = {a.server_name: a for a in result.assessments}
    assert all(math.isfinite(a.score) and math.isfinite(a.prob_8h) for a in result.assessments)
    summary = result.summary
    assert all(math.isfinite(x) for x in (summary.prob_8h, summary.expected_incidents_8h, summary.fleet_health))
    assert by_name["ppdb001"].level is AlertLevel.CRITICAL  # load over its limit now (clipped, not infinite)
    assert "inf" not in by_name["ppdb001"].message
    alerts = {a.server_name: a.level for a in result.active}
    assert {n: alerts.get(n, AlertLevel.HEALTHY) for n in by_name} == {n: a.level for n, a in by_name.items()}


class _NanForecaster(FixedForecaster):
    """A model that overflowed: every forecast is NaN."""

    def forecast(self, windows, profiles):
        out = super().forecast(windows, profiles)
        return {name: attrs.evolve(f, values={t: np.full_like(v, np.nan) for t, v in f.values.items()})
                for name, f in out.items()}


def test_a_non_finite_forecast_is_dropped_and_the_score_stays_a_number():
    store = InMemoryMetricsStore()
    store.write_batch([_record_at("ppdb001", s, mem_used_pct=99.5) for s in range(20)])
    windows = _window_of(store)
    predictor = Predictor(_NanForecaster(min_history_steps=12), ProfileResolver())
    for tick in range(3):
        result = predictor.tick(windows, BASE_TIME + tick * STEP)
        [assessment] = result.assessments
        assert "ppdb001" not in result.forecasts
        assert math.isfinite(assessment.score) and assessment.level is AlertLevel.CRITICAL  # memory over its limit now
        assert [a.level for a in result.active] == [assessment.level]


def test_only_finite_forecasts_are_kept():
    good, bad = make_forecast("a"), make_forecast("b")
    bad = attrs.evolve(bad, values={**bad.values, "cpu_pct": np.full_like(bad.values["cpu_pct"], np.inf)})
    assert list(finite_forecasts({"a": good, "b": bad})) == ["a"]
