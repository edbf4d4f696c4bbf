"""Incident backtest: incidents from data or labels, replay through the Predictor, grading."""

from __future__ import annotations

import numpy as np
import pytest

from argus.domain.alerts import AlertLevel
from argus.domain.backtest import (
    AlertDrop,
    AlertRaise,
    Incident,
    Negative,
    Replay,
    Sample,
    calibration_pairs,
    grade,
    incidents_from_labels,
    incidents_in_records,
    negatives_from_labels,
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
    assert incidents == [Incident("ppweb001", base + 300, base + 600, "mem_pct", incident_class="observed"),
                         Incident("ppweb001", base + 1200, base + 1200, "mem_pct", incident_class="observed")]


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
    assert all(s.raw_prob_30m is not None and s.raw_prob_8h is not None for s in run.samples)


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


H = 3600
DAY = 86_400


def test_labels_from_bench_make_carry_kind_class_metric_and_negatives():
    document = {
        "source": "bench", "seed": 1, "mix": {"memory_leak": 1},
        "windows": [{"server_name": "a", "start": "2025-01-15T10:00:00Z", "end": "2025-01-15T11:00:00Z",
                     "metrics_involved": ["mem_used_pct"], "kind": "memory_leak", "class": "gradual",
                     "metric": "mem_pct", "limit": 95.0, "onset": "2025-01-15T02:00:00Z"}],
        "negatives": [{"server_name": "b", "start": "2025-01-15T10:00:00Z", "end": "2025-01-15T10:30:00Z",
                       "kind": "burst_return", "metrics_involved": ["cpu_user_pct"]}],
    }
    [incident] = incidents_from_labels(document)
    assert (incident.kind, incident.incident_class, incident.metric) == ("memory_leak", "gradual", "mem_pct")
    assert negatives_from_labels(document) == [Negative("b", incident.start, incident.start + 1800, "burst_return")]


def test_plain_labels_have_no_kind_class_or_negatives():
    plain = [{"server_name": "a", "start": "2025-01-15T10:00:00", "end": "2025-01-15T11:00:00"}]
    assert incidents_from_labels(plain)[0].kind is None and incidents_from_labels(plain)[0].incident_class is None
    assert negatives_from_labels(plain) == [] and negatives_from_labels({"windows": plain}) == []
    with pytest.raises(ValueError, match=r"negatives\[0\]"):
        negatives_from_labels({"windows": plain, "negatives": [{"server_name": "a"}]})


def _run(raises=(), drops=(), samples=(), first=0, last=10 * DAY) -> Replay:
    return Replay(ticks=10, first_tick=first, last_tick=last, raises=list(raises), drops=list(drops),
                  samples=list(samples))


def test_an_escalation_at_the_crossing_is_a_true_alert_and_one_far_from_incidents_is_false():
    start = 2 * DAY
    run = _run(raises=[AlertRaise("a", start - H, AlertLevel.WARNING), AlertRaise("a", start, AlertLevel.CRITICAL),
                       AlertRaise("a", start + 9 * H, AlertLevel.WARNING)])
    report = grade(run, [Incident("a", start, start + 2 * H)])
    assert report["true_alerts"] == 2 and report["false_alerts"] == 1
    assert report["precision"] == round(2 / 3, 4)


def test_false_alerts_are_counted_per_server_day_and_near_negatives():
    samples = [Sample(name, 0, 0.0, 0.0) for name in ("a", "b", "c")]  # 3 servers over 2 days
    raises = [AlertRaise("a", 10 * H, AlertLevel.WARNING), AlertRaise("b", 20 * H, AlertLevel.WARNING),
              AlertRaise("c", 30 * H, AlertLevel.CRITICAL)]
    negatives = [Negative("b", 25 * H, 26 * H, "burst_return"), Negative("a", 30 * H, 31 * H, "restart_drop")]
    report = grade(_run(raises=raises, samples=samples, last=2 * DAY), [], negatives)
    assert report["false_alerts"] == 3 and report["server_days"] == 6.0
    assert report["false_alerts_per_server_day"] == 0.5
    assert report["alerts_on_negatives"] == 1  # b's alert 5 h before its burst; a's is 20 h before its drop
    assert report["precision"] == 0.0 and report["negatives"] == 2


def test_an_alert_opened_before_the_crossing_and_held_open_warned_before_it():
    start = 3 * DAY
    incidents = [Incident("a", start, start + H, kind="memory_leak", incident_class="gradual"),
                 Incident("b", start, start + H, kind="memory_leak", incident_class="gradual")]
    run = _run(raises=[AlertRaise("a", start - 12 * H, AlertLevel.WARNING),   # long before the 8 h, still open
                       AlertRaise("b", start - 2 * H, AlertLevel.CRITICAL)],
               drops=[AlertDrop("b", start - H, AlertLevel.WARNING)])          # de-escalated, still at warning
    report = grade(run, incidents)
    assert report["warned_before_crossing"] == 1.0 and report["recall"] == 1.0
    assert report["lead_minutes"]["memory_leak"] == {"p25": 210.0, "p50": 300.0, "p75": 390.0, "n": 2}  # 480 (cap), 120


def test_an_alert_raised_at_or_after_the_start_did_not_warn_before_the_crossing():
    start = 3 * DAY
    incidents = [Incident("a", start, start + H, kind="disk_fill", incident_class="gradual"),
                 Incident("b", start, start + H, kind="disk_fill", incident_class="gradual")]
    run = _run(raises=[AlertRaise("a", start, AlertLevel.CRITICAL), AlertRaise("b", start + 30 * 60, AlertLevel.WARNING)])
    report = grade(run, incidents)
    assert report["warned_before_crossing"] == 0.0
    assert report["recall"] == 0.5  # the alert at the crossing tick finds it, too late to warn
    assert report["lead_minutes"]["all"]["n"] == 0 and report["lead_minutes_median"] is None


def test_a_warning_resolved_before_the_start_warned_but_gives_no_lead():
    start = 3 * DAY
    incident = Incident("a", start, start + H, kind="swap_storm", incident_class="gradual")
    run = _run(raises=[AlertRaise("a", start - 4 * H, AlertLevel.WARNING)],
               drops=[AlertDrop("a", start - 2 * H, AlertLevel.DEGRADED)])
    report = grade(run, [incident])
    assert report["warned_before_crossing"] == 1.0 and report["warned_before_crossing_by_kind"] == {"swap_storm": 1.0}
    assert report["lead_minutes"]["swap_storm"]["n"] == 0


def test_lead_quantiles_recall_and_warnings_are_reported_per_kind_and_class():
    start = 3 * DAY
    incidents = [Incident(f"s{i}", start, start + H, kind="memory_leak", incident_class="gradual") for i in range(4)]
    incidents += [Incident("f", start, start + H, kind="cpu_runaway", incident_class="fast")]
    raises = [AlertRaise(f"s{i}", start - (i + 1) * H, AlertLevel.WARNING) for i in range(4)]
    raises += [AlertRaise("f", start - 1800, AlertLevel.CRITICAL)]
    report = grade(_run(raises=raises), incidents)
    assert report["lead_minutes"]["memory_leak"] == {"p25": 105.0, "p50": 150.0, "p75": 195.0, "n": 4}
    assert report["lead_minutes"]["cpu_runaway"]["p50"] == 30.0 and report["lead_minutes"]["all"]["n"] == 5
    assert report["lead_minutes_median"] == 120.0
    assert report["recall_by_class"] == {"fast": 1.0, "gradual": 1.0}
    assert report["warned_before_crossing_by_kind"] == {"cpu_runaway": 1.0, "memory_leak": 1.0}


def test_brier_skill_compares_with_climatology_for_calibrated_and_raw_probabilities():
    start = 2 * DAY
    samples = [Sample("a", start - 20 * 60, 1.0, 1.0, raw_prob_30m=0.5, raw_prob_8h=0.5),
               Sample("b", start - 20 * 60, 0.0, 0.0, raw_prob_30m=0.5, raw_prob_8h=0.5)]
    report = grade(_run(samples=samples), [Incident("a", start, start + H)])
    assert report["brier_30m"] == 0.0 and report["brier_30m_climatology"] == 0.25
    assert report["brier_skill_30m"] == 1.0 and report["brier_skill_8h"] == 1.0
    assert report["brier_raw_30m"] == 0.25 and report["brier_skill_raw_30m"] == 0.0


def test_brier_skill_is_none_when_the_climatology_is_perfect():
    report = grade(_run(samples=[Sample("a", 0, 0.1, 0.2)]), [])
    assert report["brier_30m_climatology"] == 0.0 and report["brier_skill_30m"] is None


def test_calibration_pairs_hold_raw_probabilities_and_outcomes_outside_incident_spans():
    start = 2 * DAY
    samples = [Sample("a", start - 7 * H, 0.2, 0.6, raw_prob_30m=0.1, raw_prob_8h=0.4),
               Sample("a", start + 60, 1.0, 1.0),                 # inside the incident: left out
               Sample("b", start, 0.3, 0.5)]                      # no raw: the calibrated value stands in
    pairs = calibration_pairs(_run(samples=samples), [Incident("a", start, start + H)])
    assert set(pairs) == {"30m", "8h"}
    raw_8h, outcome_8h = pairs["8h"]
    assert raw_8h.shape == outcome_8h.shape == (2,)
    assert raw_8h.tolist() == [0.4, 0.5] and outcome_8h.tolist() == [1.0, 0.0]
    assert pairs["30m"][0].tolist() == [0.1, 0.3] and pairs["30m"][1].tolist() == [0.0, 0.0]
