"""Host observations rolled up into Argus's five-minute records: the same rules for every source.

A source (Prometheus remote_write with node_exporter's names, OTLP with the hostmetrics
receiver's, ...) translates what it receives into :class:`Observation` values: one sample of one
*signal* of one server, at a time in milliseconds. This module never sees a source's names:

=======================  ========  ==============  =====================================================
signal                   kind      series          meaning
=======================  ========  ==============  =====================================================
``cpu.<mode>``           counter   the CPU ("0")   seconds spent in ``<mode>``; modes: user, nice, system,
                                                   idle, iowait, irq, softirq, steal (a source maps its own)
``mem_total_bytes``      gauge     ``""``          physical memory
``mem_available_bytes``  gauge     ``""``          memory available to new work without swapping
``swap_total_bytes``     gauge     ``""``          swap space (0: no swap)
``swap_free_bytes``      gauge     ``""``          unused swap space
``fs_size_bytes``        gauge     mountpoint      size of a real filesystem (:func:`is_real_filesystem`)
``fs_avail_bytes``       gauge     mountpoint      space available to unprivileged users on it
``net_rx_bytes``         counter   interface       bytes received on a real interface (:func:`is_real_interface`)
``net_tx_bytes``         counter   interface       bytes sent on it
``load1``                gauge     ``""``          1-minute load average
``boot_time_s``          gauge     ``""``          boot time, seconds since the epoch
``tcp_connections``      gauge     the TCP state   the host's TCP sockets in that state (``close_wait``, ``established``
                                   (lower case)    ...); a state missing beside others sent at that time counts 0
``close_wait_back``      gauge     ``""``          sockets in CLOSE_WAIT, for a source that counts only those
                                                   (``tcp_connections`` wins when both come)
=======================  ========  ==============  =====================================================

Steps are ``(end - step_s, end]`` in epoch seconds, ``end`` a multiple of ``step_s``; the record
of a step is stamped ``end``. :func:`roll_up` turns the observations of a step (and of the step
before, whose last counter values are the baselines) into a :class:`~argus.domain.metrics.Record`:
counters become increases over the step (a value lower than the one before is a counter reset: the
counter restarted from zero), CPU modes shares of all CPU time, gauges the step's last value. A
field no signal gives stays NaN: missing, never invented (``java_cpu_pct`` and ``front_close_wait``
always are). The :class:`RollupPolicy` says when a step may close: :meth:`RollupPolicy.closable_through`.

Adding a source: map its samples to observations (dropping pseudo filesystems and virtual
interfaces with :func:`is_real_filesystem` and :func:`is_real_interface`, before anything is
stored), and hand them to ``argus.ports.rollup.SampleBuffer.accept(observations, source)`` while
handling the request: it commits them before the source gets its answer. The engine closes steps
from the database and stores their records (``argus.adapters.sql.sample_buffer.StepCloser``);
docs/prometheus.md has the node_exporter mapping as a table.
"""

from __future__ import annotations

import fnmatch
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

import attrs

from argus.domain.forecast import TARGET_FIELDS
from argus.domain.metrics import FIELD_INDEX, FIELDS, METRIC_FIELDS, Record, utc_from_epoch

COUNTER, GAUGE = "counter", "gauge"
CPU_MODES: tuple[str, ...] = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
#: The source-neutral vocabulary: signal -> kind.
SIGNALS: Mapping[str, str] = {
    **{f"cpu.{mode}": COUNTER for mode in CPU_MODES},
    "mem_total_bytes": GAUGE, "mem_available_bytes": GAUGE, "swap_total_bytes": GAUGE, "swap_free_bytes": GAUGE,
    "fs_size_bytes": GAUGE, "fs_avail_bytes": GAUGE, "net_rx_bytes": COUNTER, "net_tx_bytes": COUNTER,
    "load1": GAUGE, "boot_time_s": GAUGE, "tcp_connections": GAUGE, "close_wait_back": GAUGE,
}
#: Which CPU modes make each CPU field (steal counts in the total and in no field).
CPU_FIELD_MODES: Mapping[str, tuple[str, ...]] = {
    "cpu_user_pct": ("user", "nice"),
    "cpu_sys_pct": ("system", "irq", "softirq"),
    "cpu_iowait_pct": ("iowait",),
    "cpu_idle_pct": ("idle",),
}
MB = 1_000_000  # net_*_mb_s are in SI megabytes per second
DAY_S = 86_400
#: One step's samples by (signal, series): (time in ms, value), oldest first.
Series = dict[tuple[str, str], list[tuple[int, float]]]
#: Records without one of these are no measurement (the store refuses them): the forecast targets.
REQUIRED: frozenset[str] = frozenset(TARGET_FIELDS.values())
STATUS = "healthy"  # records need a status; it is an operator annotation, never a model input

#: Filesystems that hold no data of their own (memory, kernel views, images, containers' layers).
PSEUDO_FSTYPES = frozenset({
    "tmpfs", "devtmpfs", "ramfs", "rootfs", "overlay", "aufs", "squashfs", "iso9660", "proc", "sysfs", "devpts",
    "cgroup", "cgroup2", "pstore", "bpf", "tracefs", "debugfs", "securityfs", "configfs", "fusectl", "mqueue",
    "hugetlbfs", "autofs", "binfmt_misc", "nsfs", "efivarfs", "selinuxfs", "rpc_pipefs", "fuse.lxcfs",
    "fuse.gvfsd-fuse", "fuse.portal", "nfsd", "ecryptfs", "none", "",
})
PSEUDO_MOUNT_PREFIXES: tuple[str, ...] = ("/proc", "/sys", "/dev", "/run", "/snap/", "/var/lib/docker/",
                                          "/var/lib/containers/", "/var/lib/kubelet/pods/")
#: Interfaces that carry no traffic of the host's own: loopback, container and bridge plumbing.
VIRTUAL_INTERFACE_PREFIXES: tuple[str, ...] = ("lo", "veth", "docker", "br-", "virbr", "cni", "flannel", "cali",
                                               "vxlan", "tunl", "kube-", "weave", "cilium", "dummy", "nodelocaldns",
                                               "ifb")


def is_real_filesystem(fstype: str, mountpoint: str) -> bool:
    """Say whether a filesystem holds data (disk fill counts) rather than memory, kernel or image views."""
    return fstype.lower() not in PSEUDO_FSTYPES and not mountpoint.startswith(PSEUDO_MOUNT_PREFIXES)


def is_real_interface(device: str) -> bool:
    """Say whether an interface carries the host's traffic (not loopback or container plumbing)."""
    return not device.startswith(VIRTUAL_INTERFACE_PREFIXES)


def step_end_s(ts_ms: int, step_s: int) -> int:
    """The end of the step ``(end - step_s, end]`` holding ``ts_ms``, in epoch seconds."""
    step_ms = step_s * 1000
    return -(-ts_ms // step_ms) * step_s


@attrs.frozen(slots=True)
class Observation:
    """One sample of one signal (see the module docstring) of one server; ``ts_ms``: ms since the epoch."""

    server: str
    signal: str
    series: str
    ts_ms: int
    value: float


@attrs.frozen
class RollupPolicy:
    """The step and when steps close; which filesystem is a server's disk (its fullest real one by default).

    A step closes once its server sent a sample ``grace_s`` past its end (data from parallel
    senders, such as Prometheus' shards, arrives a little out of step), or once the server has
    been quiet for ``quiet_s`` of wall-clock time (it stopped sending: its last steps still count).
    """

    step_s: int = 300
    disk_mountpoints: tuple[tuple[str, str], ...] = ()  # (server name or glob, mountpoint); first match wins

    @property
    def grace_s(self) -> int:
        return max(1, self.step_s // 5)

    @property
    def quiet_s(self) -> int:
        return self.step_s

    def mountpoint_for(self, server: str) -> str | None:
        """The mountpoint chosen for ``server``'s disk field, or None for its fullest real filesystem."""
        for pattern, mountpoint in self.disk_mountpoints:
            if fnmatch.fnmatchcase(server, pattern):
                return mountpoint
        return None

    def closable_through(self, closed_through_s: int, newest_ts_ms: int, quiet_for_s: float) -> int:
        """The end of the last step that may close now (``closed_through_s`` when none may)."""
        if quiet_for_s >= self.quiet_s:
            bound = step_end_s(newest_ts_ms, self.step_s)
        else:
            bound = (newest_ts_ms // 1000 - self.grace_s) // self.step_s * self.step_s
        return max(closed_through_s, bound)


def parse_disk_mountpoints(spec: str) -> tuple[tuple[str, str], ...]:
    """Parse ``ppdb001=/data,web-*=/srv`` (server name or glob = mountpoint); raise ValueError when malformed."""
    chosen = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        server, sep, mountpoint = part.partition("=")
        if not sep or not server.strip() or not mountpoint.strip().startswith("/"):
            raise ValueError(f"expected SERVER=/MOUNTPOINT, got {part!r}")
        chosen.append((server.strip(), mountpoint.strip()))
    return tuple(chosen)


def roll_up(server: str, end_s: int, observations: Iterable[Observation], policy: RollupPolicy) -> Record | None:
    """The record of ``server``'s step ending ``end_s``, or None when no observation falls in the step.

    ``observations`` are the step's and the previous step's (their last counter values are the
    baselines of this step's increases); later ones are ignored.
    """
    start_ms, end_ms = (end_s - policy.step_s) * 1000, end_s * 1000
    series: Series = defaultdict(list)
    for o in observations:
        if o.ts_ms <= end_ms and o.server == server and o.signal in SIGNALS:
            series[o.signal, o.series].append((o.ts_ms, o.value))
    if not any(start_ms < ts for points in series.values() for ts, _ in points):
        return None
    for points in series.values():
        points.sort()
    values = dict.fromkeys(METRIC_FIELDS, math.nan)
    values.update(_cpu_fields(series, start_ms))
    values.update(_memory_fields(series, start_ms))
    values["disk_usage_pct"] = _disk_pct(series, start_ms, policy.mountpoint_for(server))
    values["net_in_mb_s"] = _net_mb_s(series, "net_rx_bytes", start_ms)
    values["net_out_mb_s"] = _net_mb_s(series, "net_tx_bytes", start_ms)
    values["load_average"] = _last(series, "load1", "", start_ms)
    values["back_close_wait"] = _close_wait(series, start_ms)
    boot = _last(series, "boot_time_s", "", start_ms)
    values["uptime_days"] = float((end_s - boot) // DAY_S) if boot > 0 else math.nan
    return Record(utc_from_epoch(end_s), server, STATUS, tuple(_within_range(values[name], i)
                                                               for i, name in enumerate(METRIC_FIELDS)))


def missing_required(record: Record) -> list[str]:
    """The forecast targets ``record`` lacks (a record lacking one is not stored)."""
    return sorted(name for name in REQUIRED if math.isnan(record.values[FIELD_INDEX[name]]))


def _within_range(value: float, index: int) -> float:
    """Clip into the field table's range (a rate computed over jittery timestamps may overshoot a little)."""
    if math.isnan(value):
        return value
    field = FIELDS[index]
    value = min(max(value, field.low), field.high)
    return float(math.floor(value + 0.5)) if field.integer else value


def _last(series: Series, signal: str, key: str, start_ms: int) -> float:
    """The last value of one gauge inside the step, NaN when it sent none."""
    points = series.get((signal, key))
    if not points or points[-1][0] <= start_ms:
        return math.nan
    return points[-1][1]


def _increase(points: Sequence[tuple[int, float]], start_ms: int) -> tuple[float, float] | None:
    """(increase, seconds) of one counter over the step: from its last value before the step (the
    baseline; else its first in the step) to its last in it, counting through resets."""
    first = 0
    for i, (ts, _) in enumerate(points):
        if ts <= start_ms:
            first = i
    points = points[first:]
    if len(points) < 2 or points[-1][0] <= start_ms:
        return None
    total = 0.0
    for (_, before), (_, after) in zip(points, points[1:], strict=False):
        total += after - before if after >= before else after
    return total, (points[-1][0] - points[0][0]) / 1000


def _close_wait(series: Series, start_ms: int) -> float:
    """The host's CLOSE_WAIT sockets at its last TCP state count in the step: 0 when other states were
    counted then and CLOSE_WAIT not (node_exporter sends only states that hold sockets); else the last
    ``close_wait_back``; NaN when neither came in the step (the source does not count sockets)."""
    last_ts = max((points[-1][0] for (signal, _), points in series.items()
                   if signal == "tcp_connections" and points[-1][0] > start_ms), default=None)
    if last_ts is None:
        return _last(series, "close_wait_back", "", start_ms)
    close_wait = series.get(("tcp_connections", "close_wait"), [])
    return next((value for ts, value in reversed(close_wait) if ts == last_ts), 0.0)


def _cpu_fields(series: Series, start_ms: int) -> dict[str, float]:
    """CPU fields as shares of all CPU time in the step, summed over the CPUs."""
    by_mode: dict[str, float] = defaultdict(float)
    for (signal, _cpu), points in series.items():
        if not signal.startswith("cpu."):
            continue
        found = _increase(points, start_ms)
        if found is not None:
            increase, seconds = found
            # A CPU spends at most the elapsed time in a mode: a counter that steps back (Linux's
            # iowait does) is no restart, and must not count its whole value again.
            by_mode[signal[4:]] += min(increase, seconds)
    total = sum(by_mode.values())
    if total <= 0:
        return {}
    return {name: 100.0 * sum(by_mode[m] for m in modes) / total for name, modes in CPU_FIELD_MODES.items()}


def _memory_fields(series: Series, start_ms: int) -> dict[str, float]:
    out = {}
    total, available = (_last(series, name, "", start_ms) for name in ("mem_total_bytes", "mem_available_bytes"))
    if total > 0 and available >= 0:
        out["mem_used_pct"] = 100.0 * (1.0 - available / total)
    swap_total, swap_free = (_last(series, name, "", start_ms) for name in ("swap_total_bytes", "swap_free_bytes"))
    if swap_total == 0:
        out["swap_used_pct"] = 0.0  # no swap configured: none of it is used
    elif swap_total > 0 and swap_free >= 0:
        out["swap_used_pct"] = 100.0 * (1.0 - swap_free / swap_total)
    return out


def _disk_pct(series: Series, start_ms: int, mountpoint: str | None) -> float:
    """Used share of the chosen filesystem, or of the fullest real one."""
    used = {}
    for (signal, mount), _ in series.items():
        if signal != "fs_size_bytes" or (mountpoint is not None and mount != mountpoint):
            continue
        size, avail = _last(series, "fs_size_bytes", mount, start_ms), _last(series, "fs_avail_bytes", mount, start_ms)
        if size > 0 and avail >= 0:
            used[mount] = 100.0 * (1.0 - avail / size)
    return max(used.values(), default=math.nan)


def _net_mb_s(series: Series, signal: str, start_ms: int) -> float:
    """Bytes per second summed over interfaces, in MB/s; NaN when no interface has a rate."""
    rates = []
    for (name, _device), points in series.items():
        if name == signal:
            found = _increase(points, start_ms)
            if found is not None and found[1] > 0:
                rates.append(found[0] / found[1])
    return sum(rates) / MB if rates else math.nan
