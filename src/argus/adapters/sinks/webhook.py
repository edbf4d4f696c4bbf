"""WebhookAlertSink: each alert transition as a JSON POST, retried with backoff, optionally signed."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence

from argus.adapters.sinks.wire import (
    concerns,
    event_body,
    event_id,
    post_json,
    setting_float,
    setting_int,
    setting_level,
    setting_url,
)
from argus.domain.alerts import ActiveAlert, AlertEvent, AlertLevel

SIGNATURE_HEADER = "X-Argus-Signature"  # "sha256=<hex HMAC-SHA256 of the raw body>"
EVENT_ID_HEADER = "X-Argus-Event-Id"  # the same on every retry: receivers drop duplicates with it


def signature(secret: str, body: bytes) -> str:
    """Return the signature header value of ``body``: ``sha256=`` and the hex HMAC-SHA256 under ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookAlertSink:
    """POSTs each transition at ``min_level`` or worse as JSON (see ``wire.event_body``), at least once."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        timeout_s: float = 5.0,
        retries: int = 3,
        backoff_s: float = 1.0,
        min_level: AlertLevel = AlertLevel.WARNING,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url, self.secret, self.min_level = url, secret, min_level
        self.timeout_s, self.retries, self.backoff_s, self.sleep = timeout_s, retries, backoff_s, sleep

    @classmethod
    def from_settings(cls, values: Mapping[str, str]) -> WebhookAlertSink:
        """Build from the ``webhook`` section: url, secret, timeout_s, retries, backoff_s, min_level."""
        return cls(
            setting_url("webhook", values),
            secret=values.get("secret"),
            timeout_s=setting_float("webhook", values, "timeout_s", 5.0, minimum=0.001),
            retries=setting_int("webhook", values, "retries", 3),
            backoff_s=setting_float("webhook", values, "backoff_s", 1.0),
            min_level=setting_level("webhook", values, AlertLevel.WARNING),
        )

    def send(self, event: AlertEvent) -> None:
        if not concerns(event, self.min_level):
            return
        post_json(
            self.url, event_body(event), timeout_s=self.timeout_s, retries=self.retries, backoff_s=self.backoff_s,
            headers={EVENT_ID_HEADER: event_id(event)}, sign=self._sign if self.secret else None, sleep=self.sleep,
        )

    def resend(self, active: Sequence[ActiveAlert]) -> None:
        return None  # every transition was delivered at least once

    def _sign(self, body: bytes) -> dict[str, str]:
        return {SIGNATURE_HEADER: signature(self.secret or "", body)}
