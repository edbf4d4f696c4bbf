"""Per-key, per-endpoint-group rate limits with the `limits` library (memory or Redis storage)."""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Mapping

import attrs
import limits
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from argus.domain.errors import ConfigurationError

log = logging.getLogger(__name__)

#: The reference's table. GET /predictions, /alerts, /explain, /historical: 30/min; admin 10/min.
#: ``auth_failures`` is ours: wrong or missing API keys per client address, then 429 until the window frees.
DEFAULT_LIMITS: Mapping[str, str] = {
    "feed": "60/minute",
    "predictions": "30/minute",
    "alerts": "30/minute",
    "explain": "30/minute",
    "historical": "30/minute",
    "admin": "10/minute",
    "remote_write": "6000/minute",  # ours: Prometheus shards, ~20 requests/s for 1,000 hosts scraped every 15 s
    "otlp": "6000/minute",  # ours: OTLP exporters, one request a host each interval (60 s by default)
    "auth_failures": "10/minute",
}


def parse_limits(spec: str) -> dict[str, limits.RateLimitItem]:
    """Parse ``ARGUS_RATE_LIMITS`` (``feed=600/minute,predictions=120/minute``) over the defaults."""
    chosen = dict(DEFAULT_LIMITS)
    for part in filter(None, (p.strip() for p in spec.split(","))):
        group, sep, value = part.partition("=")
        group, value = group.strip(), value.strip()
        if not sep or group not in DEFAULT_LIMITS:
            raise ConfigurationError(
                f"ARGUS_RATE_LIMITS: expected GROUP=LIMIT with GROUP in {sorted(DEFAULT_LIMITS)}, got {part!r}"
            )
        chosen[group] = value
    try:
        return {group: limits.parse(value) for group, value in chosen.items()}
    except ValueError as ex:
        raise ConfigurationError(f"ARGUS_RATE_LIMITS: {ex}") from None


@attrs.frozen
class Verdict:
    """Whether a request may proceed and, if not, how many seconds until it may."""

    allowed: bool
    retry_after_s: int = 0


class RateLimiter:
    """A moving window per (identity, group): API key and endpoint group, or client address for failed logins."""

    def __init__(self, storage_url: str, spec: str = "") -> None:
        self._limits = parse_limits(spec)
        self._storage = storage_from_string(storage_url)
        self._limiter = MovingWindowRateLimiter(self._storage)
        self.storage_url = storage_url
        self._last_warning = -math.inf

    def hit(self, group: str, identity: str) -> Verdict:
        """Count one request of ``group`` for ``identity`` (an API key, an address); say if it is within the limit."""
        item, hashed = self._limits[group], _hashed(identity)
        try:
            if self._limiter.hit(item, "argus", group, hashed):
                return Verdict(True)
            stats = self._limiter.get_window_stats(item, "argus", group, hashed)
        except Exception as ex:  # noqa: BLE001 - storage down: fail open, losing no monitoring data
            self._warn_storage_down(ex)
            return Verdict(True)
        return Verdict(False, max(1, math.ceil(stats.reset_time - time.time())))

    def check(self, group: str, identity: str) -> Verdict:
        """Say whether ``identity`` has room left in ``group``'s window, without counting anything."""
        item, hashed = self._limits[group], _hashed(identity)
        try:
            stats = self._limiter.get_window_stats(item, "argus", group, hashed)
        except Exception as ex:  # noqa: BLE001 - storage down: fail open, as hit() does
            self._warn_storage_down(ex)
            return Verdict(True)
        if stats.remaining > 0:
            return Verdict(True)
        return Verdict(False, max(1, math.ceil(stats.reset_time - time.time())))

    def _warn_storage_down(self, ex: Exception) -> None:
        now = time.monotonic()
        if now - self._last_warning > 60:
            self._last_warning = now
            log.error("rate-limit storage %s unreachable, not limiting: %s", self.storage_url, ex)

    def reset(self) -> None:
        """Forget every counter (tests and operators clearing a lock-out)."""
        self._storage.reset()


def _hashed(identity: str) -> str:
    """Keys (and addresses) are hashed before they reach storage."""
    return hashlib.sha256(identity.encode()).hexdigest()[:24]
