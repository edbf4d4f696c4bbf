"""Values that cross the storage boundary during ingestion and publication."""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs
import numpy as np

#: The fleet is "warmed up" once this many records are stored (the reference's rule).
WARMUP_MIN_RECORDS = 100


@attrs.frozen
class BatchReceipt:
    """What a committed POST /feed/data batch produced: its id is the API's ``tick``."""

    batch_id: int
    records: int
    servers: int


@attrs.frozen
class PublishedItem:
    """A body the engine published for web workers (JSON text) and when it did so."""

    key: str
    body: str
    updated_at: float


@attrs.frozen(eq=False)
class ServerHistory:
    """One server's stored records as arrays, oldest first (used to rebuild windows at start-up)."""

    server_name: str
    timestamps: np.ndarray
    statuses: np.ndarray
    values: np.ndarray


@attrs.frozen
class WarmupState:
    """Fleet warm-up as the feed response reports it."""

    records_stored: int
    min_records: int = WARMUP_MIN_RECORDS

    @property
    def complete(self) -> bool:
        return self.records_stored >= self.min_records

    @property
    def progress(self) -> str:
        percent = min(100, int(100 * self.records_stored / self.min_records))
        return f"{percent}% (need {self.min_records} records minimum)"


@attrs.frozen
class AcceptedTimes:
    """The record timestamps ingestion accepts, around the receiving server's clock.

    Not more than ``max_clock_skew_s`` ahead (one record dated 2099 would otherwise stay a server's
    newest record for ever) and not older than the records retention (it would be purged at once).
    """

    max_clock_skew_s: float = 300.0
    retention_days: float = 35.0

    def span(self, now: datetime) -> tuple[datetime, datetime]:
        """(earliest, latest) accepted timestamp when the clock reads ``now``."""
        return now - timedelta(days=self.retention_days), now + timedelta(seconds=self.max_clock_skew_s)
