"""Remote-write bodies: snappy + protobuf through the real libraries, and node_exporter's series picked out."""

from __future__ import annotations

import math
import struct

import cramjam
import pytest

from argus.adapters.prometheus import node_exporter, wire
from argus.adapters.prometheus.sample_hosts import Host, write_request

STALE_NAN = struct.unpack("<d", struct.pack("<Q", wire.STALE_NAN_BITS))[0]
T = 1_800_000_000_000


def valid(name: str) -> bool:
    return name.isascii() and 0 < len(name) <= 128 and " " not in name


def extract(samples, label="instance", earliest=0, latest=10**15):
    return node_exporter.extract(write_request(samples), label, valid, earliest, latest)


def cpu(instance="web1:9100", mode="user", value=1.0, ts=T, **extra):
    return {"__name__": "node_cpu_seconds_total", "cpu": "0", "mode": mode, "instance": instance, **extra}, value, ts


def test_a_body_round_trips_through_snappy_and_protobuf():
    body = wire.encode(write_request([cpu(value=12.5)]))
    request = wire.decode(body, 1 << 20)
    (series,) = request.timeseries
    assert [(label.name, label.value) for label in series.labels][0] == ("__name__", "node_cpu_seconds_total")
    assert (series.samples[0].value, series.samples[0].timestamp) == (12.5, T)


@pytest.mark.parametrize("body", [b"not snappy at all", bytes(cramjam.snappy.compress_raw(b"\xff\xff\xff")),
                                  bytes(cramjam.snappy.compress_raw(b"\x0a\x10\x0a\x05")),  # truncated series
                                  bytes(cramjam.snappy.compress_raw(b"\x0a\x04\x0a\x02\x0a\x00\xff"))])
def test_bad_bodies_are_bad_body_errors(body):
    with pytest.raises(wire.BadBodyError):
        wire.decode(body, 1 << 20)


def test_a_body_claiming_a_huge_decompressed_size_is_refused_before_decompressing():
    body = wire.encode(write_request([cpu()] * 50))
    with pytest.raises(wire.BodyTooLargeError, match="over the limit"):
        wire.decode(body, 100)


def test_invalid_utf8_in_a_label_is_a_bad_body():
    label = b"\x0a\x01\xff"  # Label{name: b"\xff"}
    series = b"\x0a" + bytes([len(label)]) + label
    body = bytes(cramjam.snappy.compress_raw(b"\x0a" + bytes([len(series)]) + series))
    with pytest.raises(wire.BadBodyError, match="UTF-8"):
        wire.decode(body, 1 << 20)


def test_the_stale_marker_is_told_from_other_nans():
    assert wire.is_stale_marker(STALE_NAN)
    assert not wire.is_stale_marker(math.nan) and not wire.is_stale_marker(1.0)


@pytest.mark.parametrize("instance, server", [("web1:9100", "web1"), ("10.0.0.7:9100", "10.0.0.7"),
                                              ("[::1]:9100", "::1"), ("[fe80::1]", "fe80::1"), ("::1", "::1"),
                                              ("db-01.example.com", "db-01.example.com"), ("host:abc", "host:abc")])
def test_the_port_is_stripped_from_the_instance(instance, server):
    assert node_exporter.server_name(instance) == server


def test_node_exporter_series_become_observations_and_the_rest_is_skipped_by_name():
    host = Host("web1:9100")
    samples = [(labels, value, T) for labels, value in host.series(T)]
    extracted = extract(samples)
    signals = {(o.signal, o.series) for o in extracted.observations}
    assert extracted.samples == len(samples) > 600
    assert {o.server for o in extracted.observations} == {"web1"}
    assert ("cpu.user", "3") in signals and ("mem_available_bytes", "") in signals and ("load1", "") in signals
    assert {s for s in signals if s[0].startswith("fs_")} == {("fs_size_bytes", "/"), ("fs_avail_bytes", "/"),
                                                               ("fs_size_bytes", "/data"), ("fs_avail_bytes", "/data"),
                                                               ("fs_size_bytes", "/boot"), ("fs_avail_bytes", "/boot")}
    assert {s for s in signals if s[0].startswith("net_")} == {("net_rx_bytes", "eth0"), ("net_tx_bytes", "eth0")}
    assert len(extracted.observations) == 32 + 4 + 6 + 2 + 2  # cpu, memory, filesystems, network, load1 + boot
    assert extracted.skipped == {"unused": len(samples) - len(extracted.observations)}


def test_nan_stale_markers_infinities_and_times_out_of_range_are_skipped_and_counted():
    extracted = extract([cpu(value=math.nan), cpu(value=STALE_NAN), cpu(value=math.inf), cpu(ts=T - 10),
                         cpu(ts=T + 10), cpu(value=5.0)], earliest=T - 1, latest=T + 1)
    assert [(o.value, o.ts_ms) for o in extracted.observations] == [(5.0, T)]
    assert extracted.skipped == {"nan": 1, "stale_marker": 1, "not_finite": 1, "too_old": 1, "too_new": 1}


def test_a_series_without_a_valid_server_name_is_skipped_not_the_request():
    extracted = extract([cpu(instance="bad name:9100"), cpu(instance=""), cpu(instance="ok:1")])
    assert [o.server for o in extracted.observations] == ["ok"]
    assert extracted.skipped == {"invalid_server_name": 2}


def test_tcp_states_are_kept_and_queue_byte_counts_are_not():
    states = [({"__name__": "node_tcp_connection_states", "state": state, "instance": "web1"}, 2.0, T)
              for state in ("close_wait", "listen", "rx_queued_bytes", "tx_queued_bytes")]
    extracted = extract(states)
    assert [(o.signal, o.series) for o in extracted.observations] == [("tcp_connections", "close_wait"),
                                                                       ("tcp_connections", "listen")]


def test_the_server_label_is_configurable():
    extracted = extract([cpu(instance="10.0.0.1:9100", nodename="web7")], label="nodename")
    assert [o.server for o in extracted.observations] == ["web7"]


def test_a_huge_label_value_on_a_kept_series_refuses_the_request():
    with pytest.raises(wire.BadBodyError, match="over 512"):
        extract([cpu(), cpu(instance="h" * 600)])
    unused = {"__name__": "node_uname_info", "release": "x" * 100_000, "instance": "web1"}
    assert extract([(unused, 1.0, T)]).skipped == {"unused": 1}  # never read, never stored


def test_labels_in_any_order_are_read():
    request = wire.WriteRequest()
    series = request.timeseries.add()
    for name, value in (("instance", "web1:9100"), ("__name__", "node_load1"), ("AAA", "first")):
        series.labels.add(name=name, value=value)
    series.samples.add(value=1.5, timestamp=T)
    extracted = node_exporter.extract(request, "instance", valid, 0, 10**15)
    assert [(o.signal, o.value) for o in extracted.observations] == [("load1", 1.5)]
