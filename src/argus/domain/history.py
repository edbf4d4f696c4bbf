"""History: time ranges, what the stored alert events and risk series mean, and their summaries.

Pure: the SQL adapter fetches rows in these shapes; the HTTP edge renders the results.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NamedTuple

import attrs
import numpy as np

from argus.domain.alerts import AlertLevel
from argus.domain.errors import ArgusError

if TYPE_CHECKING:  # the domain names ports only for the type checker (see tests/test_architecture.py)
    from argus.ports.history import HistoryRetention

log = logging.getLogger(__name__)

#: The reference's ``time_range`` values in seconds (``1M`` is 30 days).
TIME_RANGES: Mapping[str, int] = {
    "30m": 30 * 60, "1h": 3600, "8h": 8 * 3600, "1d": 86400, "1w": 7 * 86400, "1M": 30 * 86400,
}

#: The reference's default ``time_range`` per endpoint.
DEFAULT_RANGES: Mapping[str, str] = {
    "summary": "1d", "alerts": "1h", "server": "1d", "environment": "1h", "export": "1d",
}

#: Environment snapshots are thinned evenly to at most this many points.
MAX_SNAPSHOT_POINTS = 300

#: A tick's level counts until the next tick, but for no longer than this: an engine that was down
#: for a day does not make the last level before it last a day.
MAX_SAMPLE_HOLD_S = 600.0

#: ``risk_trend`` is "worsening" (or "improving") when the least-squares line through the risk
#: scores rises (or falls) by at least this many points across the observed span; else "stable".
TREND_THRESHOLD_POINTS = 5.0

#: At least this many ticks are needed to call a trend anything but "stable".
TREND_MIN_SAMPLES = 3


class InvalidTimeRangeError(ArgusError):
    """``time_range`` is not one of the reference's values."""

    code = "invalid_time_range"

    def __init__(self, value: str) -> None:
        permitted = ", ".join(f"'{v}'" for v in TIME_RANGES)
        super().__init__(f"unexpected value; permitted: {permitted}")
        self.value = value


@attrs.frozen
class TimeRange:
    """One of ``30m, 1h, 8h, 1d, 1w, 1M``: the last ``seconds`` before a moment."""

    label: str
    seconds: int

    @classmethod
    def parse(cls, value: str | None, default: str) -> TimeRange:
        """Return the range named ``value`` (``default`` when None); raise InvalidTimeRangeError."""
        label = default if value is None else value
        if label not in TIME_RANGES:
            raise InvalidTimeRangeError(label)
        return cls(label, TIME_RANGES[label])

    def window(self, end_epoch_s: float) -> tuple[float, float]:
        """Return (start, end) epoch seconds of this range ending at ``end_epoch_s``."""
        return end_epoch_s - self.seconds, end_epoch_s


class Trend(enum.Enum):
    """Where a server's risk is heading over a range."""

    IMPROVING = "improving"
    STABLE = "stable"
    WORSENING = "worsening"


class AlertRecord(NamedTuple):
    """One stored alert event, as history reads it back (a tuple: exports read tens of thousands)."""

    at_epoch_s: float
    server_name: str
    event_type: str
    previous_level: str
    new_level: str
    risk_score: float
    message: str
    profile: str
    metric: str | None
    raised_at_epoch_s: float
    resolved_at_epoch_s: float | None  # set on every event of the alert once it resolves
    peak_level: str | None
    breached: bool

    @property
    def resolution_duration_minutes(self) -> float | None:
        """How long the alert this event belongs to lasted, raised to resolved; None while open."""
        if self.resolved_at_epoch_s is None:
            return None
        return round((self.resolved_at_epoch_s - self.raised_at_epoch_s) / 60.0, 1)


@attrs.frozen
class AlertTotals:
    """The alert side of /historical/summary (see docs/history.md for each definition)."""

    total: int
    by_level: Mapping[str, int]
    avg_resolution_minutes: float | None
    incidents_prevented: int


class FleetSnapshot(NamedTuple):
    """The fleet's health on one tick."""

    at_epoch_s: float
    total_servers: int
    critical_count: int
    warning_count: int
    degraded_count: int
    healthy_count: int
    fleet_health: float
    prob_30m: float
    prob_8h: float
    expected_incidents_30m: float | None = None  # None: recorded before the expected counts were stored
    expected_incidents_8h: float | None = None


@attrs.frozen(eq=False)
class RiskSeries:
    """One server's risk on each tick of a range, oldest first (``levels`` hold AlertLevel ranks)."""

    at: np.ndarray  # float64 epoch seconds
    scores: np.ndarray  # float64
    levels: np.ndarray  # int8: 0 healthy, 1 degraded, 2 warning, 3 critical

    def __len__(self) -> int:
        return int(self.at.size)


@attrs.frozen
class ServerReport:
    """What /historical/server/{name} shows (None where the range holds no tick of the server)."""

    alert_count: int
    avg_risk_score: float | None
    max_risk_score: float | None
    time_in_warning_pct: float
    time_in_critical_pct: float
    risk_trend: Trend
    samples: int


def thin_indices(n: int, max_points: int = MAX_SNAPSHOT_POINTS) -> list[int]:
    """Return at most ``max_points`` indices spread evenly over ``range(n)``, first and last kept."""
    if n <= max_points:
        return list(range(n))
    if max_points < 2:
        return [n - 1] if max_points == 1 else []
    return sorted({int(i) for i in np.linspace(0, n - 1, max_points).round()})


def risk_trend(at: np.ndarray, scores: np.ndarray, threshold: float = TREND_THRESHOLD_POINTS) -> Trend:
    """Fit risk = a + b·t by least squares; compare the fitted change over the span with ``threshold``."""
    if at.size < TREND_MIN_SAMPLES:
        return Trend.STABLE
    t = np.asarray(at, dtype=np.float64) - float(at[0])
    span = float(t[-1] - t[0])
    if span <= 0.0:
        return Trend.STABLE
    slope = float(np.polyfit(t, np.asarray(scores, dtype=np.float64), 1)[0])
    change = slope * span
    if change >= threshold:
        return Trend.WORSENING
    if change <= -threshold:
        return Trend.IMPROVING
    return Trend.STABLE


def time_in_levels(series: RiskSeries, start: float, end: float,
                   max_hold_s: float = MAX_SAMPLE_HOLD_S) -> dict[AlertLevel, float]:
    """Return each level's share of [start, end] in percent: a tick's level holds until the next tick."""
    total = end - start
    shares = {level: 0.0 for level in AlertLevel}
    if len(series) == 0 or total <= 0:
        return shares
    following = np.append(series.at[1:], end)
    held = np.clip(np.minimum(following, series.at + max_hold_s) - np.maximum(series.at, start), 0.0, None)
    for level in AlertLevel:
        shares[level] = round(float(held[series.levels == level.rank].sum()) / total * 100.0, 1)
    return shares


def report_server(series: RiskSeries, alert_count: int, start: float, end: float) -> ServerReport:
    """Summarise one server's risk series over [start, end]."""
    shares = time_in_levels(series, start, end)
    empty = len(series) == 0
    return ServerReport(
        alert_count=alert_count,
        avg_risk_score=None if empty else round(float(series.scores.mean()), 1),
        max_risk_score=None if empty else round(float(series.scores.max()), 1),
        time_in_warning_pct=shares[AlertLevel.WARNING],
        time_in_critical_pct=shares[AlertLevel.CRITICAL],
        risk_trend=risk_trend(series.at, series.scores),
        samples=len(series),
    )


class RetentionSweep:
    """The engine's periodic chore: purge history older than ``retention_days`` (a HistoryRetention)."""

    def __init__(self, retention: HistoryRetention, retention_days: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.retention = retention
        self.retention_days = retention_days
        self.clock = clock

    def __call__(self) -> dict[str, int]:
        """Purge once; return the rows deleted per table."""
        deleted = self.retention.purge(self.clock() - self.retention_days * 86400.0)
        if any(deleted.values()):
            log.info("history retention (%d days): deleted %s", self.retention_days, deleted)
        return deleted
