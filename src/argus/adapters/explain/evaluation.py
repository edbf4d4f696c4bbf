"""`argus evaluate --explain`: does the explanation of an alert name the metrics the incident involved?

The period is replayed through the real pipeline exactly as ``--incidents`` does (same records,
ticks, Predictor and grading). When a warning or critical alert is raised for a server within the
8 hours before one of its incidents starts (the alerts that count for recall), that tick's SHAP
explanation is computed once per incident, and its top-3 features are compared with the incident's
``metrics_involved`` (record field names from ``--labels``) or, for incidents found as limit
breaches, with the breached metric's field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from argus.adapters.explain.service import ExplainService
from argus.adapters.explain.shap_explainer import ShapExplainer
from argus.domain.alerts import AlertLevel, EventType
from argus.domain.backtest import HORIZON_8H_S, Incident, grade, incidents_from_labels, incidents_in_records, replay
from argus.domain.explanation import FEATURE_RECORD_FIELDS
from argus.domain.forecast import TARGET_FIELDS
from argus.domain.profiles import ProfileResolver
from argus.domain.series import WARM_UP_S, ServerSeries, records_between
from argus.domain.ticks import Predictor

_ALERTING = (EventType.RAISED, EventType.ESCALATED)


def involved_from_labels(document: object) -> list[frozenset[str]]:
    """The ``metrics_involved`` of each labelled window, in the order ``incidents_from_labels`` returns them."""
    windows = document.get("windows") if isinstance(document, dict) else document
    return [frozenset(str(m) for m in (item.get("metrics_involved") or ())) for item in windows]  # type: ignore[union-attr]


def involved_from_breach(incident: Incident) -> frozenset[str]:
    if incident.metric == "close_wait":
        return frozenset({"back_close_wait", "front_close_wait"})
    return frozenset({TARGET_FIELDS[incident.metric]}) if incident.metric in TARGET_FIELDS else frozenset()


def agrees(top: Sequence[str], involved: frozenset[str]) -> bool:
    """Whether any of the ``top`` features stands for one of the ``involved`` record fields."""
    return any(field in involved for feature in top for field in FEATURE_RECORD_FIELDS.get(feature, (feature,)))


class _ExplainingPredictor:
    """The replay's Predictor, explaining the first qualifying alert of each incident as the replay goes."""

    def __init__(self, predictor: Predictor, service: ExplainService, incidents: Sequence[Incident],
                 involved: Sequence[frozenset[str]]) -> None:
        self.predictor, self.service = predictor, service
        self.forecaster = predictor.forecaster
        self.incidents, self.involved = incidents, involved
        self.tops: dict[int, list[str]] = {}

    def tick(self, windows, at):
        result = self.predictor.tick(windows, at)
        now = int(at.timestamp())
        for event in result.events:
            if event.event_type not in _ALERTING or event.new_level < AlertLevel.WARNING:
                continue
            for i, incident in enumerate(self.incidents):
                if (i in self.tops or not self.involved[i] or incident.server_name != event.server_name
                        or not now <= incident.start <= now + HORIZON_8H_S):
                    continue
                body = self.service.explain_in(result, event.server_name)
                self.tops[i] = [f["feature"] for f in body["shap"].get("top_features", [])[:3]]
        return result


def evaluate_explanations(
    forecaster, series: Mapping[str, ServerSeries], start_epoch_s: int, profiles: ProfileResolver,
    labels_document: object | None = None, tick_minutes: int = 30, capacity: int = 2880, nsamples: int = 128,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (the ``--incidents`` report, the ``explain`` report) from one replay."""
    end = max(int(s.ts.max()) for s in series.values())
    records = records_between(series, start_epoch_s - WARM_UP_S, end)
    if labels_document is not None:
        incidents = incidents_from_labels(labels_document)
        involved = involved_from_labels(labels_document)
    else:
        incidents = incidents_in_records(records, profiles)
        involved = [involved_from_breach(i) for i in incidents]
    predictor = Predictor(forecaster, profiles)
    service = ExplainService(predictor, [ShapExplainer(nsamples=nsamples)], precompute_max=0)
    explaining = _ExplainingPredictor(predictor, service, incidents, involved)
    run = replay(records, explaining, capacity=capacity, tick_steps=max(1, tick_minutes // 5),  # type: ignore[arg-type]
                 start_epoch_s=start_epoch_s)
    report = grade(run, incidents)
    report["incident_source"] = "labels" if labels_document is not None else "limit breaches in the data"
    report["tick_minutes"] = tick_minutes
    hits = [agrees(top, involved[i]) for i, top in explaining.tops.items()]
    explain = {
        "agreement_top3": round(sum(hits) / len(hits), 4) if hits else None,
        "explained": len(hits),
        "incidents_with_metrics": sum(1 for m in involved if m),
        "explained_output": "forecast peak of the risk driver (p50, 8 h)",
        "nsamples": nsamples,
    }
    return report, explain
