"""What the HTTP sinks share: ISO 8601 UTC times, the JSON form of an event, and POST with retries."""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from argus.domain.alerts import AlertEvent, AlertLevel
from argus.domain.errors import ConfigurationError

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
#: Statuses worth retrying: the receiver may succeed later. Other 4xx mean the request is wrong.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class DeliveryError(Exception):
    """A sink gave up delivering after its retries."""


def iso_utc(moment: datetime) -> str:
    """Format ``moment`` as ISO 8601 in UTC (``2025-01-15T10:00:00Z``); naive times are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_id(event: AlertEvent) -> str:
    """Return a stable id of ``event``, so receivers can drop the duplicates of at-least-once delivery."""
    key = f"{event.server_name}|{iso_utc(event.at)}|{event.event_type.value}|{event.new_level.value}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def event_body(event: AlertEvent) -> dict[str, object]:
    """Return the JSON form of one alert transition."""
    return {
        "id": event_id(event),
        "at": iso_utc(event.at),
        "server_name": event.server_name,
        "event_type": event.event_type.value,
        "previous_level": event.previous_level.value,
        "level": event.new_level.value,
        "label": event.new_level.label,
        "risk_score": round(event.risk_score, 1),
        "message": event.message,
        "profile": event.profile,
        "metric": event.metric,
        "raised_at": iso_utc(event.raised_at),
        "time_to_issue_minutes": event.time_to_issue_minutes,
    }


def concerns(event: AlertEvent, min_level: AlertLevel) -> bool:
    """Say whether ``event`` touches ``min_level`` or worse (before or after the transition)."""
    return max(event.previous_level.rank, event.new_level.rank) >= min_level.rank


def post_json(
    url: str,
    payload: object,
    *,
    timeout_s: float,
    retries: int,
    backoff_s: float,
    headers: Mapping[str, str] | None = None,
    sign: Callable[[bytes], Mapping[str, str]] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """POST ``payload`` as JSON, retrying network errors and 408/429/5xx with exponential backoff.

    Returns the final HTTP status; raises DeliveryError after ``1 + retries`` failed attempts or
    at once on a status that retrying cannot fix. A timed-out attempt may still have been
    received, so delivery is at least once.
    """
    body = json.dumps(payload, separators=(",", ":")).encode()
    all_headers = {"Content-Type": "application/json", **(headers or {}), **(sign(body) if sign else {})}
    for attempt in range(retries + 1):
        if attempt:
            sleep(min(backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S))
        request = urllib.request.Request(url, data=body, headers=all_headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return response.status
        except urllib.error.HTTPError as ex:
            if ex.code not in RETRYABLE_STATUSES:
                raise DeliveryError(f"POST {url} answered {ex.code}; not retried") from ex
            failure = f"answered {ex.code}"
        except (OSError, http.client.HTTPException) as ex:  # URLError, timeouts, refused, reset
            failure = f"failed: {getattr(ex, 'reason', ex)}"
        log.debug("POST %s %s (attempt %d of %d)", url, failure, attempt + 1, retries + 1)
    raise DeliveryError(f"POST {url} {failure} after {retries + 1} attempt(s)")


def setting_url(section: str, values: Mapping[str, str]) -> str:
    """Read the ``url`` of a sink's settings section; only http and https are accepted."""
    url = values["url"]
    if urllib.parse.urlsplit(url).scheme not in {"http", "https"}:
        raise ConfigurationError(f"ARGUS_SINK_{section.upper()}_URL must be an http(s) URL, got {url!r}")
    return url


def setting_float(section: str, values: Mapping[str, str], key: str, default: float, minimum: float = 0.0) -> float:
    """Read a number from a sink's settings section; a bad value fails start-up naming the variable."""
    raw = values.get(key)
    if raw is None:
        return default
    try:
        number = float(raw)
    except ValueError:
        number = float("nan")
    if not number >= minimum:  # also catches nan
        variable = f"ARGUS_SINK_{section}_{key}".upper()
        raise ConfigurationError(f"{variable} must be a number >= {minimum}, got {raw!r}")
    return number


def setting_int(section: str, values: Mapping[str, str], key: str, default: int, minimum: int = 0) -> int:
    """Read a whole number (a count: retries) from a sink's settings section; "3.5" or "x" fails start-up
    naming the variable, rather than being cut to an integer or read as a float."""
    raw = values.get(key)
    if raw is None:
        return default
    try:
        number = int(raw.strip())
    except ValueError:
        number = None
    if number is None or number < minimum:
        variable = f"ARGUS_SINK_{section}_{key}".upper()
        raise ConfigurationError(f"{variable} must be a whole number >= {minimum}, got {raw!r}")
    return number


def setting_level(section: str, values: Mapping[str, str], default: AlertLevel) -> AlertLevel:
    """Read the ``min_level`` of a sink's settings section (healthy, degraded, warning or critical)."""
    raw = values.get("min_level")
    if raw is None:
        return default
    try:
        return AlertLevel(raw.lower())
    except ValueError:
        variable = f"ARGUS_SINK_{section}_MIN_LEVEL".upper()
        raise ConfigurationError(f"{variable} must be degraded, warning or critical, got {raw!r}") from None
