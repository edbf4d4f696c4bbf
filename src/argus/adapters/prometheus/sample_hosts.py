"""Synthetic node_exporter hosts as a Prometheus shard sends them: WriteRequests for tests and benchmarks.

A host exposes about 600 series, as node_exporter 1.5's default collectors do on a 4-CPU Linux VM
(CPU, memory, filesystems, disks, network, netstat, sockstat, vmstat, timex, scrape metadata, Go
runtime ...); about 50 of them feed the rollup. Values are plausible, not a simulation of load.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import attrs

from argus.adapters.prometheus import wire

GIB = 1024**3
_MOUNTS = (("/", "ext4", "/dev/sda1"), ("/data", "xfs", "/dev/sdb1"), ("/boot", "ext4", "/dev/sda2"),
           ("/run", "tmpfs", "tmpfs"), ("/run/lock", "tmpfs", "tmpfs"), ("/dev/shm", "tmpfs", "tmpfs"),
           ("/snap/core/1", "squashfs", "/dev/loop0"), ("/var/lib/docker/overlay2/ab/merged", "overlay", "overlay"))
_DEVICES = ("eth0", "lo", "docker0", "veth1a2b3c")
_FS_METRICS = ("size_bytes", "free_bytes", "avail_bytes", "files", "files_free", "readonly", "device_error")
_NET_METRICS = tuple(f"{d}_{m}" for d in ("receive", "transmit")
                     for m in ("bytes_total", "packets_total", "errs_total", "drop_total", "fifo_total",
                               "compressed_total", "multicast_total", "frame_total")) + (
    "up", "mtu_bytes", "speed_bytes", "info", "flags", "iface_id", "iface_link", "address_assign_type",
    "carrier", "carrier_changes_total", "carrier_up_changes_total", "carrier_down_changes_total", "dormant",
    "protocol_type", "transmit_queue_length", "net_dev_group", "device_id", "name_assign_type")
_DISK_METRICS = ("reads_completed_total", "reads_merged_total", "read_bytes_total", "read_time_seconds_total",
                 "writes_completed_total", "writes_merged_total", "written_bytes_total", "write_time_seconds_total",
                 "io_now", "io_time_seconds_total", "io_time_weighted_seconds_total", "discards_completed_total",
                 "discards_merged_total", "discarded_sectors_total", "discard_time_seconds_total",
                 "flush_requests_total", "flush_requests_time_seconds_total")


@attrs.define
class Host:
    """One node_exporter target: its ``instance`` label and counters that advance on every scrape."""

    instance: str
    cpus: int = 4
    mem_total_bytes: float = 16 * GIB
    mem_available_bytes: float = 6 * GIB
    boot_time_s: float = 1_700_000_000.0
    cpu_seconds: dict[tuple[int, str], float] = attrs.field(factory=dict)
    net_bytes: dict[tuple[str, str], float] = attrs.field(factory=dict)

    def series(self, ts_ms: int, interval_s: float = 15.0) -> Iterator[tuple[dict[str, str], float]]:
        """Every series of one scrape at ``ts_ms`` as (labels, value); counters advance by ``interval_s``."""
        common = {"instance": self.instance, "job": "node"}
        busy = {"user": 0.30, "nice": 0.0, "system": 0.08, "idle": 0.55, "iowait": 0.04, "irq": 0.0,
                "softirq": 0.01, "steal": 0.02}
        for cpu, (mode, share) in itertools.product(range(self.cpus), busy.items()):
            key = (cpu, mode)
            self.cpu_seconds[key] = self.cpu_seconds.get(key, 10_000.0 * share) + interval_s * share
            yield {"__name__": "node_cpu_seconds_total", "cpu": str(cpu), "mode": mode, **common}, self.cpu_seconds[key]
        for cpu, mode in itertools.product(range(self.cpus), ("user", "nice")):
            yield {"__name__": "node_cpu_guest_seconds_total", "cpu": str(cpu), "mode": mode, **common}, 0.0
        memory = {"MemTotal": self.mem_total_bytes, "MemAvailable": self.mem_available_bytes,
                  "SwapTotal": 2 * GIB, "SwapFree": 1.5 * GIB}
        for i in range(41):
            memory.setdefault(f"Other{i}", 1_000_000.0 * i)
        for name, value in memory.items():
            yield {"__name__": f"node_memory_{name}_bytes", **common}, value
        for mountpoint, fstype, device in _MOUNTS:
            size = 100 * GIB
            for metric in _FS_METRICS:
                value = {"size_bytes": size, "avail_bytes": 0.35 * size, "free_bytes": 0.4 * size}.get(metric, 1.0)
                yield ({"__name__": f"node_filesystem_{metric}", "device": device, "fstype": fstype,
                        "mountpoint": mountpoint, **common}, value)
        for device in _DEVICES:
            for metric in _NET_METRICS:
                value = 1.0
                if metric in ("receive_bytes_total", "transmit_bytes_total"):
                    key = (device, metric)
                    self.net_bytes[key] = self.net_bytes.get(key, 1e9) + interval_s * 2_500_000
                    value = self.net_bytes[key]
                yield {"__name__": f"node_network_{metric}", "device": device, **common}, value
        for device in ("sda", "sdb", "dm-0"):
            for metric in _DISK_METRICS:
                yield {"__name__": f"node_disk_{metric}", "device": device, **common}, 1.0
        for name in ("load1", "load5", "load15"):
            yield {"__name__": f"node_{name}", **common}, 1.25
        yield {"__name__": "node_boot_time_seconds", **common}, self.boot_time_s
        for i in range(300):  # netstat, sockstat, vmstat, timex, schedstat, softnet, scrape metadata, go_*, process_*
            yield {"__name__": f"node_misc_{i // 10}_total", "collector": f"c{i % 10}", **common}, float(i)


def write_request(samples: list[tuple[dict[str, str], float, int]]):
    """A WriteRequest of (labels, value, ts_ms) samples, one series each, labels sorted as Prometheus sends them."""
    request = wire.WriteRequest()
    for labels, value, ts_ms in samples:
        series = request.timeseries.add()
        for name in sorted(labels):
            series.labels.add(name=name, value=labels[name])
        series.samples.add(value=value, timestamp=ts_ms)
    return request


def shard_batches(hosts: list[Host], ts_ms: int, batch: int = 2000, interval_s: float = 15.0) -> Iterator[bytes]:
    """One scrape of every host, cut into snappy-compressed WriteRequests of ``batch`` samples."""
    pending: list[tuple[dict[str, str], float, int]] = []
    for host in hosts:
        for labels, value in host.series(ts_ms, interval_s):
            pending.append((labels, value, ts_ms))
            if len(pending) == batch:
                yield wire.encode(write_request(pending))
                pending = []
    if pending:
        yield wire.encode(write_request(pending))
