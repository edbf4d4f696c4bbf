"""Incident backtest: incidents from data or labels, replay through the Predictor, grading."""

from __future__ import annotations

import numpy as np
import pytest

from argus.domain.alerts import AlertLevel
from argus.domain.backtest import (
    AlertRaise,
    Incident,
    Replay,
    Sample,
    grade,
    incidents_from_labels,
    incidents_in_records,
    replay,
)
from argus.domain.profiles import ProfileResolver
from argus.domain.ticks import Predictor
from argus.testing import FixedForecaster, make_record


def _series(server: str, mem: list[float]):
    return [make_record(server, step, mem_used_pct=m) for step, m in enumerate(mem)]


def test_incidents_are_contiguous_runs_over_a_limit():
    records = _series("ppweb001", [50, 93, 94, 50, 95, 50])  # web_api memory limit 92
    incidents = incidents_in_records(records, ProfileResolver())
    base = make_record("ppweb001", 0).epoch_s
    assert incidents == [Incident("ppweb001", base + 300, base + 600, "mem_pct"),
                         Incident("ppweb001", base + 1200, base + 1200, "mem_pct")]


def test_labels_accept_a_list_or_windows_and_name_bad_entries():
    labels = [{"server_name": "a", "start": "2025-01-15T10:00:00", "end": "2025-01-15T11:00:00Z", "note": 1}]
    assert incidents_from_labels(labels) == incidents_from_labels({"windows": labels})
    assert incidents_from_labels(labels)[0].end - incidents_from_labels(labels)[0].start == 3600
    with pytest.raises(ValueError, match=r"labels\[0\]"):
        incidents_from_labels([{"server_name": "a", "start": "soon"}])


def test_a_replay_ticks_on_data_time_and_records_alerts_and_probabilities():
    rising = np.concatenate([np.linspace(80, 99, 10), np.full(86, 99.0)])
    predictor = Predictor(FixedForecaster(ppweb001={"mem_pct": rising}), ProfileResolver())
    records = sorted(_series("ppweb001", [80.0] * 40) + _series("ppdb001", [50.0] * 40), key=lambda r: r.epoch_s)
    run = replay(records, predictor, capacity=100, tick_steps=6)
    assert run.ticks >= 4
    assert run.raises and run.raises[0].server_name == "ppweb001"
    assert {s.server_name for s in run.samples} == {"ppweb001", "ppdb001"}


def test_grading_counts_useful_alerts_found_incidents_and_lead_times():
    run = Replay(ticks=10, first_tick=0, last_tick=100_000,
                 raises=[AlertRaise("a", 1000, AlertLevel.WARNING), AlertRaise("b", 1000, AlertLevel.CRITICAL)],
                 samples=[Sample("a", 1000, 0.9, 0.9), Sample("b", 1000, 0.1, 0.2), Sample("c", 1000, 0.0, 0.0)])
    incidents = [Incident("a", 1000 + 3600, 1000 + 7200), Incident("c", 50_000, 50_600)]
    report = grade(run, incidents)
    assert report["precision"] == 0.5 and report["recall"] == 0.5
    assert report["lead_minutes_median"] == 60.0
    assert report["brier_8h"] < report["brier_8h_climatology"]
    assert sum(row["count"] for row in report["reliability_8h"]) == 3
