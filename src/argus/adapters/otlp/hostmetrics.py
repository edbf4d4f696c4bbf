"""The OpenTelemetry collector's hostmetrics receiver names as rollup observations.

Which metric feeds which rollup signal (docs/prometheus.md, "OTLP", has the whole table):

- ``system.cpu.time`` (cpu, state): counter ``cpu.<mode>`` per cpu; state wait is iowait, interrupt irq.
- ``system.memory.usage`` (state): ``mem_total_bytes`` = the states' sum (slab_* are inside cached),
  ``mem_available_bytes`` = total - used; ``system.memory.limit`` and ``system.linux.memory.available``
  win when sent; ``system.memory.utilization`` (state used) as a ratio when no usage is.
- ``system.paging.usage`` (device, state): ``swap_total_bytes`` and ``swap_free_bytes``, summed over
  devices; ``system.paging.operations`` or ``.faults`` without usage at that time: no swap (total 0).
- ``system.filesystem.usage`` (mountpoint, type, state): ``fs_size_bytes`` = used + free + reserved,
  ``fs_avail_bytes`` = free, real filesystems only.
- ``system.network.io`` (device, direction): counters ``net_rx_bytes``, ``net_tx_bytes``, real interfaces.
- ``system.cpu.load_average.1m``: ``load1``. ``system.uptime``: ``boot_time_s`` = the point's time -
  uptime; ``system.boot_time``: ``boot_time_s`` as sent.
- ``system.network.connections`` (protocol tcp, state CLOSE_WAIT): ``close_wait_back``, the host's total.

Attribute names of the newer semantic conventions are read too (``cpu.mode``, ``cpu.logical_number``,
``system.memory.state``, ``system.paging.state``, ``system.filesystem.mountpoint`` ..., ``system.device``,
``network.io.direction``, ``network.interface.name``, ``network.transport``, ``network.connection.state``).

Temporality: gauges and cumulative sums carry the value itself. A *delta* sum of a counter
(``system.cpu.time``, ``system.network.io``) with a start time becomes a counter that restarts at
its start: a 0 one millisecond after the start (moved into the end's step when the interval began in
an earlier one) and the delta at its end, so the rollup's reset rule adds every delta once, with no
state kept between requests. Delta sums of levels (memory, filesystem ...) carry no level: refused.

The states of one metric at one time must arrive in one request (memory, swap and filesystem sizes
are sums over them). Points Argus does not read are skipped (``unused``); points it cannot use are
*rejected* by reason (the OTLP partial success): see ``REJECT_REASONS``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable

import attrs
from opentelemetry.proto.metrics.v1 import metrics_pb2

from argus.domain.rollup import Observation, is_real_filesystem, is_real_interface, step_end_s

CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
NO_RECORDED_VALUE = metrics_pb2.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
#: Longest attribute value Argus keys a series by (a mountpoint, a device): the buffer's column width.
MAX_ATTRIBUTE_CHARS = 512

BYTES = {"By": 1.0, "": 1.0, "KiBy": 2.0**10, "MiBy": 2.0**20, "GiBy": 2.0**30, "TiBy": 2.0**40,
         "kBy": 1e3, "KBy": 1e3, "MBy": 1e6, "GBy": 1e9, "TBy": 1e12}
SECONDS = {"s": 1.0, "": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "min": 60.0, "h": 3600.0, "d": 86400.0}
CPU_MODES = {"user": "user", "nice": "nice", "system": "system", "kernel": "system", "idle": "idle",
             "wait": "iowait", "iowait": "iowait", "interrupt": "irq", "irq": "irq", "softirq": "softirq",
             "steal": "steal"}
#: Memory states that add up to the total (Linux's slab_* are inside "cached" already).
MEMORY_STATES = frozenset({"used", "free", "buffered", "cached", "inactive"})
REJECT_REASONS = {
    "invalid_server_name": "the server attribute is missing or not a valid server name",
    "unsupported_type": "a host metric that is not a gauge or a sum",
    "temporality_unspecified": "a sum without aggregation temporality",
    "delta_temporality": "a delta sum of a level (only counters may be delta)",
    "delta_without_start": "a delta point without a start time before its time",
    "unsupported_unit": "a unit Argus cannot convert",
    "no_value": "a point with neither asDouble nor asInt",
    "nan": "NaN", "not_finite": "an infinity", "negative": "a negative value",
    "no_timestamp": "timeUnixNano is 0",
    "too_old": "older than the records retention", "too_new": "ahead of Argus's clock by more than the skew allowed",
    "attribute_too_long": f"an attribute value over {MAX_ATTRIBUTE_CHARS} characters",
    "out_of_order": "the step of the point has already closed",
}

Attrs = dict[str, str]
COUNTER, LEVEL, PART = "counter", "level", "part"


@attrs.frozen
class Rule:
    """How one metric is read: ``read`` maps a point's attributes to (signal or group, series key, part)."""

    kind: str  # COUNTER and LEVEL give one observation a point; PART adds the point into a group
    units: dict[str, float] | None
    read: Callable[[Attrs], tuple[str, str, str] | None]
    any_temporality: bool = False  # only the metric's presence counts (paging operations and faults)


def _first(attributes: Attrs, *names: str) -> str:
    return next((attributes[n] for n in names if n in attributes), "")


def _cpu(a: Attrs) -> tuple[str, str, str] | None:
    mode = CPU_MODES.get(_first(a, "state", "cpu.mode", "system.cpu.state").lower())
    cpu = _first(a, "cpu", "cpu.logical_number", "system.cpu.logical_number")
    return None if mode is None else (f"cpu.{mode}", cpu, "")


def _memory(a: Attrs) -> tuple[str, str, str] | None:
    state = _first(a, "state", "system.memory.state").lower()
    return ("memory", "", state) if state in MEMORY_STATES else None


def _paging(a: Attrs) -> tuple[str, str, str] | None:
    return "swap", "", _first(a, "state", "system.paging.state").lower() or "used"


def _filesystem(a: Attrs) -> tuple[str, str, str] | None:
    mountpoint = _first(a, "mountpoint", "system.filesystem.mountpoint")
    fstype = _first(a, "type", "system.filesystem.type")
    if not mountpoint or not is_real_filesystem(fstype, mountpoint):
        return None
    return "filesystem", mountpoint, _first(a, "state", "system.filesystem.state").lower()


def _network(a: Attrs) -> tuple[str, str, str] | None:
    device = _first(a, "device", "system.device", "network.interface.name")
    direction = _first(a, "direction", "network.io.direction", "system.network.direction").lower()
    signal = {"receive": "net_rx_bytes", "transmit": "net_tx_bytes"}.get(direction)
    return None if signal is None or not device or not is_real_interface(device) else (signal, device, "")


def _close_wait(a: Attrs) -> tuple[str, str, str] | None:
    protocol = _first(a, "protocol", "network.transport").lower()
    state = _first(a, "state", "network.connection.state", "system.network.state").lower().replace("-", "_")
    return ("close_wait", "", "total") if protocol in ("tcp", "") and state == "close_wait" else None


def _fixed(signal: str, part: str = "") -> Callable[[Attrs], tuple[str, str, str]]:
    return lambda a: (signal, "", part)


#: The hostmetrics names Argus reads; any other metric is skipped by its name.
RULES: dict[str, Rule] = {
    "system.cpu.time": Rule(COUNTER, SECONDS, _cpu),
    "system.memory.usage": Rule(PART, BYTES, _memory),
    "system.memory.limit": Rule(PART, BYTES, _fixed("memory", "limit")),
    "system.linux.memory.available": Rule(PART, BYTES, _fixed("memory", "available")),
    "system.memory.utilization": Rule(PART, None, lambda a: ("memory", "", "utilization")
                                      if _first(a, "state", "system.memory.state").lower() == "used" else None),
    "system.paging.usage": Rule(PART, BYTES, _paging),
    "system.paging.operations": Rule(PART, None, _fixed("swap", "scraped"), any_temporality=True),
    "system.paging.faults": Rule(PART, None, _fixed("swap", "scraped"), any_temporality=True),
    "system.filesystem.usage": Rule(PART, BYTES, _filesystem),
    "system.network.io": Rule(COUNTER, BYTES, _network),
    "system.cpu.load_average.1m": Rule(LEVEL, None, _fixed("load1")),
    "system.uptime": Rule(LEVEL, SECONDS, _fixed("uptime")),
    "system.boot_time": Rule(LEVEL, SECONDS, _fixed("boot_time_s")),
    "system.network.connections": Rule(PART, None, _close_wait),
}


@attrs.frozen
class Extracted:
    """The observations found in one request; its data points: used, skipped (not read) and rejected by reason."""

    observations: list[Observation]
    points: int
    used: int
    skipped: Counter
    rejected: Counter


def text(value) -> str | None:
    """An AnyValue as text (strings, integers, booleans, doubles); None for arrays, maps and bytes."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind in ("int_value", "double_value"):
        return str(getattr(value, kind))
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    return None


def attributes_of(key_values) -> Attrs:
    out = {}
    for kv in key_values:
        found = text(kv.value)
        if found is not None:
            out[kv.key] = found
    return out


def server_of(resource_attributes, attribute: str, valid_name: Callable[[str], bool]) -> str | None:
    """The server named by a resource's ``attribute`` (``host.name``), or None when absent or invalid."""
    for kv in resource_attributes:
        if kv.key == attribute:
            name = text(kv.value)
            return name if name and valid_name(name) else None
    return None


def extract(request, server_attribute: str, valid_name: Callable[[str], bool], earliest_ms: int, latest_ms: int,
            step_s: int) -> Extracted:
    """Read the host metrics of ``request`` (an ExportMetricsServiceRequest) into observations."""
    reader = _Reader(valid_name=valid_name, earliest_ms=earliest_ms, latest_ms=latest_ms, step_s=step_s)
    for resource_metrics in request.resource_metrics:
        server = server_of(resource_metrics.resource.attributes, server_attribute, valid_name)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                reader.metric(server, metric)
    reader.finish()
    return Extracted(reader.observations, reader.points, reader.used, reader.skipped, reader.rejected)


@attrs.define
class _Reader:
    """One request's extraction: observations so far, and the groups (memory, swap ...) being summed."""

    valid_name: Callable[[str], bool]
    earliest_ms: int
    latest_ms: int
    step_s: int
    observations: list[Observation] = attrs.Factory(list)
    groups: dict[tuple[str, int, str, str], dict[str, float]] = attrs.Factory(lambda: defaultdict(dict))
    group_points: Counter = attrs.Factory(Counter)
    points: int = 0
    used: int = 0
    skipped: Counter = attrs.Factory(Counter)
    rejected: Counter = attrs.Factory(Counter)

    def metric(self, server: str | None, metric) -> None:
        kind = metric.WhichOneof("data")
        points = getattr(metric, kind).data_points if kind else ()
        self.points += len(points)
        rule = RULES.get(metric.name)
        if rule is None:
            self.skipped["unused"] += len(points)
            return
        refusal = _refusal(server, metric, kind, rule)
        if refusal is not None:
            self.rejected[refusal] += len(points)
            return
        scale = 1.0 if rule.units is None else rule.units[metric.unit]
        delta = kind == "sum" and metric.sum.aggregation_temporality == DELTA and rule.kind == COUNTER
        for point in points:
            self.point(server, rule, point, scale, delta)

    def point(self, server: str, rule: Rule, point, scale: float, delta: bool) -> None:
        found = rule.read(attributes_of(point.attributes))
        if found is None:
            self.skipped["unused"] += 1
            return
        if point.flags & NO_RECORDED_VALUE:
            self.skipped["no_recorded_value"] += 1
            return
        signal, key, part = found
        value, ts = _value(point, scale), point.time_unix_nano // 1_000_000
        start = point.start_time_unix_nano // 1_000_000
        reason = (_value_refusal(value) or _time_refusal(ts, self.earliest_ms, self.latest_ms)
                  or ("attribute_too_long" if len(key) > MAX_ATTRIBUTE_CHARS else None)
                  or ("delta_without_start" if delta and not 0 < start < ts else None))
        if reason is not None:
            self.rejected[reason] += 1
            return
        self.used += 1
        if rule.kind == PART:
            parts = self.groups[server, ts, signal, key]
            parts[part] = parts.get(part, 0.0) + value
            self.group_points[server, ts, signal, key] += 1
            return
        if signal == "uptime":
            signal, value = "boot_time_s", ts / 1000 - value
        if delta:  # a counter restarting at its start: 0 just after it, inside the end's step
            step_start_ms = (step_end_s(ts, self.step_s) - self.step_s) * 1000
            # 2 ms after the start: the point before may have moved 1 ms on (below)
            marker = max(start + 2, step_start_ms + 1)
            if marker >= ts:  # no millisecond free between the step's start and the point: the point moves one on
                marker, ts = ts, ts + 1
            self.observations.append(Observation(server, signal, key, marker, 0.0))
        self.observations.append(Observation(server, signal, key, ts, value))

    def finish(self) -> None:
        """Turn the summed groups into observations; a group missing a part it needs is skipped (``incomplete``)."""
        for (server, ts, group, key), parts in self.groups.items():
            found = _GROUPS[group](parts, ts)
            if not found:
                n = self.group_points[server, ts, group, key]
                self.used -= n
                self.skipped["incomplete"] += n
            self.observations.extend(Observation(server, signal, key, at, value) for signal, at, value in found)


def _refusal(server: str | None, metric, kind: str | None, rule: Rule) -> str | None:
    if server is None:
        return "invalid_server_name"
    if kind not in ("gauge", "sum"):
        return "unsupported_type"
    if rule.units is not None and metric.unit not in rule.units:
        return "unsupported_unit"
    if kind == "sum" and not rule.any_temporality:
        temporality = metric.sum.aggregation_temporality
        if temporality == DELTA and rule.kind != COUNTER:
            return "delta_temporality"
        if temporality not in (DELTA, CUMULATIVE):
            return "temporality_unspecified"
    return None


def _value(point, scale: float) -> float | None:
    kind = point.WhichOneof("value")
    return None if kind is None else float(getattr(point, kind)) * scale


def _value_refusal(value: float | None) -> str | None:
    if value is None:
        return "no_value"
    if value != value:
        return "nan"
    if math.isinf(value):
        return "not_finite"
    return "negative" if value < 0 else None


def _time_refusal(ts_ms: int, earliest_ms: int, latest_ms: int) -> str | None:
    if ts_ms == 0:
        return "no_timestamp"
    if ts_ms < earliest_ms:
        return "too_old"
    return "too_new" if ts_ms > latest_ms else None


Found = list[tuple[str, int, float]]  # (signal, ts_ms, value)


def _memory_parts(parts: dict[str, float], ts: int) -> Found:
    states = {p: v for p, v in parts.items() if p in MEMORY_STATES}
    complete = "used" in states and len(states) > 1
    total = parts.get("limit", sum(states.values()) if complete else None)
    if total and "available" in parts:
        available = parts["available"]
    elif total and complete:
        available = total - states["used"]
    elif "utilization" in parts:
        total, available = 1.0, 1.0 - parts["utilization"]
    else:
        return []
    return [("mem_total_bytes", ts, total), ("mem_available_bytes", ts, available)]


def _swap_parts(parts: dict[str, float], ts: int) -> Found:
    sizes = {p: v for p, v in parts.items() if p != "scraped"}
    if "free" in sizes:
        return [("swap_total_bytes", ts, sum(sizes.values())), ("swap_free_bytes", ts, sizes["free"])]
    if "scraped" in parts and not sizes:
        # The paging scraper ran and listed no swap device: no swap. A millisecond early, so that usage
        # for the same time arriving in another request still is the step's last value.
        return [("swap_total_bytes", ts - 1, 0.0), ("swap_free_bytes", ts - 1, 0.0)]
    return []


def _filesystem_parts(parts: dict[str, float], ts: int) -> Found:
    size = sum(parts.get(state, 0.0) for state in ("used", "free", "reserved"))
    if "free" not in parts or size <= 0:
        return []
    return [("fs_size_bytes", ts, size), ("fs_avail_bytes", ts, parts["free"])]


_GROUPS: dict[str, Callable[[dict[str, float], int], Found]] = {
    "memory": _memory_parts,
    "swap": _swap_parts,
    "filesystem": _filesystem_parts,
    "close_wait": lambda parts, ts: [("close_wait_back", ts, parts["total"])],
}
