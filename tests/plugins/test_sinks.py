"""Built-in sinks against a real HTTP receiver on 127.0.0.1: webhook, Alertmanager, log."""

from __future__ import annotations

import hashlib
import hmac
import logging

import pytest

from argus.adapters.sinks.alertmanager import AlertmanagerSink
from argus.adapters.sinks.log import LogAlertSink
from argus.adapters.sinks.webhook import EVENT_ID_HEADER, SIGNATURE_HEADER, WebhookAlertSink
from argus.adapters.sinks.wire import DeliveryError
from argus.domain.alerts import AlertLevel, EventType
from tests.plugins.conftest import active_alert, alert_event


class RecordingSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def test_webhook_retries_with_exponential_backoff_then_succeeds(receiver):
    receiver.statuses = [503, 502]
    sleep = RecordingSleep()
    WebhookAlertSink(receiver.url, retries=3, backoff_s=0.5, sleep=sleep).send(alert_event())
    assert len(receiver.requests) == 3
    assert sleep.calls == [0.5, 1.0]
    ids = {r.headers[EVENT_ID_HEADER] for r in receiver.requests}
    assert len(ids) == 1  # the same id on every attempt: the receiver can drop duplicates


def test_webhook_retries_a_timed_out_attempt(receiver):
    receiver.delays_s = [0.5]
    WebhookAlertSink(receiver.url, timeout_s=0.1, retries=1, backoff_s=0.0).send(alert_event())
    assert len(receiver.requests) == 2  # the first may have arrived too: at least once


def test_webhook_gives_up_after_its_retries(receiver):
    receiver.statuses = [500, 500, 500]
    with pytest.raises(DeliveryError, match="500 after 3 attempt"):
        WebhookAlertSink(receiver.url, retries=2, backoff_s=0.0).send(alert_event())


def test_webhook_does_not_retry_a_rejected_request(receiver):
    receiver.statuses = [400]
    with pytest.raises(DeliveryError, match="400"):
        WebhookAlertSink(receiver.url, retries=3, backoff_s=0.0).send(alert_event())
    assert len(receiver.requests) == 1


def test_webhook_posts_the_event_as_json_with_utc_times(receiver):
    WebhookAlertSink(receiver.url).send(alert_event(new=AlertLevel.CRITICAL, risk_score=91.26))
    body = receiver.requests[0].json
    assert receiver.requests[0].headers["Content-Type"] == "application/json"
    assert body["server_name"] == "ppdb001" and body["event_type"] == "raised"
    assert body["level"] == "critical" and body["previous_level"] == "healthy" and body["label"] == "🔴 Critical"
    assert body["at"] == "2025-01-15T10:00:00Z" and body["raised_at"] == "2025-01-15T10:00:00Z"
    assert body["risk_score"] == 91.3 and body["time_to_issue_minutes"] == 45.0 and body["metric"] == "mem_pct"


def test_webhook_signs_the_raw_body_with_hmac_sha256(receiver):
    WebhookAlertSink(receiver.url, secret="s3cret").send(alert_event())
    request = receiver.requests[0]
    expected = "sha256=" + hmac.new(b"s3cret", request.raw, hashlib.sha256).hexdigest()
    assert request.headers[SIGNATURE_HEADER] == expected


def test_webhook_without_a_secret_sends_no_signature(receiver):
    WebhookAlertSink(receiver.url).send(alert_event())
    assert SIGNATURE_HEADER not in receiver.requests[0].headers


def test_webhook_skips_transitions_below_its_min_level(receiver):
    sink = WebhookAlertSink(receiver.url)  # min_level warning
    sink.send(alert_event(new=AlertLevel.DEGRADED))
    assert receiver.requests == []
    sink.send(alert_event(event_type=EventType.DE_ESCALATED, previous=AlertLevel.WARNING, new=AlertLevel.DEGRADED))
    assert len(receiver.requests) == 1  # leaving warning is news


def test_alertmanager_posts_labels_annotations_and_starts_at(receiver):
    AlertmanagerSink(receiver.url + "/").send(alert_event(new=AlertLevel.CRITICAL, risk_score=88.0))
    request = receiver.requests[0]
    assert request.path == "/api/v2/alerts"
    assert request.json == [{
        "labels": {"alertname": "ArgusRisk", "server": "ppdb001", "level": "critical", "profile": "database",
                   "metric": "mem_pct", "severity": "critical"},
        "annotations": {"summary": "Memory exhaustion predicted in 45 minutes", "risk_score": "88",
                        "time_to_issue": "45 minutes"},
        "startsAt": "2025-01-15T10:00:00Z",
    }]


def test_alertmanager_resolution_ends_the_alert_it_fired(receiver):
    sink = AlertmanagerSink(receiver.url)
    sink.send(alert_event())
    sink.send(alert_event(event_type=EventType.RESOLVED, previous=AlertLevel.WARNING, new=AlertLevel.HEALTHY,
                          minutes_later=30, metric=None))
    fired, resolved = (r.json[0] for r in receiver.requests)
    assert resolved["labels"] == fired["labels"]
    assert resolved["endsAt"] == "2025-01-15T10:30:00Z" and "endsAt" not in fired


def test_alertmanager_escalation_ends_the_old_level_and_fires_the_new(receiver):
    sink = AlertmanagerSink(receiver.url)
    sink.send(alert_event())
    sink.send(alert_event(event_type=EventType.ESCALATED, previous=AlertLevel.WARNING, new=AlertLevel.CRITICAL,
                          minutes_later=10))
    ended, fired = receiver.requests[1].json
    assert ended["labels"]["level"] == "warning" and ended["endsAt"] == "2025-01-15T10:10:00Z"
    assert fired["labels"]["level"] == "critical" and "endsAt" not in fired


def test_alertmanager_resend_keeps_active_alerts_firing_and_ends_the_rest(receiver):
    sink = AlertmanagerSink(receiver.url)
    sink.send(alert_event(server="ppweb001"))
    sink.resend([active_alert("ppdb001", AlertLevel.CRITICAL), active_alert("ppml0001", AlertLevel.DEGRADED)])
    posted = {a["labels"]["server"]: a for a in receiver.requests[-1].json}
    assert set(posted) == {"ppdb001", "ppweb001"}  # degraded is under min_level; ppweb001 resolved
    assert posted["ppdb001"]["labels"]["level"] == "critical" and "endsAt" not in posted["ppdb001"]
    assert "endsAt" in posted["ppweb001"]
    sink.resend([active_alert("ppdb001", AlertLevel.CRITICAL)])
    assert [a["labels"]["server"] for a in receiver.requests[-1].json] == ["ppdb001"]


def test_alertmanager_resend_with_nothing_active_posts_nothing(receiver):
    AlertmanagerSink(receiver.url).resend([])
    assert receiver.requests == []


def test_log_sink_warns_for_warning_and_critical_and_informs_otherwise(caplog):
    sink = LogAlertSink()
    with caplog.at_level(logging.INFO, logger="argus.alerts"):
        sink.send(alert_event(new=AlertLevel.CRITICAL))
        sink.send(alert_event(new=AlertLevel.DEGRADED))
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.INFO]
    assert "ppdb001" in caplog.records[0].getMessage() and "Memory exhaustion" in caplog.records[0].getMessage()
