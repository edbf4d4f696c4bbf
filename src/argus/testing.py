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
        self.ticks: list = []
        self.active: list = []

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

    def published_version(self, key: str) -> float | None:
        item = self.published.get(key)
        return None if item is None else item.updated_at

    def record_tick(self, result, published: dict[str, str]) -> None:
        self.ticks.append(result)
        self.active = list(result.active)
        self.publish(published)

    def active_alerts(self):
        return list(self.active)


def ramp(start: float, stop: float, steps: int = 96) -> np.ndarray:
    """A straight path from ``start`` to ``stop`` over ``steps`` steps."""
    return np.linspace(start, stop, steps)


def make_forecast(
    server_name: str = "ppdb001",
    last_epoch_s: int | None = None,
    horizon: int = 96,
    spread: float = 2.0,
    **p50_paths: float | np.ndarray,
):
    """A Forecast whose p50 paths are given per target (scalar = flat); p10/p90 = p50 ∓ ``spread``.

    Targets not given are flat at calm values (cpu 30%, mem 50%, swap 0, iowait 1, disk 40%, load 1).
    """
    from argus.domain.forecast import TARGETS, Forecast
    from argus.domain.metrics import STEP_SECONDS

    calm = {"cpu_pct": 30.0, "mem_pct": 50.0, "swap_pct": 0.0, "iowait_pct": 1.0, "disk_pct": 40.0, "load": 1.0}
    last = make_record(server_name, 0).epoch_s if last_epoch_s is None else last_epoch_s
    values = {}
    for target in TARGETS:
        p50 = np.broadcast_to(np.asarray(p50_paths.get(target, calm[target]), dtype=np.float64), (horizon,))
        values[target] = np.stack([p50 - spread, p50, p50 + spread], axis=1)
    stamps = last + STEP_SECONDS * np.arange(1, horizon + 1, dtype=np.int64)
    return Forecast(server_name=server_name, timestamps=stamps, quantiles=(0.1, 0.5, 0.9), values=values,
                    model_name="fixed")


class FixedForecaster:
    """A Forecaster that returns the forecasts it was given (per server), re-timed to each window."""

    name = "fixed"
    horizon_steps = 96

    def __init__(self, min_history_steps: int = 12, **paths_by_server) -> None:
        self.min_history_steps = min_history_steps
        self.paths_by_server = paths_by_server  # server -> {target: p50 path}
        self.calls = 0

    def forecast(self, windows, profiles):
        self.calls += 1
        out = {}
        for window in windows:
            if len(window) < self.min_history_steps:
                continue
            # explainers forecast changed copies of a window named "<server>\x00<i>": same server, same paths
            paths = self.paths_by_server.get(window.server_name.split("\x00")[0], {})
            out[window.server_name] = make_forecast(window.server_name, window.last_epoch_s, **paths)
        return out


class EngineThread:
    """Run ``step`` (an engine's ``step``, or any callable) on a thread until the ``with`` block ends.

    Tests use it to have an engine answer requests and tick the way ``argus engine`` does.
    """

    def __init__(self, step, interval_s: float = 0.02, join_timeout_s: float = 30.0) -> None:
        import threading

        self._step, self._interval_s, self._join_timeout_s = step, interval_s, join_timeout_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._step()
            self._stop.wait(self._interval_s)

    def __enter__(self) -> EngineThread:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(self._join_timeout_s)
