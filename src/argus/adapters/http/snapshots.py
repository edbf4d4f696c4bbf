"""Render a tick into the pre-built JSON bodies web workers serve (/predictions/current, /alerts/active).

Rendering happens once per tick in the engine, so GETs cost a lookup whatever the fleet size.
Extras beyond the reference shape are additive: quantile bands, the other forecast targets,
time to issue, probabilities, anomaly and the driving metric, the record fields the server's
source lacks (``missing_fields``); in the summary, the expected number of incidents and the servers
above 50 % per horizon (see FleetSummary for what each one means).
"""

from __future__ import annotations

import functools
import json
import math
from datetime import datetime

import attrs
import numpy as np
import orjson

from argus.domain.alerts import ActiveAlert, AlertLevel
from argus.domain.forecast import TARGETS, Forecast
from argus.domain.ingestion import WARMUP_MIN_RECORDS
from argus.domain.metrics import FIELD_INDEX, MetricsWindow, wire_time
from argus.domain.partitions import PARTITIONS, body_key, partition_of
from argus.domain.risk import FleetSummary, RiskAssessment, current_values, format_duration
from argus.domain.services import StatusReport
from argus.domain.ticks import TickResult

#: The reference body's own forecast keys (with their p10/p90 bands); every other target follows as its median.
REFERENCE_TARGETS = ("cpu_pct", "mem_pct")
OTHER_TARGETS = tuple(target for target in TARGETS if target not in REFERENCE_TARGETS)




def render_tick(result: TickResult) -> dict[str, str]:
    """Return the published bodies of a tick, keyed by name ("predictions", "alerts")."""
    return {
        "predictions": orjson.dumps(render_predictions(result)).decode(),
        "alerts": orjson.dumps(render_alerts(result.active, result.at)).decode(),
    }


def render_partitions(result: TickResult, partitions: int = PARTITIONS) -> dict[str, str]:
    """A sharded engine's bodies: each partition's /predictions/current entries, merged by the web workers."""
    grouped: dict[int, dict] = {}
    for assessment in sorted(result.assessments, key=lambda a: a.server_name):
        name = assessment.server_name
        entries = grouped.setdefault(partition_of(name, partitions), {})
        entries[name] = _server(assessment, result.windows[name], result.forecasts.get(name))
    return {body_key(p): orjson.dumps(entries).decode() for p, entries in grouped.items()}


def render_predictions(result: TickResult) -> dict:
    if not result.assessments:
        return _insufficient(result)
    predictions = {}
    for assessment in sorted(result.assessments, key=lambda a: a.server_name):
        window = result.windows[assessment.server_name]
        forecast = result.forecasts.get(assessment.server_name)
        predictions[assessment.server_name] = _server(assessment, window, forecast)
    return predictions_body(predictions, result.summary, result.servers_warming_up, result.active, result.at,
                             result.model_name)


def predictions_body(predictions: dict, summary: FleetSummary, warming_up: int, active: list[ActiveAlert],
                      at: datetime | float, model: str) -> dict:
    alerts = [
        {"server_name": a.server_name, "level": a.level.value, "risk_score": a.risk_score, "message": a.message}
        for a in active
    ]
    return {
        "predictions": predictions,
        "summary": {
            "total_servers": summary.total_servers, "critical": summary.critical, "warning": summary.warning,
            "degraded": summary.degraded, "healthy": summary.healthy, "fleet_health": summary.fleet_health,
            "prob_30m": summary.prob_30m, "prob_8h": summary.prob_8h,
            "expected_incidents_30m": summary.expected_incidents_30m,
            "expected_incidents_8h": summary.expected_incidents_8h,
            "servers_above_50pct_30m": summary.servers_above_50pct_30m,
            "servers_above_50pct_8h": summary.servers_above_50pct_8h,
            "servers_warming_up": warming_up,
        },
        "alerts": alerts,
        "timestamp": wire_time(at),
        "model": model,
    }


def _insufficient(result: TickResult) -> dict:
    return insufficient_body(result.records_in_windows, result.min_history_steps)


def insufficient_body(have: int, min_history_steps: int) -> dict:
    if have < WARMUP_MIN_RECORDS:
        message = f"Need at least {WARMUP_MIN_RECORDS} records, have {have}"
    else:
        message = (f"No server has {min_history_steps} consecutive records "
                   f"({min_history_steps * 5} minutes of history) yet")
    return {"error": "insufficient_data", "message": message, "predictions": {}}


def _server(assessment: RiskAssessment, window: MetricsWindow, forecast: Forecast | None) -> dict:
    level = assessment.level
    body = {
        "risk_score": assessment.score,
        "profile": assessment.profile,
        "alert": {"level": level.value, "score": assessment.score, "color": level.color, "emoji": level.emoji,
                  "label": level.label},
        "display_metrics": _display_metrics(window),
        "forecast": _forecast(forecast),
        "message": assessment.message,
        "time_to_issue": _time_to_issue(assessment),
        "time_to_issue_minutes": assessment.time_to_issue_minutes,
        "time_to_issue_basis": _issue_basis(assessment),
        "time_to_issue_metric": assessment.issue_metric,
        "prob_30m": round(assessment.prob_30m, 4),
        "prob_8h": round(assessment.prob_8h, 4),
        "driver": assessment.driver.metric if assessment.driver else None,
        "anomaly": assessment.anomaly,
        "maintenance": assessment.maintenance,
        "last_observation": wire_time(int(window.timestamps[-1])),
        "observed": _observed(window),
        "missing_fields": window.missing_fields(),
    }
    return body


def _observed(window: MetricsWindow) -> dict[str, float]:
    """The latest value of each forecast target, as forecast (cpu_pct = 100 - idle); a missing field is left out."""
    return {t: round(v, 2) for t, v in current_values(window).items() if t in TARGETS and math.isfinite(v)}


def _display_metrics(window: MetricsWindow) -> dict:
    """The reference's three strings, plus what records really carry.

    Records have no disk I/O rate, so ``disk_io`` is ``"n/a"`` rather than a made-up number;
    ``disk`` is disk usage and ``network`` the network in + out rate (``"n/a"`` when the latest
    record lacks both directions; the one it has when it lacks one).
    """
    row = window.values[-1]
    cpu = 100.0 - float(row[FIELD_INDEX["cpu_idle_pct"]])
    rates = [float(row[FIELD_INDEX[f]]) for f in ("net_in_mb_s", "net_out_mb_s")]
    known = [r for r in rates if math.isfinite(r)]
    return {
        "cpu": f"{cpu:.1f}%",
        "memory": f"{float(row[FIELD_INDEX['mem_used_pct']]):.1f}%",
        "disk_io": "n/a",
        "disk": f"{float(row[FIELD_INDEX['disk_usage_pct']]):.1f}%",
        "network": f"{sum(known):.1f} MB/s" if known else "n/a",
    }


def _forecast(forecast: Forecast | None) -> dict:
    if forecast is None:
        return {"cpu_pct": [], "mem_pct": [], "timestamps": []}
    body = {
        "cpu_pct": _rounded(forecast.p50("cpu_pct")),
        "mem_pct": _rounded(forecast.p50("mem_pct")),
        "timestamps": [_wire_epoch(ts) for ts in forecast.timestamps.tolist()],
        "bands": {
            target: {"p10": _rounded(forecast.quantile(target, 0.1)), "p90": _rounded(forecast.quantile(target, 0.9))}
            for target in REFERENCE_TARGETS
        },
    }
    for target in OTHER_TARGETS:
        if target in forecast.values:
            body[target] = _rounded(forecast.p50(target))
    return body


def _rounded(values) -> list[float | None]:
    """Values to one decimal, None where not finite: in numpy, as 1,000 servers' paths are ~1 M numbers a tick."""
    rounded = np.round(np.asarray(values, dtype=np.float64), 1)
    finite = np.isfinite(rounded)
    if finite.all():
        return rounded.tolist()
    return [v if ok else None for v, ok in zip(rounded.tolist(), finite.tolist(), strict=True)]


@functools.lru_cache(maxsize=4096)
def _wire_epoch(epoch_s: int) -> str | None:
    """``wire_time`` of an epoch second, cached: every server's forecast of a tick has (nearly) the same steps."""
    return wire_time(int(epoch_s))


def _time_to_issue(assessment: RiskAssessment) -> str | None:
    """``"45 minutes"`` when the median crosses a limit; ``"possible in ~3 hours"`` when only the p90 does."""
    minutes = assessment.time_to_issue_minutes
    if minutes is None:
        return None
    return f"possible in ~{format_duration(minutes)}" if assessment.time_to_issue_possible else format_duration(minutes)


def _issue_basis(assessment: RiskAssessment) -> str | None:
    if assessment.time_to_issue_minutes is None:
        return None
    return "p90" if assessment.time_to_issue_possible else "median"


def render_alerts(active: list[ActiveAlert], at: datetime) -> dict:
    """The /alerts/active body."""
    return {
        "timestamp": wire_time(at),
        "count": len(active),
        "alerts": [
            {
                "server_name": a.server_name,
                "level": a.level.value,
                "risk_score": a.risk_score,
                "profile": a.profile,
                "message": a.message,
                "time_to_issue": _alert_time_to_issue(a),
                "metric": a.metric,
                "raised_at": wire_time(a.raised_at),
            }
            for a in active
        ],
    }


def _alert_time_to_issue(alert: ActiveAlert) -> str | None:
    """``"45 minutes"`` for a predicted crossing, ``"now"`` when a limit is already crossed, else None."""
    if alert.time_to_issue_minutes is not None:
        return format_duration(alert.time_to_issue_minutes)
    return "now" if alert.level is AlertLevel.CRITICAL and " now" in alert.message else None


def render_status(report: StatusReport) -> str:
    """Return the published status body: the report's fields in order, ``last_prediction`` on the wire.

    ``json.dumps`` (not orjson) keeps the bytes the engine has always published.
    """
    return json.dumps({**attrs.asdict(report, recurse=False), "last_prediction": wire_time(report.last_prediction)})
