"""Storage ports: where records go when accepted, and how the engine and workers share results."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from argus.domain.alerts import ActiveAlert
from argus.domain.ingestion import BatchReceipt, PublishedItem, ServerHistory
from argus.domain.metrics import Record
from argus.domain.ticks import TickResult


class MetricsStore(Protocol):
    """Durable record storage. A returned receipt means the records are committed."""

    def write_batch(self, records: Sequence[Record], request_id: str | None = None) -> BatchReceipt:
        """Commit ``records`` atomically (upsert on server_name + timestamp); return the batch receipt."""

    def count_records(self, up_to: int) -> int:
        """Return how many records are stored, counting no further than ``up_to``."""

    def server_exists(self, name: str) -> bool:
        """Say whether ``name`` ever sent a record."""

    def server_names(self) -> list[str]:
        """Return every server name, sorted."""

    def ping(self) -> None:
        """Raise if storage cannot be reached."""


class EngineFeed(Protocol):
    """What the engine reads: new batches after a cursor, and each server's recent history."""

    def batches_after(self, batch_id: int, limit: int = 1000) -> list[tuple[int, float]]:
        """Return (batch id, received_at) of batches after ``batch_id``, oldest first."""

    def last_batch_id(self) -> int:
        """Return the newest batch id, 0 when none."""

    def records_in_batches(self, batch_ids: Sequence[int]) -> list[Record]:
        """Return the records last written by ``batch_ids``."""

    def server_histories(self, limit_per_server: int) -> Iterator[ServerHistory]:
        """Yield each server's newest ``limit_per_server`` records, oldest first."""


class RecordRetention(Protocol):
    """Forgets raw records older than the retention period, a bounded batch at a time (the engine's chore)."""

    def purge_records(self, before_epoch_s: int, limit: int) -> int:
        """Delete at most ``limit`` records dated before ``before_epoch_s``, oldest first; return how many."""


class PublishedResults(Protocol):
    """The engine publishes JSON bodies by key; every web worker serves them."""

    def publish(self, items: dict[str, str]) -> None:
        """Replace the bodies for the given keys atomically."""

    def read_published(self, key: str) -> PublishedItem | None:
        """Return the latest body for ``key``, or None if never published."""

    def published_version(self, key: str) -> float | None:
        """Return when ``key`` was last published, or None (cheap; lets readers cache bodies)."""


class TickLog(Protocol):
    """Where each tick's outputs go, atomically: published bodies, alert events, active alerts, snapshots."""

    def record_tick(self, result: TickResult, published: dict[str, str]) -> None:
        """Store the tick's events, active alerts, fleet snapshot and per-server risk, and publish
        ``published`` (key -> JSON body), all in one transaction."""

    def active_alerts(self) -> list[ActiveAlert]:
        """Return the open alerts as last recorded (to resume after a restart)."""
