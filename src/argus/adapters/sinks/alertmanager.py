"""AlertmanagerSink: Argus alerts as Prometheus Alertmanager alerts (``POST /api/v2/alerts``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from argus.adapters.sinks.wire import (
    concerns,
    iso_utc,
    post_json,
    setting_float,
    setting_int,
    setting_level,
    setting_url,
)
from argus.domain.alerts import ActiveAlert, AlertEvent, AlertLevel, EventType

ALERT_NAME = "ArgusRisk"
SEVERITY = {AlertLevel.CRITICAL: "critical", AlertLevel.WARNING: "warning",
            AlertLevel.DEGRADED: "info", AlertLevel.HEALTHY: "none"}

Labels = dict[str, str]


def alert_labels(server: str, level: AlertLevel, profile: str, metric: str | None) -> Labels:
    """Return the label set that identifies one alert in Alertmanager (a new level is a new alert)."""
    labels = {"alertname": ALERT_NAME, "server": server, "level": level.value, "profile": profile,
              "severity": SEVERITY[level]}
    if metric:
        labels["metric"] = metric
    return labels


def annotations(message: str, risk_score: float, time_to_issue_minutes: float | None) -> dict[str, str]:
    notes = {"summary": message, "risk_score": f"{risk_score:.0f}"}
    if time_to_issue_minutes is not None:
        notes["time_to_issue"] = f"{round(time_to_issue_minutes)} minutes"
    return notes


class AlertmanagerSink:
    """Posts alerts at ``min_level`` or worse; ``resend`` keeps them firing, resolution sets ``endsAt``.

    Alertmanager identifies an alert by its labels, and ``level`` and ``metric`` are labels, so
    the sink remembers what it posted per server: an escalation resolves the old label set and
    fires the new one, and a server missing from ``resend``'s active alerts is resolved too.
    """

    name = "alertmanager"

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        retries: int = 2,
        backoff_s: float = 1.0,
        min_level: AlertLevel = AlertLevel.WARNING,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoint = url.rstrip("/") + "/api/v2/alerts"
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self.min_level, self.now, self.sleep = min_level, now, sleep
        self.firing: dict[str, Labels] = {}  # server -> labels last posted as firing

    @classmethod
    def from_settings(cls, values: Mapping[str, str]) -> AlertmanagerSink:
        """Build from the ``alertmanager`` section: url, timeout_s, retries, backoff_s, min_level."""
        return cls(
            setting_url("alertmanager", values),
            timeout_s=setting_float("alertmanager", values, "timeout_s", 5.0, minimum=0.001),
            retries=setting_int("alertmanager", values, "retries", 2),
            backoff_s=setting_float("alertmanager", values, "backoff_s", 1.0),
            min_level=setting_level("alertmanager", values, AlertLevel.WARNING),
        )

    def send(self, event: AlertEvent) -> None:
        if not concerns(event, self.min_level):
            return
        previous = self.firing.pop(event.server_name, None)
        notes = annotations(event.message, event.risk_score, event.time_to_issue_minutes)
        alerts = []
        if event.event_type is EventType.RESOLVED or event.new_level < self.min_level:
            labels = previous or alert_labels(event.server_name, event.previous_level, event.profile, event.metric)
            alerts.append(self._alert(labels, notes, event.raised_at, ends_at=event.at))
        else:
            labels = alert_labels(event.server_name, event.new_level, event.profile, event.metric)
            if previous is not None and previous != labels:
                alerts.append(self._alert(previous, notes, event.raised_at, ends_at=event.at))
            alerts.append(self._alert(labels, notes, event.raised_at))
            self.firing[event.server_name] = labels
        self._post(alerts)

    def resend(self, active: Sequence[ActiveAlert]) -> None:
        now = self.now()
        alerts, firing = [], {}
        for alert in active:
            if alert.level < self.min_level:
                continue
            labels = alert_labels(alert.server_name, alert.level, alert.profile, alert.metric)
            notes = annotations(alert.message, alert.risk_score, alert.time_to_issue_minutes)
            alerts.append(self._alert(labels, notes, alert.raised_at))
            firing[alert.server_name] = labels
        stale = [labels for server, labels in self.firing.items() if firing.get(server) != labels]
        gone = {"summary": "No longer active in Argus"}
        alerts += [self._alert(labels, gone, None, ends_at=now) for labels in stale]  # missed resolutions
        self.firing = firing
        if alerts:
            self._post(alerts)

    def _alert(
        self, labels: Labels, notes: Mapping[str, str], starts_at: datetime | None, ends_at: datetime | None = None
    ) -> dict[str, object]:
        alert: dict[str, object] = {"labels": labels, "annotations": dict(notes)}
        if starts_at is not None:
            alert["startsAt"] = iso_utc(starts_at)
        if ends_at is not None:
            alert["endsAt"] = iso_utc(ends_at)
        return alert

    def _post(self, alerts: list[dict[str, object]]) -> None:
        post_json(self.endpoint, alerts, timeout_s=self.timeout_s, retries=self.retries,
                  backoff_s=self.backoff_s, sleep=self.sleep)
