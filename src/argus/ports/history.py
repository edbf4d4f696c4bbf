"""History ports: reading back what the ticks recorded, and forgetting it after the retention period."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from argus.domain.history import AlertRecord, AlertTotals, FleetSnapshot, RiskSeries


class HistoryStore(Protocol):
    """Read-only queries over recorded alert events, fleet snapshots and per-server risk.

    Every range is [start, end] in UTC epoch seconds, inclusive at both ends. Nothing here writes:
    the engine records history on its ticks (``TickLog.record_tick``).
    """

    def alert_totals(self, start: float, end: float, server_name: str | None = None) -> AlertTotals:
        """Return the range's alert counts by worst level, mean resolution time and incidents
        prevented (of ``server_name`` only, when given)."""

    def alert_count(self, start: float, end: float, server_name: str | None = None) -> int:
        """Return how many alert events lie in the range (of ``server_name`` only, when given)."""

    def alert_events(self, start: float, end: float, server_name: str | None = None,
                     limit: int | None = None, offset: int = 0) -> list[AlertRecord]:
        """Return the range's alert events, newest first; ``limit``/``offset`` page through them."""

    def alert_event_chunks(self, start: float, end: float) -> Iterator[list[AlertRecord]]:
        """Yield every alert event of the range, oldest first, in chunks read one at a time (exports)."""

    def fleet_health_avg(self, start: float, end: float) -> float | None:
        """Return the mean ``fleet_health`` of the range's snapshots, None when there are none."""

    def fleet_snapshots(self, start: float, end: float, max_points: int | None = None) -> list[FleetSnapshot]:
        """Return the range's snapshots, oldest first, thinned evenly to ``max_points`` when given."""

    def fleet_snapshot_chunks(self, start: float, end: float) -> Iterator[list[FleetSnapshot]]:
        """Yield every snapshot of the range, oldest first and unthinned, in chunks read one at a time."""

    def risk_series(self, server_name: str, start: float, end: float) -> RiskSeries:
        """Return ``server_name``'s risk on each tick of the range, oldest first."""

    def server_known(self, server_name: str) -> bool:
        """Say whether ``server_name`` ever sent a record."""


class HistoryRetention(Protocol):
    """Forgets history older than the retention period (the engine calls it periodically)."""

    def purge(self, before_epoch_s: float) -> dict[str, int]:
        """Delete alert events, fleet snapshots and per-server risk older than ``before_epoch_s``;
        return the number of rows deleted per table."""
