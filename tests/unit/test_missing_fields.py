"""Missing fields: a covariate a source lacks (NaN) keeps its row, is masked for the model and is nobody's driver."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from argus.adapters.http.snapshots import render_predictions
from argus.adapters.structural import histories
from argus.adapters.tft.features import COVARIATES, covariates_from_values, segments_from_arrays
from argus.domain.explanation import SCENARIOS, mask_features, missing_features, relevant_scenarios
from argus.domain.forecast import TARGET_FIELDS
from argus.domain.ingestion import ServerHistory
from argus.domain.metrics import (
    FIELD_INDEX,
    FIELDS,
    METRIC_FIELDS,
    OPTIONAL_FIELDS,
    FleetWindows,
    MetricsWindow,
    measured,
)
from argus.domain.profiles import LimitPolicy, Limits, ProfileResolver
from argus.domain.risk import assess, current_values, recent_means, server_limits
from argus.domain.ticks import Predictor
from argus.testing import BASE_TIME, FixedForecaster, make_forecast, make_record

LACKING = ("java_cpu_pct", "back_close_wait", "front_close_wait")  # Prometheus without the tcpstat collector
STEP = 300


def _lacking(*fields: str, **values: float):
    """Keyword overrides that make ``fields`` missing (NaN) in a ``make_record``."""
    return {**dict.fromkeys(fields, math.nan), **values}


def _window(n: int = 40, lacking: tuple[str, ...] = LACKING, name: str = "prom001") -> MetricsWindow:
    windows = FleetWindows(2880)
    windows.add([make_record(name, i, **_lacking(*lacking)) for i in range(n)])
    return windows.get(name)


def test_only_covariates_may_be_missing_never_a_forecast_target():
    assert OPTIONAL_FIELDS.isdisjoint(TARGET_FIELDS.values())
    assert set(METRIC_FIELDS) - OPTIONAL_FIELDS == set(TARGET_FIELDS.values())
    assert {"java_cpu_pct", "back_close_wait", "front_close_wait"} <= OPTIONAL_FIELDS
    assert not any(f.optional for f in FIELDS if f.name in ("swap_used_pct", "cpu_iowait_pct"))


def test_windows_keep_a_row_that_lacks_a_covariate_and_drop_one_that_lacks_a_target():
    windows = FleetWindows(2880)
    placed = windows.add([
        make_record("a", 0, **_lacking(*LACKING)),
        make_record("a", 1, **_lacking("mem_used_pct")),
        make_record("a", 2, **_lacking("net_in_mb_s", java_cpu_pct=250.0)),
    ])
    window = windows.get("a")
    assert placed == 2 and len(window) == 2
    first, last = window.values
    assert all(math.isnan(first[FIELD_INDEX[f]]) for f in LACKING)  # kept missing, never invented
    assert math.isnan(last[FIELD_INDEX["net_in_mb_s"]]) and last[FIELD_INDEX["java_cpu_pct"]] == 100.0  # clipped


def test_a_rebuilt_window_keeps_rows_lacking_a_covariate():
    values = np.tile(np.array(make_record("a", 0).values, dtype=np.float32), (3, 1))
    values[:, FIELD_INDEX["back_close_wait"]] = np.nan
    values[1, FIELD_INDEX["load_average"]] = np.nan
    assert measured(values).tolist() == [True, False, True]
    windows = FleetWindows(2880)
    history = ServerHistory("a", np.array([0, 300, 600]), np.zeros(3, dtype=np.int8), values)
    assert windows.load(history) == 2
    assert np.isnan(windows.get("a").column("back_close_wait")).all()


def test_a_window_names_the_fields_absent_over_its_last_hour():
    window = _window(30)
    assert window.missing_fields() == list(LACKING)
    window.add(int(BASE_TIME.timestamp()) + 30 * STEP, make_record("prom001", 30).values, "healthy")
    assert window.missing_fields() == []  # the source sends them again
    assert _window(30, lacking=()).missing_fields() == []


def test_a_record_renders_a_missing_field_as_null():
    body = make_record("a", 0, **_lacking("back_close_wait", "java_cpu_pct")).as_dict()
    assert body["back_close_wait"] is None and body["java_cpu_pct"] is None and body["front_close_wait"] == 3
    assert make_record("a", 0, **_lacking("java_cpu_pct")).missing == ("java_cpu_pct",)


# -- the model's inputs --------------------------------------------------------------------------------


def _rows(n: int) -> np.ndarray:
    return np.tile(np.array(make_record("a", 0).values, dtype=np.float64), (n, 1))


def _cov(name: str) -> int:
    return [c[1] for c in COVARIATES].index(name)


def test_a_missing_covariate_is_masked_with_the_last_known_value_then_a_neutral_one():
    values = _rows(6)
    values[:, FIELD_INDEX["java_cpu_pct"]] = [np.nan, 20.0, np.nan, np.nan, 40.0, np.nan]
    values[:, FIELD_INDEX["back_close_wait"]] = np.nan  # never sent
    values[:, FIELD_INDEX["cpu_user_pct"]] = np.nan  # derived from the busy time, as in the training data
    out = covariates_from_values(values)
    assert np.isfinite(out).all()
    # leading gap: neutral (0), never the later value (no look into the future); then the last known
    assert out[:, _cov("java_cpu_pct")].tolist() == pytest.approx([0.0, 0.2, 0.2, 0.2, 0.4, 0.4])
    assert out[:, _cov("back_close_wait")].tolist() == [0.0] * 6
    busy = 100.0 - 64.4 - 2.1 - 8.2  # idle, iowait and system CPU of the typical record
    assert out[:, _cov("cpu_user_pct")] == pytest.approx(np.full(6, busy / 100.0), abs=1e-5)


def test_segments_keep_rows_lacking_covariates_and_feed_the_network_no_nan():
    values = _rows(40)
    for field in LACKING:
        values[:, FIELD_INDEX[field]] = np.nan
    values[10, FIELD_INDEX["cpu_idle_pct"]] = np.nan  # a target missing: that row is a gap
    ts = np.arange(40, dtype=np.int64) * STEP
    (segment,) = segments_from_arrays("a", ts, values, np.zeros(40, dtype=np.int8))
    assert len(segment) == 40  # the one-step gap is bridged, no row lost to a missing covariate
    assert np.isfinite(segment.targets).all() and np.isfinite(segment.covariates).all()


def test_structural_histories_read_only_the_targets():
    hist = histories([_window(20)], 20)
    assert np.isfinite(hist.y).all() and hist.y.shape == (1, 20, 6)


# -- risk ------------------------------------------------------------------------------------------------


LIMITS = Limits(cpu_pct=95, mem_pct=95, swap_pct=50, iowait_pct=30, disk_pct=90, load=12, close_wait=100)


def test_risk_leaves_out_a_metric_the_source_lacks_and_stays_finite():
    window = _window(40)
    current = current_values(window)
    assert math.isnan(current["close_wait"])
    result = assess("prom001", "generic", LIMITS, current, recent_means(window), make_forecast("prom001"))
    assert "close_wait" not in result.metrics and math.isfinite(result.score)
    assert result.driver is not None and result.driver.metric != "close_wait"
    assert all(math.isfinite(p) for p in (result.prob_30m, result.prob_8h))


def test_one_close_wait_count_is_enough_and_a_missing_one_never_hides_it():
    window = _window(40, lacking=("back_close_wait",))
    window.add(int(BASE_TIME.timestamp()) + 40 * STEP,
               make_record("p", 40, **_lacking("back_close_wait", front_close_wait=500)).values, "healthy")
    result = assess("prom001", "generic", LIMITS, current_values(window), recent_means(window), None)
    assert result.driver.metric == "close_wait" and result.driver.over_now


def test_learned_limits_ignore_a_missing_field():
    window = _window(2000)
    policy = LimitPolicy(mode="both")
    _, normal = server_limits(LIMITS, policy, window)
    assert "close_wait" not in normal and all(math.isfinite(v) for v in normal.values())


def test_a_tick_of_servers_lacking_fields_publishes_finite_risk_and_their_missing_fields():
    windows = FleetWindows(2880)
    windows.add([make_record("prom001", i, **_lacking(*LACKING)) for i in range(40)])
    windows.add([make_record("ppdb001", i) for i in range(40)])
    result = Predictor(FixedForecaster(), ProfileResolver()).tick(windows, datetime(2025, 1, 16, tzinfo=UTC))
    body = render_predictions(result)["predictions"]
    assert body["prom001"]["missing_fields"] == list(LACKING) and body["ppdb001"]["missing_fields"] == []
    assert math.isfinite(body["prom001"]["risk_score"]) and body["prom001"]["driver"] != "close_wait"


def test_display_metrics_say_n_a_for_a_network_rate_the_source_lacks():
    windows = FleetWindows(2880)
    windows.add([make_record("a", i, **_lacking("net_in_mb_s", "net_out_mb_s")) for i in range(20)])
    windows.add([make_record("b", i, **_lacking("net_in_mb_s")) for i in range(20)])
    result = Predictor(FixedForecaster(), ProfileResolver()).tick(windows, datetime(2025, 1, 16, tzinfo=UTC))
    body = render_predictions(result)["predictions"]
    assert body["a"]["display_metrics"]["network"] == "n/a"
    assert body["b"]["display_metrics"]["network"] == "8.3 MB/s"  # the outbound rate it has


# -- explanations ----------------------------------------------------------------------------------------


def test_missing_features_are_those_absent_over_the_encoder_or_the_last_hour():
    window = _window(40, lacking=("java_cpu_pct",))
    assert missing_features(window, slice(0, 40)) == ["java_cpu_pct"]
    values = np.array(window.values)
    values[-12:, FIELD_INDEX["net_out_mb_s"]] = np.nan  # gone for the last hour
    gone = MetricsWindow.from_arrays("a", 40, window.timestamps, values, window.statuses)
    assert missing_features(gone, slice(0, 40)) == ["java_cpu_pct", "net_out_mb_s"]


def test_masking_a_feature_uses_the_median_of_the_values_it_has():
    values = _rows(4)
    values[:, FIELD_INDEX["java_cpu_pct"]] = [np.nan, 10.0, 30.0, np.nan]
    values[:, FIELD_INDEX["back_close_wait"]] = np.nan
    out = mask_features(values, ["java_cpu_pct", "back_close_wait"], slice(0, 4))
    assert out[:, FIELD_INDEX["java_cpu_pct"]].tolist() == [20.0] * 4
    assert np.isnan(out[:, FIELD_INDEX["back_close_wait"]]).all()


def test_scenarios_never_invent_a_missing_field_nor_act_only_on_one():
    values = _rows(30)
    values[:, FIELD_INDEX["back_close_wait"]] = np.nan
    restart = next(s for s in SCENARIOS if s.id == "restart").apply(values)
    assert np.isnan(restart[:, FIELD_INDEX["back_close_wait"]]).all()
    assert (restart[-12:, FIELD_INDEX["front_close_wait"]] == 0).all()
    both = ["back_close_wait", "front_close_wait"]
    assert "close_connections" in {s.id for s in relevant_scenarios(both)}
    assert relevant_scenarios(both, missing=both) == []
    assert {s.id for s in relevant_scenarios(["mem_pct", *both], missing=both)} == {"reduce_memory", "restart"}

