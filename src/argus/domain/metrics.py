"""Metric records and the per-server rolling window (oldest first) the model reads from."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

import attrs
import numpy as np

from argus.domain.ingestion import ServerHistory

STEP_SECONDS = 300  # the 5-minute cadence, end to end

@attrs.frozen(slots=True)
class MetricField:
    """One numeric field of a record: its unit and the physical range every value must lie in.

    The upper bounds of rates and counts are physical, far above any real server and far below
    what overflows the engine's float32 arrays; the API rejects values outside the range (422), and
    the engine's windows clip anything stored before the bounds existed (see ``FleetWindows``).
    """

    name: str
    unit: str
    high: float
    integer: bool = False
    low: float = 0.0
    #: May be missing: a source that cannot measure it (Prometheus without node_exporter's tcpstat
    #: collector has no CLOSE_WAIT counts, nothing exports Java CPU) leaves it out, NaN in memory and
    #: NULL in SQL; never invented. Only covariates may: a forecast target (domain.forecast.TARGET_FIELDS)
    #: missing makes the record no measurement (a gap). ``POST /feed/data`` still requires every field.
    optional: bool = False


MAX_RATE_MB_S = 1_000_000.0  # 8 Tbit/s: more than all PCIe 5.0 x16 slots of a server carry together
MAX_SOCKETS = 10_000_000  # sockets in one TCP state: ~10 GB of kernel memory in socket buffers alone
MAX_LOAD = 4_194_304.0  # a load average counts tasks, and Linux allows at most 2**22 (PID_MAX_LIMIT)
MAX_UPTIME_DAYS = 365  # the reference's range

#: The field table: numeric fields of a record, in the order used by every array in Argus.
#: Required: the six the model forecasts (CPU busy = 100 - idle, I/O wait, memory, swap, disk, load),
#: which every host agent reports (a host without swap reports 0 % of none used, as node_exporter's
#: SwapTotal 0 and hostmetrics' empty paging give). Optional: the covariates and uptime.
FIELDS: tuple[MetricField, ...] = (
    MetricField("cpu_user_pct", "%", 100.0, optional=True),
    MetricField("cpu_sys_pct", "%", 100.0, optional=True),
    MetricField("cpu_iowait_pct", "%", 100.0),
    MetricField("cpu_idle_pct", "%", 100.0),
    MetricField("java_cpu_pct", "%", 100.0, optional=True),
    MetricField("mem_used_pct", "%", 100.0),
    MetricField("swap_used_pct", "%", 100.0),
    MetricField("disk_usage_pct", "%", 100.0),
    MetricField("net_in_mb_s", "MB/s", MAX_RATE_MB_S, optional=True),
    MetricField("net_out_mb_s", "MB/s", MAX_RATE_MB_S, optional=True),
    MetricField("back_close_wait", "sockets", MAX_SOCKETS, integer=True, optional=True),
    MetricField("front_close_wait", "sockets", MAX_SOCKETS, integer=True, optional=True),
    MetricField("load_average", "tasks", MAX_LOAD),
    MetricField("uptime_days", "days", MAX_UPTIME_DAYS, integer=True, optional=True),
)
METRIC_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS)
FIELD_INDEX = {name: i for i, name in enumerate(METRIC_FIELDS)}
INTEGER_FIELDS = frozenset(f.name for f in FIELDS if f.integer)
OPTIONAL_FIELDS = frozenset(f.name for f in FIELDS if f.optional)
REQUIRED_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if not f.optional)
_REQUIRED = np.array([not f.optional for f in FIELDS])
#: A field absent from every record of a server's last hour is reported missing (``missing_fields``).
MISSING_LOOKBACK_STEPS = 12
_LOW = np.array([f.low for f in FIELDS], dtype=np.float32)
_HIGH = np.array([f.high for f in FIELDS], dtype=np.float32)
_LOW_T, _HIGH_T = tuple(float(f.low) for f in FIELDS), tuple(float(f.high) for f in FIELDS)


def clip_values(values: np.ndarray) -> np.ndarray:
    """Bring rows of field values into the field table's ranges (infinities too), as float32.

    The API never accepts such values; rows stored before the bounds existed (or written straight
    into the database) must still give the model finite, physical inputs. Clipping in float64
    first: a huge float64 would already be infinite as float32. NaN stays NaN (see ``measured``).
    float32 rows are clipped as they are: every bound is a float32, so the result is the same.
    """
    values = np.asarray(values)
    if values.dtype == np.float32:
        clipped: np.ndarray = np.clip(values, _LOW, _HIGH)
        return clipped
    return np.clip(np.asarray(values, dtype=np.float64), _LOW, _HIGH).astype(np.float32)


def _physical(values: tuple[float, ...]) -> tuple[float, ...] | None:
    """One record's values within the field table's ranges, a missing optional field kept NaN; None when
    a required field is NaN (fast path: all in range)."""
    if all(low <= v <= high for v, low, high in zip(values, _LOW_T, _HIGH_T, strict=True)):
        return values
    if any(math.isnan(v) and not field.optional for v, field in zip(values, FIELDS, strict=True)):
        return None
    return tuple(v if math.isnan(v) else min(max(v, low), high)
                 for v, low, high in zip(values, _LOW_T, _HIGH_T, strict=True))


def measured(values: np.ndarray) -> np.ndarray:
    """Which rows hold a number in every required field (a row without one is no measurement: a gap).

    An optional field may be NaN (missing) in a measured row: the row stays, the field stays NaN.
    """
    return np.asarray(~np.isnan(np.asarray(values, dtype=np.float64)[..., _REQUIRED]).any(axis=-1))


def missing_fields(values: np.ndarray) -> list[str]:
    """The fields without a single number in ``values`` (rows aligned with METRIC_FIELDS), in table order."""
    values = np.asarray(values)
    if not len(values):
        return []
    absent = np.isnan(values).all(axis=0)
    return [name for name, gone in zip(METRIC_FIELDS, absent.tolist(), strict=True) if gone]


#: Operator annotations; never a model input (they are derived from the metrics and leak the answer).
STATUS_VALUES: tuple[str, ...] = (
    "healthy",
    "critical_issue",
    "heavy_load",
    "idle",
    "maintenance",
    "morning_spike",
    "offline",
    "recovery",
)
STATUS_CODE = {name: i for i, name in enumerate(STATUS_VALUES)}


@attrs.frozen(slots=True)
class Record:
    """One server's metrics at one moment (``timestamp`` is timezone-aware UTC)."""

    timestamp: datetime
    server_name: str
    status: str
    values: tuple[float, ...]  # aligned with METRIC_FIELDS; NaN: an optional field the source lacks

    @property
    def epoch_s(self) -> int:
        return int(round(self.timestamp.timestamp()))

    def value(self, field: str) -> float:
        return self.values[FIELD_INDEX[field]]

    @property
    def missing(self) -> tuple[str, ...]:
        """The fields this record lacks (NaN), in table order."""
        return tuple(name for name, value in zip(METRIC_FIELDS, self.values, strict=True) if math.isnan(value))

    def as_dict(self) -> dict[str, object]:
        """Render the record in the wire schema (ISO timestamp without zone means UTC); a missing field is None."""
        out: dict[str, object] = {
            "timestamp": wire_time(self.timestamp),
            "server_name": self.server_name,
            "status": self.status,
        }
        for name, value in zip(METRIC_FIELDS, self.values, strict=True):
            out[name] = None if math.isnan(value) else int(value) if name in INTEGER_FIELDS else float(value)
        return out


def wire_time(moment: datetime | int | float | None) -> str | None:
    """The API's timestamp format: UTC, no zone suffix, to the second (``2025-01-15T10:00:00``)."""
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, tz=UTC)
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def utc_from_epoch(epoch_s: int | float) -> datetime:
    """Return the aware UTC datetime for ``epoch_s``."""
    return datetime.fromtimestamp(epoch_s, tz=UTC)


class MetricsWindow:
    """The most recent ``capacity`` records of one server, sorted by timestamp, as numpy arrays.

    Out-of-order records are placed by timestamp, a repeated timestamp replaces the earlier
    record (last write wins, like the database), and gaps stay gaps: no row is invented.
    """

    __slots__ = ("server_name", "capacity", "_ts", "_values", "_status", "_start", "_end")

    def __init__(self, server_name: str, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.server_name = server_name
        self.capacity = capacity
        self._ts = np.empty(0, dtype=np.int64)
        self._values = np.empty((0, len(METRIC_FIELDS)), dtype=np.float32)
        self._status = np.empty(0, dtype=np.int8)
        self._start = self._end = 0

    @classmethod
    def from_arrays(
        cls, server_name: str, capacity: int, ts: np.ndarray, values: np.ndarray, status: np.ndarray
    ) -> MetricsWindow:
        """Build a window from arrays (any order); keeps the newest ``capacity`` rows."""
        window = cls(server_name, capacity)
        if np.any(ts[1:] <= ts[:-1]):  # stored histories come sorted: then no sorting copies
            ts, values, status = _by_time(ts, values, status)
        ts, values, status = ts[-capacity:], values[-capacity:], status[-capacity:]
        window._grow(max(len(ts), 1))
        n = len(ts)
        window._ts[:n], window._values[:n], window._status[:n] = ts, values, status
        window._end = n
        return window

    def __len__(self) -> int:
        return self._end - self._start

    @property
    def timestamps(self) -> np.ndarray:
        """Epoch seconds (UTC), oldest first; a read-only view."""
        return self._view(self._ts)

    @property
    def values(self) -> np.ndarray:
        """Shape (len, len(METRIC_FIELDS)) float32, rows aligned with ``timestamps``; read-only."""
        return self._view(self._values)

    @property
    def statuses(self) -> np.ndarray:
        """Status codes (index into STATUS_VALUES), aligned with ``timestamps``; read-only."""
        return self._view(self._status)

    @property
    def last_epoch_s(self) -> int | None:
        return int(self._ts[self._end - 1]) if len(self) else None

    def column(self, field: str) -> np.ndarray:
        return self.values[:, FIELD_INDEX[field]]

    def missing_fields(self, steps: int = MISSING_LOOKBACK_STEPS) -> list[str]:
        """The fields absent (NaN) from every one of the last ``steps`` records: what the server's source lacks."""
        return missing_fields(self.values[-steps:])

    def add(self, epoch_s: int, values: Iterable[float], status: str) -> None:
        """Place one record by timestamp; the oldest record falls out once the window is full."""
        row = np.asarray(tuple(values), dtype=np.float32)
        code = STATUS_CODE[status]
        if len(self) and epoch_s <= self._ts[self._end - 1]:
            self._place_out_of_order(epoch_s, row, code)
            return
        if self._end == len(self._ts):
            self._make_room()
        self._ts[self._end], self._values[self._end], self._status[self._end] = epoch_s, row, code
        self._end += 1
        if len(self) > self.capacity:
            self._start += 1

    def _place_out_of_order(self, epoch_s: int, row: np.ndarray, code: int) -> None:
        live = slice(self._start, self._end)
        pos = self._start + int(np.searchsorted(self._ts[live], epoch_s))
        if pos < self._end and self._ts[pos] == epoch_s:
            self._values[pos], self._status[pos] = row, code
            return
        if len(self) >= self.capacity and pos == self._start:
            return  # older than everything kept in a full window
        if self._end == len(self._ts):
            self._make_room()
            pos = self._start + int(np.searchsorted(self._ts[self._start : self._end], epoch_s))
        for arr in (self._ts, self._values, self._status):
            arr[pos + 1 : self._end + 1] = arr[pos : self._end].copy()
        self._ts[pos], self._values[pos], self._status[pos] = epoch_s, row, code
        self._end += 1
        if len(self) > self.capacity:
            self._start += 1

    def _make_room(self) -> None:
        """Grow the buffer geometrically up to the capacity plus an eighth, then compact live rows to the front.

        The slack is what lets appends to a full window be O(1): one compaction (a copy of the window) every
        ``capacity // 8`` appends. An eighth, not a second capacity: a full 10-day window's slack pages become
        resident one appended row at a time, so twice the capacity made a 1,000-server engine's RSS creep up by
        ~200 MB over its first 10 days of appends (measured in-process; bounded, but read as a leak in soaks).
        """
        limit = self.capacity + max(16, self.capacity // 8)
        if len(self._ts) < limit:
            self._grow(min(max(2 * len(self._ts), 16), limit))
            return
        n = len(self)
        for arr in (self._ts, self._values, self._status):
            arr[:n] = arr[self._start : self._end]
        self._start, self._end = 0, n

    def _grow(self, size: int) -> None:
        if size <= len(self._ts):
            return
        n = len(self)
        ts = np.empty(size, dtype=np.int64)
        values = np.empty((size, len(METRIC_FIELDS)), dtype=np.float32)
        status = np.empty(size, dtype=np.int8)
        ts[:n], values[:n], status[:n] = (a[self._start : self._end] for a in (self._ts, self._values, self._status))
        self._ts, self._values, self._status = ts, values, status
        self._start, self._end = 0, n

    def _view(self, arr: np.ndarray) -> np.ndarray:
        view = arr[self._start : self._end]
        view.flags.writeable = False
        return view


def _by_time(ts: np.ndarray, values: np.ndarray, status: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows sorted by timestamp, keeping the last of equal timestamps, as an upsert would."""
    order = np.argsort(ts, kind="stable")
    ts, values, status = ts[order], values[order], status[order]
    keep = np.append(ts[1:] != ts[:-1], True)
    return ts[keep], values[keep], status[keep]


class FleetWindows:
    """Every tracked server's MetricsWindow, keyed by server name: what the engine's model reads.

    Stored records enter through ``add`` and ``load``, which keep the model's inputs physical
    whatever the database holds: values are clipped to the field table's ranges, a row without a
    required field is a gap (a missing optional field stays NaN in its row), and records dated
    after ``not_after_epoch_s`` stay out (counted in ``future_skipped``): one record from a wrong
    clock (dated 2099) would otherwise stay its window's newest row for ever, and the server would
    never again get a forecast.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._windows: dict[str, MetricsWindow] = {}
        self.future_skipped = 0

    def __len__(self) -> int:
        return len(self._windows)

    def __iter__(self) -> Iterator[MetricsWindow]:
        return iter(self._windows.values())

    def __contains__(self, server_name: object) -> bool:
        return server_name in self._windows

    def get(self, server_name: str) -> MetricsWindow | None:
        return self._windows.get(server_name)

    def put(self, window: MetricsWindow) -> None:
        self._windows[window.server_name] = window

    def discard(self, server_name: str) -> None:
        """Forget a server's window (its partition moved to another engine); no error when absent."""
        self._windows.pop(server_name, None)

    def load(self, history: ServerHistory, not_after_epoch_s: int | None = None) -> int:
        """Replace a server's window with its stored history (see the class); return the rows kept."""
        ts, values = np.asarray(history.timestamps, dtype=np.int64), np.asarray(history.values)
        statuses = np.asarray(history.statuses)
        keep = measured(values)
        if not_after_epoch_s is not None:
            future = ts > not_after_epoch_s
            self.future_skipped += int(np.count_nonzero(future))
            keep &= ~future
        if not keep.all():  # selecting copies every array: only when a row goes
            ts, values, statuses = ts[keep], values[keep], statuses[keep]
        window = MetricsWindow.from_arrays(history.server_name, self.capacity, ts, clip_values(values), statuses)
        if len(window):
            self.put(window)
        return len(window)

    def add(self, records: Iterable[Record], not_after_epoch_s: int | None = None) -> int:
        """Place records into their servers' windows (see the class); return how many were placed."""
        count = 0
        for record in records:
            epoch_s = record.epoch_s
            if not_after_epoch_s is not None and epoch_s > not_after_epoch_s:
                self.future_skipped += 1
                continue
            values = _physical(record.values)
            if values is None:
                continue
            window = self._windows.get(record.server_name)
            if window is None:
                window = self._windows[record.server_name] = MetricsWindow(record.server_name, self.capacity)
            window.add(epoch_s, values, record.status)
            count += 1
        return count

    def total_records(self) -> int:
        return sum(len(w) for w in self._windows.values())

    def ready(self, min_length: int) -> list[MetricsWindow]:
        """Windows with at least ``min_length`` records (enough history for a forecast)."""
        return [w for w in self._windows.values() if len(w) >= min_length]
