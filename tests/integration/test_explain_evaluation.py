"""`argus evaluate --explain`: explanations of alerted incidents graded against their labelled metrics."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest

from argus.adapters.explain.evaluation import agrees, evaluate_explanations
from argus.adapters.tft.data import load_series
from argus.adapters.tft.forecaster import TftForecaster
from argus.adapters.tft.registry import DirectoryModelRegistry
from argus.domain.metrics import FIELD_INDEX
from argus.domain.profiles import ProfileResolver
from tests.model.conftest import START_EPOCH_S, synthetic_records

pytestmark = pytest.mark.slow

START = START_EPOCH_S + 86_400  # graded from day 2; day 1 warms the windows up
BREACH = START + 6 * 3600  # on a 30-minute tick


def _iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).replace(tzinfo=None).isoformat()


def _memory_breach(records):
    out = []
    for record in records:
        if record.server_name == "ppweb001" and record.epoch_s >= BREACH:
            values = list(record.values)
            values[FIELD_INDEX["mem_used_pct"]] = 99.0
            record = attrs.evolve(record, values=tuple(values))
        out.append(record)
    return out


def test_the_alert_on_a_memory_incident_is_explained_by_memory(engine_model_dir):
    forecaster = TftForecaster.load(DirectoryModelRegistry(engine_model_dir), device="cpu")
    series = load_series(_memory_breach(synthetic_records(servers=2, days=1.5)))
    labels = {"windows": [
        {"server_name": "ppweb001", "start": _iso(BREACH), "end": _iso(BREACH + 3600),
         "metrics_involved": ["mem_used_pct"]},
        {"server_name": "ppdb000", "start": _iso(BREACH), "end": _iso(BREACH + 3600)},  # no metrics: not graded
    ]}
    incidents, explain = evaluate_explanations(forecaster, series, START, ProfileResolver(), labels,
                                               tick_minutes=30, nsamples=64)
    assert incidents["incident_source"] == "labels" and incidents["recall"] is not None
    assert explain["explained"] == 1 and explain["agreement_top3"] == 1.0
    assert explain["incidents_with_metrics"] == 1


def test_cpu_pct_agrees_with_any_cpu_time_field():
    assert agrees(["cpu_pct", "load"], frozenset({"cpu_user_pct"}))
    assert not agrees(["mem_pct", "load", "disk_pct"], frozenset({"swap_used_pct"}))
