"""Incident backtest: replay records through the real pipeline and grade its alerts and probabilities.

The replay feeds records in time order into rolling windows and runs the same Predictor the engine
runs (forecast → risk → alert lifecycle) every ``tick_steps`` steps, stamped with data time.
Incidents are limit breaches found in the data (a metric at or over its profile's limit; class
"observed") or labelled windows (``kind``, ``class``: gradual, fast, background); labels may also
name negatives (look-alikes that are no incident). An alert is a raise or escalation to warning or
critical; the *warning stretches* of a server are the spans its open alert sits at warning or above
(from those raises to the de-escalation or resolution below warning). Grading:

* **precision**: the share of alerts in [start − 8 h, end] of an incident on their server (the
  others are false alerts, also counted per server-day and near negatives);
* **recall**: the share of incidents (starting after the first tick) with a warning stretch open at
  some tick in [start − 8 h, start]; **warned before crossing**: the same strictly before start,
  for gradual incidents; **lead time**: start − the opening of the stretch open just before start
  (at most 8 h);
* **Brier scores** (calibrated and raw) of the per-server P(30 min) and P(8 h) against "an incident
  starts on this server within 30 min / 8 h", outside incident spans, with the climatology (the base
  rate as a constant forecast) as the yardstick, skill scores and reliability tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TypedDict

import attrs
import numpy as np

from argus.domain.alerts import AlertLevel, EventType
from argus.domain.metrics import STEP_SECONDS, FleetWindows, Record, utc_from_epoch
from argus.domain.profiles import ProfileResolver
from argus.domain.risk import LIMIT_OF, values_from_row
from argus.domain.ticks import Predictor

HORIZON_8H_S = 8 * 3600
HORIZON_30M_S = 30 * 60
UNLABELLED = "unlabelled"  # the kind/class key of incidents that have none
Stretches = Mapping[str, list[tuple[int, int | None]]]  # per server: (opened, closed or None while open)


@attrs.frozen
class Incident:
    """One incident: a server in trouble from ``start`` to ``end`` (epoch seconds, inclusive)."""

    server_name: str
    start: int
    end: int
    metric: str | None = None
    kind: str | None = None  # memory_leak, disk_fill, ... (labels only)
    incident_class: str | None = None  # gradual | fast | background (labels), observed (found in data)


@attrs.frozen
class Negative:
    """A labelled look-alike that is no incident (a burst that returns, a restart drop, maintenance, ...)."""

    server_name: str
    start: int
    end: int
    kind: str | None = None


def incidents_in_records(records: Iterable[Record], profiles: ProfileResolver) -> list[Incident]:
    """Contiguous runs of steps where any metric is at or over its profile's limit (class "observed")."""
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
                incidents.append(Incident(server, start, last, metric, incident_class="observed"))
                start, metric = ts, m
            last = ts
        incidents.append(Incident(server, start, last, metric, incident_class="observed"))
    return incidents


def incidents_from_labels(document: object) -> list[Incident]:
    """Parse ``--labels``: a list (or {"windows": [...]}) of {"server_name", "start", "end"} ISO times.

    Optional per window: ``kind``, ``class`` (gradual, fast, background) and ``metric``.
    """
    windows = document.get("windows") if isinstance(document, dict) else document
    if not isinstance(windows, list):
        raise ValueError('labels must be a list, or an object with a "windows" list')
    out = []
    for i, item in enumerate(windows):
        server, start, end = _window(item, f"labels[{i}]")
        out.append(Incident(server, start, end, _text(item, "metric"), _text(item, "kind"), _text(item, "class")))
    return out


def negatives_from_labels(document: object) -> list[Negative]:
    """Parse the ``negatives`` list of a labels object (none for a plain list or an object without one)."""
    items = document.get("negatives") if isinstance(document, dict) else None
    if items is None:
        return []
    if not isinstance(items, list):
        raise ValueError('labels: "negatives" must be a list')
    out = []
    for i, item in enumerate(items):
        server, start, end = _window(item, f"negatives[{i}]")
        out.append(Negative(server, start, end, _text(item, "kind")))
    return out


def _window(item: object, where: str) -> tuple[str, int, int]:
    try:
        return str(item["server_name"]), _epoch(item["start"]), _epoch(item["end"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError) as ex:
        raise ValueError(f"{where}: need server_name, start and end as ISO 8601 times ({ex})") from None


def _text(item: Mapping[str, object], key: str) -> str | None:
    value = item.get(key)
    return None if value is None else str(value)


def _epoch(text: str) -> int:
    moment = datetime.fromisoformat(text)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return int(moment.timestamp())


@attrs.frozen
class AlertRaise:
    """An alert raised or escalated to ``level`` (warning or critical) on the tick at ``at``."""

    server_name: str
    at: int
    level: AlertLevel


@attrs.frozen
class AlertDrop:
    """An alert de-escalated or resolved on the tick at ``at``: ``level`` is its level after (HEALTHY: closed)."""

    server_name: str
    at: int
    level: AlertLevel


@attrs.frozen
class Sample:
    """One (tick, server) forecast of P(incident) for grading; raw = before the calibration map (None: same)."""

    server_name: str
    at: int
    prob_30m: float
    prob_8h: float
    raw_prob_30m: float | None = None
    raw_prob_8h: float | None = None
    breach_share: float = 0.0  # the server's recent share of steps over a limit (a calibration stratum)
    breach_age_minutes: float = float("inf")  # since its latest breach before the tick (another)


@attrs.define
class Replay:
    ticks: int = 0
    first_tick: int | None = None
    last_tick: int | None = None
    raises: list[AlertRaise] = attrs.Factory(list)
    samples: list[Sample] = attrs.Factory(list)
    drops: list[AlertDrop] = attrs.Factory(list)


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
    forecaster = predictor.forecaster
    assert forecaster is not None, "a replay needs a model"
    if not windows.ready(forecaster.min_history_steps):
        return
    tick = predictor.tick(windows, utc_from_epoch(at))
    result.ticks += 1
    result.first_tick = at if result.first_tick is None else result.first_tick
    result.last_tick = at
    for event in tick.events:
        if event.event_type in (EventType.RAISED, EventType.ESCALATED) and event.new_level >= AlertLevel.WARNING:
            result.raises.append(AlertRaise(event.server_name, at, event.new_level))
        elif event.event_type in (EventType.DE_ESCALATED, EventType.RESOLVED):
            result.drops.append(AlertDrop(event.server_name, at, event.new_level))
    for a in tick.assessments:
        result.samples.append(Sample(
            a.server_name, at, a.prob_30m, a.prob_8h,
            a.prob_30m if a.raw_prob_30m is None else a.raw_prob_30m,
            a.prob_8h if a.raw_prob_8h is None else a.raw_prob_8h, a.breaches.share, a.breaches.age_minutes,
        ))


def grade(run: Replay, incidents: Sequence[Incident], negatives: Sequence[Negative] = ()) -> dict[str, object]:
    """Alert precision and false alerts, recall, warnings before the crossing, lead times and Brier scores."""
    graded = [i for i in incidents if run.first_tick is not None and run.first_tick < i.start <= (run.last_tick or 0)]
    report: dict[str, object] = {"alerts": len(run.raises), "incidents": len(graded), "negatives": len(negatives)}
    report.update(_alert_counts(run, incidents, negatives))
    report.update(_detection(run, graded))
    report.update(_brier_report(run, incidents))
    report["ticks"] = run.ticks
    return report


def _alert_counts(run: Replay, incidents: Sequence[Incident], negatives: Sequence[Negative]) -> dict[str, object]:
    near = _spans(incidents)
    false = [r for r in run.raises if not _within(near, r.server_name, r.at, before_s=HORIZON_8H_S)]
    server_days = len({s.server_name for s in run.samples}) * ((run.last_tick or 0) - (run.first_tick or 0)) / 86_400
    negative_spans = _spans(negatives)
    return {
        "true_alerts": len(run.raises) - len(false),
        "false_alerts": len(false),
        "precision": _share(len(run.raises) - len(false), len(run.raises)),
        "server_days": round(server_days, 2),
        "false_alerts_per_server_day": round(len(false) / server_days, 4) if server_days > 0 else None,
        "alerts_on_negatives": sum(1 for r in false if _within(negative_spans, r.server_name, r.at, HORIZON_8H_S)),
    }


def _detection(run: Replay, graded: Sequence[Incident]) -> dict[str, object]:
    stretches = warning_stretches(run)
    found = [_open_between(stretches, i, i.start - HORIZON_8H_S, i.start + 1) for i in graded]
    warned = [_open_between(stretches, i, i.start - HORIZON_8H_S, i.start) for i in graded]
    leads = [_lead_minutes(stretches, i) for i in graded]
    gradual = [w for i, w in zip(graded, warned, strict=True) if i.incident_class == "gradual"]
    lead_minutes = {"all": _quantiles([x for x in leads if x is not None])}
    for kind in sorted({i.kind or UNLABELLED for i in graded}):
        lead_minutes[kind] = _quantiles([x for i, x in zip(graded, leads, strict=True)
                                         if (i.kind or UNLABELLED) == kind and x is not None])
    return {
        "recall": _share(sum(found), len(found)),
        "recall_by_class": _shares_by(graded, found, lambda i: i.incident_class or UNLABELLED),
        "warned_before_crossing": _share(sum(gradual), len(gradual)),
        "warned_before_crossing_by_kind": _shares_by(graded, warned, lambda i: i.kind or UNLABELLED),
        "lead_minutes": lead_minutes,
        "lead_minutes_median": lead_minutes["all"]["p50"],
        "lead_minutes_quartiles": ([lead_minutes["all"]["p25"], lead_minutes["all"]["p75"]]
                                   if lead_minutes["all"]["n"] else None),
    }


def warning_stretches(run: Replay) -> dict[str, list[tuple[int, int | None]]]:
    """Per server, the (opened, closed) ticks of the spans its alert sat at warning or above.

    ``closed`` is the tick of the de-escalation or resolution below warning, None while still open.
    """
    moves: dict[str, list[tuple[int, AlertLevel]]] = {}
    transitions: list[AlertRaise | AlertDrop] = [*run.raises, *run.drops]
    for change in transitions:
        moves.setdefault(change.server_name, []).append((change.at, change.level))
    out: dict[str, list[tuple[int, int | None]]] = {}
    for server, changes in moves.items():
        spans: list[tuple[int, int | None]] = []
        opened: int | None = None
        for at, level in sorted(changes, key=lambda c: c[0]):
            if level >= AlertLevel.WARNING and opened is None:
                opened = at
            elif level < AlertLevel.WARNING and opened is not None:
                spans.append((opened, at))
                opened = None
        out[server] = spans + ([(opened, None)] if opened is not None else [])
    return out


def _open_between(stretches: Stretches, incident: Incident, lo: int, hi: int) -> bool:
    """Whether a warning stretch of the incident's server is open at some moment in [lo, hi)."""
    spans = stretches.get(incident.server_name, ())
    return any(opened < hi and (closed is None or closed > lo) for opened, closed in spans)


def _lead_minutes(stretches: Stretches, incident: Incident) -> float | None:
    """Start − the opening of the stretch still open at the start (at most 8 h), or None."""
    for opened, closed in stretches.get(incident.server_name, ()):
        if opened < incident.start and (closed is None or closed >= incident.start):
            return min(incident.start - opened, HORIZON_8H_S) / 60
    return None


def calibration_pairs(run: Replay, incidents: Sequence[Incident]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The raw probabilities and their 0/1 outcomes per horizon ("30m", "8h"), as the Brier scores grade them."""
    return {name: (raw, outcome) for name, (_, raw, outcome) in _forecast_pairs(run, incidents).items()}


def calibration_features(run: Replay, incidents: Sequence[Incident]) -> dict[str, np.ndarray]:
    """The stratifying features (breach_share_7d, breach_age_minutes) of the samples ``calibration_pairs``
    returns, in the same order."""
    spans = _spans(incidents)
    kept = [s for s in run.samples if not _within(spans, s.server_name, s.at)]
    return {"breach_share_7d": np.array([s.breach_share for s in kept], dtype=np.float64),
            "breach_age_minutes": np.array([s.breach_age_minutes for s in kept], dtype=np.float64)}


def _forecast_pairs(run: Replay, incidents: Sequence[Incident]) -> dict[str, tuple[np.ndarray, ...]]:
    """(calibrated, raw, outcome) per horizon for the samples outside incident spans."""
    starts = {server: np.array(sorted(i.start for i in incidents if i.server_name == server))
              for server in {i.server_name for i in incidents}}
    spans = _spans(incidents)
    samples = [s for s in run.samples if not _within(spans, s.server_name, s.at)]
    out: dict[str, tuple[np.ndarray, ...]] = {}
    for name, horizon in (("30m", HORIZON_30M_S), ("8h", HORIZON_8H_S)):
        calibrated = np.array([getattr(s, f"prob_{name}") for s in samples], dtype=np.float64)
        raw = np.array([_raw(s, name) for s in samples], dtype=np.float64)
        outcome = np.array([_starts_within(starts, s.server_name, s.at, horizon) for s in samples], dtype=np.float64)
        out[name] = (calibrated, raw, outcome)
    return out


def _raw(sample: Sample, name: str) -> float:
    raw: float | None = getattr(sample, f"raw_prob_{name}")
    return float(getattr(sample, f"prob_{name}")) if raw is None else raw


def _brier_report(run: Replay, incidents: Sequence[Incident]) -> dict[str, object]:
    report: dict[str, object] = {}
    for name, (calibrated, raw, outcome) in _forecast_pairs(run, incidents).items():
        scored, scored_raw = _brier(calibrated, outcome), _brier(raw, outcome)
        climatology = scored["climatology"]
        report |= {
            f"brier_{name}": scored["brier"], f"brier_{name}_climatology": climatology,
            f"brier_skill_{name}": _skill(scored["brier"], climatology),
            f"brier_raw_{name}": scored_raw["brier"],
            f"brier_skill_raw_{name}": _skill(scored_raw["brier"], climatology),
            f"reliability_{name}": scored["table"],
        }
        report["samples"] = scored["n"]
    return report


class _Brier(TypedDict):
    brier: float | None
    climatology: float | None
    table: list[dict[str, object]]
    n: int


def _skill(brier: float | None, climatology: float | None) -> float | None:
    return None if brier is None or not climatology else round(1.0 - brier / climatology, 4)


def _share(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def _shares_by(incidents: Sequence[Incident], hits: Sequence[bool],
               key: Callable[[Incident], str]) -> dict[str, float | None]:
    groups: dict[str, list[bool]] = {}
    for incident, hit in zip(incidents, hits, strict=True):
        groups.setdefault(key(incident), []).append(hit)
    return {name: _share(sum(g), len(g)) for name, g in sorted(groups.items())}


def _quantiles(values: Sequence[float]) -> dict[str, float | int | None]:
    if not values:
        return {"p25": None, "p50": None, "p75": None, "n": 0}
    p25, p50, p75 = (round(float(q), 1) for q in np.percentile(values, [25, 50, 75]))
    return {"p25": p25, "p50": p50, "p75": p75, "n": len(values)}


def _spans(windows: Iterable[Incident | Negative]) -> dict[str, list[tuple[int, int]]]:
    spans: dict[str, list[tuple[int, int]]] = {}
    for w in windows:
        spans.setdefault(w.server_name, []).append((w.start, w.end))
    return spans


def _within(spans: Mapping[str, list[tuple[int, int]]], server: str, at: int, before_s: int = 0) -> bool:
    """Whether ``at`` falls in [start − before_s, end] of one of the server's spans."""
    return any(start - before_s <= at <= end for start, end in spans.get(server, ()))


def _starts_within(starts: Mapping[str, np.ndarray], server: str, at: int, horizon_s: int) -> bool:
    s = starts.get(server)
    if s is None:
        return False
    i = int(np.searchsorted(s, at, side="right"))
    return i < len(s) and s[i] <= at + horizon_s


def _brier(probs: np.ndarray, outcomes: np.ndarray) -> _Brier:
    if len(probs) == 0:
        return {"brier": None, "climatology": None, "table": [], "n": 0}
    base_rate = float(outcomes.mean())
    edges = np.array([0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0000001])
    bins = np.digitize(probs, edges) - 1
    table: list[dict[str, object]] = []
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
