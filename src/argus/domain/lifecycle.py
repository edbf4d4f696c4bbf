"""Alert lifecycle: raised, escalated, de-escalated, resolved, with hysteresis against flapping.

Escalation is immediate (a worse level is news). Going down needs the score to sit more than
``margin`` points below the current level's floor for ``calm_ticks`` consecutive ticks, so a score
hovering at a boundary does not flap. A server in maintenance gets no alert (an open one resolves).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import attrs

from argus.domain.alerts import ActiveAlert, AlertEvent, AlertLevel, EventType
from argus.domain.risk import RiskAssessment


@attrs.define
class _Open:
    alert: ActiveAlert
    calm_ticks: int = 0


class AlertTracker:
    """Turns each tick's assessments into alert transitions and keeps the active alerts."""

    def __init__(self, margin: float = 5.0, calm_ticks: int = 3) -> None:
        self.margin = margin
        self.calm_ticks = calm_ticks
        self._open: dict[str, _Open] = {}

    def restore(self, active: Iterable[ActiveAlert]) -> None:
        """Resume the alerts that were open before a restart (no spurious 'raised' events)."""
        self._open = {alert.server_name: _Open(alert) for alert in active}

    def active(self) -> list[ActiveAlert]:
        """Open alerts, worst first."""
        alerts = (o.alert for o in self._open.values())
        return sorted(alerts, key=lambda a: (-a.level.rank, -a.risk_score, a.server_name))

    def update(self, assessments: Sequence[RiskAssessment], at: datetime) -> list[AlertEvent]:
        """Apply one tick; return the transitions it caused."""
        events = []
        for assessment in assessments:
            event = self._update_one(assessment, at)
            if event is not None:
                events.append(event)
        return events

    def _update_one(self, a: RiskAssessment, at: datetime) -> AlertEvent | None:
        opened = self._open.get(a.server_name)
        current = opened.alert.level if opened else AlertLevel.HEALTHY
        target = AlertLevel.HEALTHY if a.maintenance else a.level
        if target > current:
            kind = EventType.RAISED if opened is None else EventType.ESCALATED
            raised_at = at if opened is None else opened.alert.raised_at
            return self._move(a, at, current, target, kind, raised_at)
        if opened is None:
            return None
        settled = AlertLevel.HEALTHY if a.maintenance else AlertLevel.for_score(a.score)
        if a.maintenance or a.score < current.min_score - self.margin:
            opened.calm_ticks += 1
            if a.maintenance or opened.calm_ticks >= self.calm_ticks:
                kind = EventType.RESOLVED if settled is AlertLevel.HEALTHY else EventType.DE_ESCALATED
                return self._move(a, at, current, settled, kind, opened.alert.raised_at)
        else:
            opened.calm_ticks = 0
        opened.alert = self._alert(a, current, opened.alert.raised_at, opened.alert.peak_level or current,
                                   opened.alert.breached or _over_now(a))
        return None

    def _move(self, a: RiskAssessment, at: datetime, previous: AlertLevel, new: AlertLevel, kind: EventType,
              raised_at: datetime) -> AlertEvent:
        message = "Server in maintenance; alert closed" if a.maintenance and kind is EventType.RESOLVED else a.message
        before = self._open.get(a.server_name)
        peak = max(new, before.alert.peak_level or before.alert.level) if before else new
        breached = _over_now(a) or (before.alert.breached if before else False)
        if new is AlertLevel.HEALTHY:
            self._open.pop(a.server_name, None)
        else:
            self._open[a.server_name] = _Open(self._alert(a, new, raised_at, peak, breached))
        return AlertEvent(
            at=at, server_name=a.server_name, event_type=kind, previous_level=previous, new_level=new,
            risk_score=a.score, message=message, profile=a.profile, raised_at=raised_at,
            time_to_issue_minutes=_predicted_minutes(a), metric=a.driver.metric if a.driver else None,
            cause=_cause(a), peak_level=peak, breached=breached,
        )

    @staticmethod
    def _alert(a: RiskAssessment, level: AlertLevel, raised_at: datetime, peak: AlertLevel,
               breached: bool) -> ActiveAlert:
        return ActiveAlert(
            server_name=a.server_name, level=level, risk_score=a.score, profile=a.profile, message=a.message,
            raised_at=raised_at, time_to_issue_minutes=_predicted_minutes(a),
            metric=a.anomaly_metric if _cause(a) == "anomaly" else (a.driver.metric if a.driver else None),
            peak_level=max(peak, level), breached=breached,
        )


def _predicted_minutes(a: RiskAssessment) -> float | None:
    """The median's crossing time: an alert's time to issue is never a p90-only "possible"."""
    return None if a.time_to_issue_possible else a.time_to_issue_minutes


def _over_now(a: RiskAssessment) -> bool:
    return any(risk.over_now for risk in a.metrics.values())


def _cause(a: RiskAssessment) -> str | None:
    if a.message.endswith("predicted band"):
        return "anomaly"
    return a.driver.cause if a.driver else None
