"""Alert levels (one table everywhere), alert events and the active alerts they describe."""

from __future__ import annotations

import enum
from datetime import datetime

import attrs


class AlertLevel(enum.Enum):
    """The reference's four levels, ordered from best to worst."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def min_score(self) -> float:
        return LEVEL_TABLE[self].min_score

    @property
    def color(self) -> str:
        return LEVEL_TABLE[self].color

    @property
    def emoji(self) -> str:
        return LEVEL_TABLE[self].emoji

    @property
    def label(self) -> str:
        """``"🟠 Warning"``."""
        return f"{self.emoji} {self.value.capitalize()}"

    @classmethod
    def for_score(cls, score: float) -> AlertLevel:
        """Critical 80–100, Warning 60–79, Degraded 50–59, Healthy 0–49."""
        for level in (cls.CRITICAL, cls.WARNING, cls.DEGRADED):
            if score >= level.min_score:
                return level
        return cls.HEALTHY

    def __lt__(self, other: AlertLevel) -> bool:
        return self.rank < other.rank

    def __le__(self, other: AlertLevel) -> bool:
        return self.rank <= other.rank


@attrs.frozen
class LevelStyle:
    min_score: float
    color: str
    emoji: str


LEVEL_TABLE = {
    AlertLevel.CRITICAL: LevelStyle(80.0, "#FF0000", "🔴"),
    AlertLevel.WARNING: LevelStyle(60.0, "#FFA500", "🟠"),
    AlertLevel.DEGRADED: LevelStyle(50.0, "#FFD700", "🟡"),
    AlertLevel.HEALTHY: LevelStyle(0.0, "#00FF00", "🟢"),
}
_RANK = {AlertLevel.HEALTHY: 0, AlertLevel.DEGRADED: 1, AlertLevel.WARNING: 2, AlertLevel.CRITICAL: 3}


class EventType(enum.Enum):
    """What happened to a server's alert on one tick."""

    RAISED = "raised"
    ESCALATED = "escalated"
    DE_ESCALATED = "de-escalated"
    RESOLVED = "resolved"


@attrs.frozen
class ActiveAlert:
    """A server's current alert (degraded or worse), as /alerts/active shows it."""

    server_name: str
    level: AlertLevel
    risk_score: float
    profile: str
    message: str
    raised_at: datetime
    time_to_issue_minutes: float | None = None  # None: no crossing predicted (or already over a limit)
    metric: str | None = None  # the metric that drives the alert: cpu_pct, mem_pct, ...
    peak_level: AlertLevel | None = None  # the worst level this alert reached (None: its level)
    breached: bool = False  # a limit was actually crossed at some tick while the alert was open


@attrs.frozen
class AlertEvent:
    """One transition of a server's alert; sinks receive these and history stores them."""

    at: datetime
    server_name: str
    event_type: EventType
    previous_level: AlertLevel
    new_level: AlertLevel
    risk_score: float
    message: str
    profile: str
    raised_at: datetime  # when the alert this event belongs to was first raised
    time_to_issue_minutes: float | None = None
    metric: str | None = None
    cause: str | None = None  # over_now | predicted | possible | elevated | approaching | anomaly
    peak_level: AlertLevel | None = None  # the worst level of the alert so far
    breached: bool = False  # a limit was crossed while the alert was open (so far)
