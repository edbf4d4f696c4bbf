"""JsonLinesFileSink: each alert transition appended to a file as one JSON object per line."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from argus.domain.alerts import ActiveAlert, AlertEvent


def event_line(event: AlertEvent) -> str:
    """Return ``event`` as one line of JSON (ISO 8601 times, levels by name)."""
    return json.dumps({
        "at": event.at.isoformat(),
        "server_name": event.server_name,
        "event_type": event.event_type.value,
        "previous_level": event.previous_level.value,
        "level": event.new_level.value,
        "risk_score": event.risk_score,
        "message": event.message,
        "profile": event.profile,
        "metric": event.metric,
    })


class JsonLinesFileSink:
    """An ``AlertSink`` (argus.ports.alerting) writing to a local file; raising on I/O errors."""

    name = "example_file"

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, event: AlertEvent) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as file:
            file.write(event_line(event) + "\n")

    def resend(self, active: Sequence[ActiveAlert]) -> None:
        return None  # the file already holds every transition
