"""The metric table: one row per risk metric, read by every layer, so that adding a metric is one row.

A row added here (inbound traffic, read from the existing ``net_in_mb_s`` field) is scored by the
risk code and explained by the counterfactual code through their ``table=`` parameter. It is not
forecast: a new forecast target changes the model's outputs and needs a retrained model.
"""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import numpy as np
import pytest

from argus.adapters.http.metrics import MEDIAN_TARGETS
from argus.adapters.http.snapshots import OTHER_TARGETS, REFERENCE_TARGETS
from argus.adapters.tft.features import DRIFT_TARGETS, SCALE_FLOOR, UPPER_BOUND
from argus.domain import actions
from argus.domain.alerts import AlertLevel
from argus.domain.anomaly import MIN_BAND_WIDTH
from argus.domain.explanation import FEATURE_LABELS, FEATURE_RECORD_FIELDS, SCENARIOS, impact_text, relevant_scenarios
from argus.domain.forecast import TARGET_FIELDS, TARGETS
from argus.domain.metric_table import METRICS, Advice, MetricTable, RiskMetric
from argus.domain.metrics import METRIC_FIELDS, FleetWindows, MetricsWindow
from argus.domain.profiles import LimitPolicy, Limits
from argus.domain.risk import (
    LIMIT_OF,
    RiskAssessment,
    assess,
    breach_history,
    current_values,
    recent_means,
    server_limits,
)
from argus.testing import make_record

MODELS = Path(__file__).resolve().parents[2] / "models"

INBOUND = RiskMetric(
    key="inbound_mb_s", fields=("net_in_mb_s",), default_limit=100.0, unit="MB/s",
    title="Inbound traffic", label="inbound traffic", incident="Inbound link saturation",
    now_phrase="Inbound link saturated now",
    advice=Advice("throttle_inbound", "Halve inbound traffic", "net_in_mb_s × 0.5 over the last hour",
                  actions.scale(("net_in_mb_s",), 0.5), {"default": "Rate-limit the heaviest client"}),
)
WITH_INBOUND = METRICS.extended(INBOUND)


@attrs.frozen
class SiteLimits(Limits):
    """Limits with the new metric's attribute, as the row's addition to ``Limits`` would give it."""

    inbound_mb_s: float | None = INBOUND.default_limit


def _window(inbound_mb_s: list[float]) -> MetricsWindow:
    """A calm server whose inbound traffic follows ``inbound_mb_s``, one value per five minutes."""
    windows = FleetWindows(2880)
    windows.add([make_record("ppweb001", i, net_in_mb_s=v) for i, v in enumerate(inbound_mb_s)])
    return windows.get("ppweb001")


def _scored(window: MetricsWindow, table: MetricTable = WITH_INBOUND) -> RiskAssessment:
    return assess("ppweb001", "web_api", SiteLimits(), current_values(window, table),
                  recent_means(window, table=table), None, table=table)


def test_every_per_metric_constant_is_a_view_of_the_table():
    targets = tuple(m.key for m in METRICS if m.forecast)
    assert TARGETS == targets == MEDIAN_TARGETS
    assert tuple(t for t in targets if t not in REFERENCE_TARGETS) == OTHER_TARGETS
    assert {m.key: m.fields[0] for m in METRICS if m.forecast} == TARGET_FIELDS
    assert {m.key: m.key for m in METRICS} == LIMIT_OF
    assert {m.key: m.min_band_width for m in METRICS if m.forecast} == MIN_BAND_WIDTH
    assert {m.key: m.scale_floor for m in METRICS if m.forecast} == SCALE_FLOOR
    assert {m.key: 100.0 for m in METRICS if m.forecast and m.unit == "%"} == UPPER_BOUND
    assert tuple(m.key for m in METRICS if m.drifts) == DRIFT_TARGETS
    assert {t: FEATURE_LABELS[t] for t in targets} == {m.key: m.label for m in METRICS if m.forecast}
    assert FEATURE_RECORD_FIELDS["cpu_pct"] == ("cpu_idle_pct", "cpu_user_pct", "cpu_sys_pct")
    advised = [m.advice.id for m in METRICS if m.advice is not None]
    assert [s.id for s in SCENARIOS][: len(advised)] == advised


def test_limits_has_one_attribute_per_row_defaulting_to_the_rows_limit():
    limits = attrs.fields(Limits)
    assert tuple(a.name for a in limits) == METRICS.keys
    assert {a.name: a.default for a in limits} == {m.key: m.default_limit for m in METRICS}
    assert all(a.default is not None for a in limits if a.type in (float, "float"))  # only optional ones may be None


def test_the_table_is_consistent():
    keys = [m.key for m in METRICS]
    assert len(keys) == len(set(keys))
    for metric in METRICS:
        assert set(metric.fields) | set(metric.related_fields) <= set(METRIC_FIELDS), metric.key
        if metric.forecast:
            assert len(metric.fields) == 1 and metric.scale_floor is not None, metric.key
            assert metric.explained_by == (metric.key,)
    assert METRICS["close_wait"].explained_by == ("back_close_wait", "front_close_wait")


def test_the_forecast_targets_keep_the_shipped_models_output_order():
    current = (MODELS / "CURRENT").read_text().strip()
    manifest = json.loads((MODELS / current / "manifest.json").read_text())
    assert tuple(manifest["features"]["targets"]) == TARGETS
    assert manifest["features"]["targets"] == TARGET_FIELDS
    assert manifest["features"]["scaling"]["floors"] == SCALE_FLOOR


@pytest.mark.parametrize("broken, problem", [
    (attrs.evolve(INBOUND, key="cpu_pct"), "duplicate key 'cpu_pct'"),
    (attrs.evolve(INBOUND, fields=("inodes_used_pct",)), "unknown record field 'inodes_used_pct'"),
    (attrs.evolve(INBOUND, forecast=True), "a forecast target needs exactly one field and a scale floor"),
])
def test_an_inconsistent_row_is_refused_when_the_table_is_built(broken, problem):
    with pytest.raises(ValueError, match=problem):
        METRICS.extended(broken)


def test_a_metric_added_as_one_row_is_read_and_scored_by_the_risk_code():
    window = _window([20.0] * 24 + [120.0] * 12)  # the last hour over its 100 MB/s limit
    assert current_values(window, WITH_INBOUND)["inbound_mb_s"] == 120.0
    assessment = _scored(window)
    assert assessment.driver is not None and assessment.driver.metric == "inbound_mb_s"
    assert assessment.level is AlertLevel.CRITICAL
    assert assessment.message == "Inbound link saturated now (120 MB/s ≥ 100 MB/s)"
    assert breach_history(SiteLimits(), window, table=WITH_INBOUND).share == pytest.approx(12 / 36)
    assert _scored(window, METRICS).level is AlertLevel.HEALTHY  # without the row nobody looks at it


def test_a_metric_added_as_one_row_learns_its_normal_ceiling_like_the_others():
    window = _window([40.0] * 600)
    learned, normal = server_limits(SiteLimits(), LimitPolicy(mode="learned"), window, WITH_INBOUND)
    assert normal["inbound_mb_s"] == pytest.approx(40.0)
    assert learned.inbound_mb_s == pytest.approx(40.0 * 1.25)  # not a percentage: a share of it as margin


def test_a_metric_added_as_one_row_is_explained_by_its_own_advice():
    window = _window([20.0] * 24 + [120.0] * 12)
    before = _scored(window)
    relevant = relevant_scenarios([], driver="inbound_mb_s", table=WITH_INBOUND)
    assert "throttle_inbound" in [s.id for s in relevant]
    assert "throttle_inbound" not in [s.id for s in relevant_scenarios([], driver="inbound_mb_s")]
    throttle = next(s for s in relevant if s.id == "throttle_inbound")
    changed = throttle.apply(window.values.astype(np.float64))
    after = _scored(MetricsWindow.from_arrays("ppweb001", 2880, window.timestamps, changed.astype(np.float32),
                                              window.statuses))
    assert after.score < before.score and after.level is not AlertLevel.CRITICAL
    assert impact_text(before.score, after.score).startswith("Risk drops from")
    assert throttle.recommendation("web_api") == "Rate-limit the heaviest client"
