"""LogAlertSink: every alert transition as one log line (always on)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from argus.domain.alerts import ActiveAlert, AlertEvent, AlertLevel

ALERT_LOG = logging.getLogger("argus.alerts")


class LogAlertSink:
    """Logs each transition: WARNING when it touches warning or critical, INFO otherwise."""

    name = "log"

    def __init__(self, logger: logging.Logger = ALERT_LOG) -> None:
        self.logger = logger

    def send(self, event: AlertEvent) -> None:
        worst = max(event.previous_level, event.new_level)
        severity = logging.WARNING if worst >= AlertLevel.WARNING else logging.INFO
        self.logger.log(
            severity, "alert %s %s: %s -> %s, risk %.0f (%s): %s",
            event.event_type.value, event.server_name, event.previous_level.value, event.new_level.value,
            event.risk_score, event.profile, event.message,
        )

    def resend(self, active: Sequence[ActiveAlert]) -> None:
        return None  # the log already has every transition
