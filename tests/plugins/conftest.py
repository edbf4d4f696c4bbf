"""A tiny HTTP receiver on 127.0.0.1 for the sink tests, and alert builders."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import attrs
import pytest

from argus.domain.alerts import ActiveAlert, AlertEvent, AlertLevel, EventType

AT = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)


@attrs.define
class Received:
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> object:
        return json.loads(self.raw)


@attrs.define
class Receiver:
    """Records every POST; answers with the scripted statuses in order, then 200."""

    url: str
    requests: list[Received] = attrs.field(factory=list)
    statuses: list[int] = attrs.field(factory=list)
    delays_s: list[float] = attrs.field(factory=list)  # per request, in order, then none


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.requests.append(Received(self.path, dict(self.headers.items()), raw))
            if receiver.delays_s:
                time.sleep(receiver.delays_s.pop(0))
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    return Handler


@pytest.fixture
def receiver(monkeypatch) -> Iterator[Receiver]:
    """An HTTP server on a free 127.0.0.1 port, shut down after the test."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")  # a CI proxy must not see loopback requests
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    receiver = Receiver(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


def alert_event(
    server: str = "ppdb001",
    event_type: EventType = EventType.RAISED,
    previous: AlertLevel = AlertLevel.HEALTHY,
    new: AlertLevel = AlertLevel.WARNING,
    minutes_later: int = 0,
    **fields: object,
) -> AlertEvent:
    """One alert transition of ``server``, ``minutes_later`` after 10:00 UTC on 2025-01-15."""
    values: dict[str, object] = {
        "risk_score": 72.0, "message": "Memory exhaustion predicted in 45 minutes", "profile": "database",
        "raised_at": AT, "time_to_issue_minutes": 45.0, "metric": "mem_pct", **fields,
    }
    return AlertEvent(at=AT + timedelta(minutes=minutes_later), server_name=server, event_type=event_type,
                      previous_level=previous, new_level=new, **values)  # type: ignore[arg-type]


def active_alert(server: str = "ppdb001", level: AlertLevel = AlertLevel.WARNING, **fields: object) -> ActiveAlert:
    values: dict[str, object] = {
        "risk_score": 72.0, "profile": "database", "message": "Memory exhaustion predicted in 45 minutes",
        "raised_at": AT, "time_to_issue_minutes": 45.0, "metric": "mem_pct", **fields,
    }
    return ActiveAlert(server_name=server, level=level, **values)  # type: ignore[arg-type]
