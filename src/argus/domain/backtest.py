"""Incident backtest: replay records through the real pipeline and grade its alerts and probabilities.

The replay feeds records in time order into rolling windows and runs the same Predictor the engine
runs (forecast → risk → alert lifecycle) every ``tick_steps`` steps, stamped with data time.
Incidents are limit breaches found in the data (a metric at or over its profile's limit) or given
as labelled windows. Grading:

* **precision**: the share of alerts (raised or escalated to warning or critical) followed by the
  start of an incident on that server within 8 hours;
* **recall**: the share of incidents (that start after the first tick) with a warning or critical
  alert raised in the 8 hours before their start; **lead time**: start − that alert's time;
* **Brier scores** of the per-server P(30 min) and P(8 h) against "an incident starts on this
  server within 30 min / 8 h", with the climatology (the base rate as a constant forecast) as the
  yardstick, and a reliability table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

import attrs
import numpy as np

from argus.domain.alerts import AlertLevel, EventType
from argus.domain.metrics import STEP_SECONDS, FleetWindows, Record, utc_from_epoch
from argus.domain.profiles import ProfileResolver
from argus.domain.risk import LIMIT_OF, values_from_row
from argus.domain.ticks import Predictor

HORIZON_8H_S = 8 * 3600
HORIZON_30M_S = 30 * 60


@attrs.frozen
class Incident:
    """One incident: a server in trouble from ``start`` to ``end`` (epoch seconds, inclusive)."""

    server_name: str
    start: int
    end: int
    metric: str | None = None


def incidents_in_records(records: Iterable[Record], profiles: ProfileResolver) -> list[Incident]:
    """Contiguous runs of steps where any metric is at or over its profile's limit."""
    by_server: dict[str, list[tuple[int, str | None]]] = {}
    for record in records:
        limits = profiles.profile_for(record.server_name).limits
        now = values_from_row(record.values)
        over = [m for m, attr in LIMIT_OF.items()
                if getattr(limits, attr) is not None and now.get(m, 0.0) >= getattr(limits, attr)]
        if over and record.status not in ("offline", "maintenance"):
            by_server.setdefault(record.server_name, []).append((record.epoch_s, over[0]))
    incidents = []
    for server, hits in by_server.items():
        hits.sort()
        start, last, metric = hits[0][0], hits[0][0], hits[0][1]
        for ts, m in hits[1:]:
            if ts - last > STEP_SECONDS:
                incidents.append(Incident(server, start, last, metric))
                start, metric = ts, m
            last = ts
        incidents.append(Incident(server, start, last, metric))
    return incidents


def incidents_from_labels(document: object) -> list[Incident]:
    """Parse ``--labels``: a list (or {"windows": [...]}) of {"server_name", "start", "end"} ISO times."""
    windows = document.get("windows") if isinstance(document, dict) else document
    if not isinstance(windows, list):
        raise ValueError('labels must be a list, or an object with a "windows" list')
    out = []
    for i, item in enumerate(windows):
        try:
            start, end = (_epoch(item[key]) for key in ("start", "end"))
            out.append(Incident(str(item["server_name"]), start, end))
        except (KeyError, TypeError, ValueError) as ex:
            raise ValueError(f"labels[{i}]: need server_name, start and end as ISO 8601 times ({ex})") from None
    return out


def _epoch(text: str) -> int:
    moment = datetime.fromisoformat(text)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return int(moment.timestamp())


@attrs.frozen
class AlertRaise:
    server_name: str
    at: int
    level: AlertLevel


@attrs.frozen
class Sample:
    """One (tick, server) forecast of P(incident) for grading."""

    server_name: str
    at: int
    prob_30m: float
    prob_8h: float


@attrs.define
class Replay:
    ticks: int = 0
    first_tick: int | None = None
    last_tick: int | None = None
    raises: list[AlertRaise] = attrs.Factory(list)
    samples: list[Sample] = attrs.Factory(list)


def replay(
    records: Sequence[Record], predictor: Predictor, capacity: int, tick_steps: int = 6,
    start_epoch_s: int | None = None,
) -> Replay:
    """Feed ``records`` (sorted by time) and tick every ``tick_steps`` steps from ``start_epoch_s`` on."""
    windows = FleetWindows(capacity)
    result = Replay()
    pending: list[Record] = []
    next_tick = None
    for record in records:
        ts = record.epoch_s
        if next_tick is None:
            next_tick = start_epoch_s if start_epoch_s is not None else ts
        while ts > next_tick:
            windows.add(pending)
            pending = []
            _tick(windows, predictor, next_tick, result)
            next_tick += tick_steps * STEP_SECONDS
        pending.append(record)
    return result


def _tick(windows: FleetWindows, predictor: Predictor, at: int, result: Replay) -> None:
    if not windows.ready(predictor.forecaster.min_history_steps):
        return
    tick = predictor.tick(windows, utc_from_epoch(at))
    result.ticks += 1
    result.first_tick = at if result.first_tick is None else result.first_tick
    result.last_tick = at
    for event in tick.events:
        if event.event_type in (EventType.RAISED, EventType.ESCALATED) and event.new_level >= AlertLevel.WARNING:
            result.raises.append(AlertRaise(event.server_name, at, event.new_level))
    for assessment in tick.assessments:
        result.samples.append(Sample(assessment.server_name, at, assessment.prob_30m, assessment.prob_8h))


def grade(run: Replay, incidents: Sequence[Incident]) -> dict[str, object]:
    """Precision, recall, lead times, Brier scores (with climatology) and reliability tables."""
    starts: dict[str, np.ndarray] = {}
    spans: dict[str, list[tuple[int, int]]] = {}
    for incident in incidents:
        starts.setdefault(incident.server_name, []).append(incident.start)
        spans.setdefault(incident.server_name, []).append((incident.start, incident.end))
    starts = {server: np.array(sorted(s)) for server, s in starts.items()}

    useful = sum(1 for r in run.raises if _starts_within(starts, r.server_name, r.at, HORIZON_8H_S))
    graded = [i for i in incidents if run.first_tick is not None and run.first_tick < i.start <= (run.last_tick or 0)]
    leads = []
    for incident in graded:
        before = [r.at for r in run.raises
                  if r.server_name == incident.server_name and incident.start - HORIZON_8H_S <= r.at <= incident.start]
        if before:
            leads.append((incident.start - min(before)) / 60)
    brier = {}
    for name, horizon, attr in (("30m", HORIZON_30M_S, "prob_30m"), ("8h", HORIZON_8H_S, "prob_8h")):
        samples = [s for s in run.samples if not _inside(spans, s.server_name, s.at)]
        probs = np.array([getattr(s, attr) for s in samples], dtype=np.float64)
        outcomes = np.array([_starts_within(starts, s.server_name, s.at, horizon) for s in samples], dtype=np.float64)
        brier[name] = _brier(probs, outcomes)
    return {
        "alerts": len(run.raises),
        "incidents": len(graded),
        "precision": round(useful / len(run.raises), 4) if run.raises else None,
        "recall": round(len(leads) / len(graded), 4) if graded else None,
        "lead_minutes_median": round(float(np.median(leads)), 1) if leads else None,
        "lead_minutes_quartiles": [round(float(q), 1) for q in np.percentile(leads, [25, 75])] if leads else None,
        "brier_30m": brier["30m"]["brier"], "brier_30m_climatology": brier["30m"]["climatology"],
        "brier_8h": brier["8h"]["brier"], "brier_8h_climatology": brier["8h"]["climatology"],
        "reliability_30m": brier["30m"]["table"], "reliability_8h": brier["8h"]["table"],
        "samples": brier["8h"]["n"], "ticks": run.ticks,
    }


def _starts_within(starts: Mapping[str, np.ndarray], server: str, at: int, horizon_s: int) -> bool:
    s = starts.get(server)
    if s is None:
        return False
    i = int(np.searchsorted(s, at, side="right"))
    return i < len(s) and s[i] <= at + horizon_s


def _inside(spans: Mapping[str, list[tuple[int, int]]], server: str, at: int) -> bool:
    return any(start <= at <= end for start, end in spans.get(server, ()))


def _brier(probs: np.ndarray, outcomes: np.ndarray) -> dict[str, object]:
    if len(probs) == 0:
        return {"brier": None, "climatology": None, "table": [], "n": 0}
    base_rate = float(outcomes.mean())
    edges = np.array([0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0000001])
    bins = np.digitize(probs, edges) - 1
    table = []
    for b in range(len(edges) - 1):
        mask = bins == b
        if mask.any():
            table.append({"bin": f"{edges[b]:.2f}-{min(edges[b + 1], 1.0):.2f}", "count": int(mask.sum()),
                          "mean_forecast": round(float(probs[mask].mean()), 4),
                          "observed_rate": round(float(outcomes[mask].mean()), 4)})
    return {
        "brier": round(float(np.mean((probs - outcomes) ** 2)), 5),
        "climatology": round(float(np.mean((base_rate - outcomes) ** 2)), 5),
        "table": table,
        "n": len(probs),
    }
