"""In-memory fakes of Argus's ports and record builders, for our tests and for plugin authors."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np

from argus.domain.ingestion import BatchReceipt, PublishedItem, ServerHistory
from argus.domain.metrics import METRIC_FIELDS, STATUS_CODE, Record

BASE_TIME = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)

TYPICAL_VALUES = {
    "cpu_user_pct": 25.3, "cpu_sys_pct": 8.2, "cpu_iowait_pct": 2.1, "cpu_idle_pct": 64.4,
    "java_cpu_pct": 15.5, "mem_used_pct": 72.1, "swap_used_pct": 5.2, "disk_usage_pct": 45.8,
    "net_in_mb_s": 12.5, "net_out_mb_s": 8.3, "back_close_wait": 5, "front_close_wait": 3,
    "load_average": 2.4, "uptime_days": 45,
}


def make_record(server_name: str = "ppdb001", step: int = 0, /, status: str = "healthy", **values: float) -> Record:
    """A valid record ``step`` five-minute steps after BASE_TIME; override any metric by keyword."""
    merged = {**TYPICAL_VALUES, **values}
    return Record(
        timestamp=BASE_TIME + timedelta(minutes=5 * step),
        server_name=server_name,
        status=status,
        values=tuple(float(merged[name]) for name in METRIC_FIELDS),
    )


def wire_record(server_name: str = "ppdb001", step: int = 0, /, **overrides: object) -> dict[str, object]:
    """The JSON form of ``make_record`` (what a client POSTs); overrides may break it on purpose."""
    body = make_record(server_name, step).as_dict()
    body.update(overrides)
    return body


class InMemoryMetricsStore:
    """A MetricsStore, EngineFeed and PublishedResults in a few dicts (not durable, not shared)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, int], tuple[Record, int]] = {}
        self.batches: list[tuple[int, float]] = []
        self.published: dict[str, PublishedItem] = {}
        self.hidden_batches: set[int] = set()  # simulate not-yet-committed ids in tests

    def write_batch(self, records: Sequence[Record], request_id: str | None = None) -> BatchReceipt:
        batch_id = len(self.batches) + 1
        self.batches.append((batch_id, time.time()))
        for record in records:
            self.rows[(record.server_name, record.epoch_s)] = (record, batch_id)
        return BatchReceipt(batch_id, len(records), len({r.server_name for r in records}))

    def count_records(self, up_to: int) -> int:
        return min(len(self.rows), up_to)

    def server_exists(self, name: str) -> bool:
        return any(server == name for server, _ in self.rows)

    def server_names(self) -> list[str]:
        return sorted({server for server, _ in self.rows})

    def ping(self) -> None:
        return None

    def batches_after(self, batch_id: int, limit: int = 1000) -> list[tuple[int, float]]:
        return [b for b in self.batches if b[0] > batch_id and b[0] not in self.hidden_batches][:limit]

    def last_batch_id(self) -> int:
        return len(self.batches)

    def records_in_batches(self, batch_ids: Sequence[int]) -> list[Record]:
        wanted = set(batch_ids)
        return sorted((r for r, b in self.rows.values() if b in wanted), key=lambda r: r.epoch_s)

    def server_histories(self, limit_per_server: int) -> Iterator[ServerHistory]:
        for name in self.server_names():
            rows = sorted((r for (s, _), (r, _) in self.rows.items() if s == name), key=lambda r: r.epoch_s)
            rows = rows[-limit_per_server:]
            yield ServerHistory(
                server_name=name,
                timestamps=np.array([r.epoch_s for r in rows], dtype=np.int64),
                statuses=np.array([STATUS_CODE[r.status] for r in rows], dtype=np.int8),
                values=np.array([r.values for r in rows], dtype=np.float32),
            )

    def publish(self, items: dict[str, str]) -> None:
        now = time.time()
        for key, body in items.items():
            self.published[key] = PublishedItem(key, body, now)

    def read_published(self, key: str) -> PublishedItem | None:
        return self.published.get(key)
