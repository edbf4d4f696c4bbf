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
DEFAULT_LIMITS: Mapping[str, str] = {
    "feed": "60/minute",
    "predictions": "30/minute",
    "alerts": "30/minute",
    "explain": "30/minute",
    "historical": "30/minute",
    "admin": "10/minute",
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
    """A moving window per (API key, endpoint group); keys are hashed before they reach storage."""

    def __init__(self, storage_url: str, spec: str = "") -> None:
        self._limits = parse_limits(spec)
        self._storage = storage_from_string(storage_url)
        self._limiter = MovingWindowRateLimiter(self._storage)
        self.storage_url = storage_url
        self._last_warning = -math.inf

    def limit_for(self, group: str) -> limits.RateLimitItem:
        return self._limits[group]

    def hit(self, group: str, api_key: str) -> Verdict:
        """Count one request of ``group`` for ``api_key`` and say whether it is within the limit."""
        item = self._limits[group]
        identity = hashlib.sha256(api_key.encode()).hexdigest()[:24]
        try:
            if self._limiter.hit(item, "argus", group, identity):
                return Verdict(True)
            stats = self._limiter.get_window_stats(item, "argus", group, identity)
        except Exception as ex:  # noqa: BLE001 - storage down: fail open, losing no monitoring data
            self._warn_storage_down(ex)
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
