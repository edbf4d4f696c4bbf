"""node_exporter's series (Linux) as rollup observations: which series feed which signal.

=========================================================  ======================  ==============================
series                                                     signal                  kept when
=========================================================  ======================  ==============================
``node_cpu_seconds_total{cpu, mode}``                      ``cpu.<mode>``          mode is one of the eight modes
``node_memory_MemTotal_bytes``                             ``mem_total_bytes``
``node_memory_MemAvailable_bytes``                         ``mem_available_bytes``
``node_memory_SwapTotal_bytes``                            ``swap_total_bytes``
``node_memory_SwapFree_bytes``                             ``swap_free_bytes``
``node_filesystem_size_bytes{mountpoint, fstype}``         ``fs_size_bytes``       a real filesystem
``node_filesystem_avail_bytes{mountpoint, fstype}``        ``fs_avail_bytes``      a real filesystem
``node_network_receive_bytes_total{device}``               ``net_rx_bytes``        a real interface
``node_network_transmit_bytes_total{device}``              ``net_tx_bytes``        a real interface
``node_load1``                                             ``load1``
``node_boot_time_seconds``                                 ``boot_time_s``
``node_tcp_connection_states{state}``                       ``tcp_connections``     (tcpstat collector, off by default)
=========================================================  ======================  ==============================

The rollup reports the host's CLOSE_WAIT total as ``back_close_wait`` (node_exporter cannot tell
backend from frontend sockets: ``front_close_wait`` stays missing). Every other series is skipped by its
name, before anything else of it is read (a host sends ~600 series; these are ~50 of them).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

import attrs

from argus.adapters.prometheus.wire import BadBodyError, is_stale_marker
from argus.domain.rollup import CPU_MODES, Observation, is_real_filesystem, is_real_interface

_PLAIN = {
    "node_memory_MemTotal_bytes": "mem_total_bytes",
    "node_memory_MemAvailable_bytes": "mem_available_bytes",
    "node_memory_SwapTotal_bytes": "swap_total_bytes",
    "node_memory_SwapFree_bytes": "swap_free_bytes",
    "node_load1": "load1",
    "node_boot_time_seconds": "boot_time_s",
}
_CPU_SIGNALS = {mode: f"cpu.{mode}" for mode in CPU_MODES}


def _plain(signal: str) -> Callable[[dict[str, str]], tuple[str, str] | None]:
    return lambda labels: (signal, "")


def _cpu(labels: dict[str, str]) -> tuple[str, str] | None:
    signal = _CPU_SIGNALS.get(labels.get("mode", ""))
    return None if signal is None else (signal, labels.get("cpu", ""))


def _filesystem(signal: str) -> Callable[[dict[str, str]], tuple[str, str] | None]:
    def read(labels: dict[str, str]) -> tuple[str, str] | None:
        mountpoint = labels.get("mountpoint", "")
        return (signal, mountpoint) if mountpoint and is_real_filesystem(labels.get("fstype", ""), mountpoint) else None
    return read


def _network(signal: str) -> Callable[[dict[str, str]], tuple[str, str] | None]:
    def read(labels: dict[str, str]) -> tuple[str, str] | None:
        device = labels.get("device", "")
        return (signal, device) if device and is_real_interface(device) else None
    return read


def _tcp_state(labels: dict[str, str]) -> tuple[str, str] | None:
    state = labels.get("state", "")  # also rx_queued_bytes and tx_queued_bytes: bytes, not a state
    return ("tcp_connections", state) if state and not state.endswith("_bytes") else None


#: Metric name -> reader of its labels: (signal, series), or None to skip that series.
READERS: dict[str, Callable[[dict[str, str]], tuple[str, str] | None]] = {
    **{name: _plain(signal) for name, signal in _PLAIN.items()},
    "node_cpu_seconds_total": _cpu,
    "node_filesystem_size_bytes": _filesystem("fs_size_bytes"),
    "node_filesystem_avail_bytes": _filesystem("fs_avail_bytes"),
    "node_network_receive_bytes_total": _network("net_rx_bytes"),
    "node_network_transmit_bytes_total": _network("net_tx_bytes"),
    "node_tcp_connection_states": _tcp_state,
}
#: Longest label value read from a kept series; a longer one refuses the request (400): no real
#: mountpoint, device or host name comes near it, and it bounds what one series costs to store.
MAX_LABEL_VALUE_CHARS = 512


@attrs.frozen
class Extracted:
    """The observations found in one WriteRequest, and the samples skipped, by reason."""

    observations: list[Observation]
    samples: int
    skipped: Counter


def server_name(value: str) -> str:
    """The host of an ``instance`` label: ``host:9100`` -> ``host``, ``[::1]:9100`` -> ``::1``."""
    if value.startswith("["):
        host, sep, port = value[1:].partition("]")
        return host if sep and (not port or (port[0] == ":" and port[1:].isdigit())) else value
    host, sep, port = value.rpartition(":")
    return host if sep and port.isdigit() and ":" not in host else value


def extract(request, server_label: str, valid_name: Callable[[str], bool], earliest_ms: int,
            latest_ms: int) -> Extracted:
    """Read the node_exporter series of ``request`` (a WriteRequest) into observations.

    Skipped, and counted by reason: other series (``unused``), series without a valid server name,
    NaN values and Prometheus' stale markers, infinities, samples older than ``earliest_ms`` or newer
    than ``latest_ms``. A kept series with a label value over ``MAX_LABEL_VALUE_CHARS`` raises
    BadBodyError: the whole request is refused.
    """
    observations: list[Observation] = []
    skipped: Counter = Counter()
    names: dict[str, str | None] = {}
    total = 0
    for series in request.timeseries:
        samples = series.samples
        count = len(samples)
        total += count
        labels = series.labels
        first = labels[0] if labels else None
        metric = first.value if first is not None and first.name == "__name__" else _name_of(labels)
        reader = READERS.get(metric)
        if reader is None:
            skipped["unused"] += count
            continue
        label_map = {label.name: label.value for label in labels}
        if any(len(value) > MAX_LABEL_VALUE_CHARS for value in label_map.values()):
            raise BadBodyError(f"a label value of {metric} is over {MAX_LABEL_VALUE_CHARS} characters")
        instance = label_map.get(server_label, "")
        server = names.get(instance, "")
        if server == "":
            server = names[instance] = _valid_server(instance, valid_name)
        found = reader(label_map)
        if server is None or found is None:
            skipped["invalid_server_name" if server is None else "unused"] += count
            continue
        signal, key = found
        for sample in samples:
            value, ts = sample.value, sample.timestamp
            if value != value:  # NaN
                skipped["stale_marker" if is_stale_marker(value) else "nan"] += 1
            elif math.isinf(value):
                skipped["not_finite"] += 1
            elif ts < earliest_ms:
                skipped["too_old"] += 1
            elif ts > latest_ms:
                skipped["too_new"] += 1
            else:
                observations.append(Observation(server, signal, key, ts, value))
    return Extracted(observations, total, skipped)


def _name_of(labels) -> str:
    for label in labels:
        if label.name == "__name__":
            return label.value
    return ""


def _valid_server(instance: str, valid_name: Callable[[str], bool]) -> str | None:
    name = server_name(instance)
    return name if name and valid_name(name) else None
