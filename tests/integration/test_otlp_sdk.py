"""The OpenTelemetry Python SDK's OTLP/HTTP exporter as the client of a running Argus (real HTTP, real rollup).

A MeterProvider with observable instruments named as the collector's hostmetrics receiver names
them, reading this machine's /proc, exports every 200 ms to Argus served on a loopback port; the
step closer (the engine's chore) then turns the closed 2-second steps into records for that host.
"""

from __future__ import annotations

import os
import socketserver
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import attrs
import pytest
import sqlalchemy as sa

from argus.adapters.sql import tables as t
from argus.adapters.telemetry import REGISTRY
from tests.conftest import API_KEY

metrics_sdk = pytest.importorskip("opentelemetry.sdk.metrics")
from opentelemetry.exporter.otlp.proto.http import Compression  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # noqa: E402
from opentelemetry.metrics import CallbackOptions, Observation  # noqa: E402
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402

pytestmark = [pytest.mark.slow,  # 7 s each: two whole steps of exports
              pytest.mark.skipif(not Path("/proc/stat").exists(), reason="reads Linux's /proc like hostmetrics")]
STEP_S = 2
HOST = "otel-host-1"


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


@contextmanager
def serving(app):
    """Serve a WSGI app on a free loopback port; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, server_class=_ThreadingServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def meminfo() -> dict[str, int]:
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, rest = line.partition(":")
        out[name] = int(rest.split()[0]) * 1024
    return out


def cpu_time(options: CallbackOptions):
    """/proc/stat in seconds per CPU and state, with hostmetrics' state names."""
    tick = os.sysconf("SC_CLK_TCK")
    states = ("user", "nice", "system", "idle", "wait", "interrupt", "softirq", "steal")
    for line in Path("/proc/stat").read_text().splitlines():
        fields = line.split()
        if fields[0].startswith("cpu") and fields[0] != "cpu":
            for state, value in zip(states, fields[1:9], strict=False):
                yield Observation(int(value) / tick, {"cpu": fields[0], "state": state})


def memory_usage(options: CallbackOptions):
    m = meminfo()
    cached = m["Cached"] + m.get("SReclaimable", 0)  # as gopsutil (and so hostmetrics) counts it
    used = m["MemTotal"] - m["MemFree"] - m["Buffers"] - cached
    for state, value in (("used", used), ("free", m["MemFree"]), ("buffered", m["Buffers"]), ("cached", cached),
                         ("slab_reclaimable", m.get("SReclaimable", 0)), ("slab_unreclaimable", m.get("SUnreclaim", 0))):
        yield Observation(value, {"state": state})


def paging_usage(options: CallbackOptions):
    m = meminfo()
    yield Observation(m["SwapTotal"] - m["SwapFree"], {"device": "swap", "state": "used"})
    yield Observation(m["SwapFree"], {"device": "swap", "state": "free"})


def filesystem_usage(options: CallbackOptions):
    # The root's real numbers; its type is declared ext4 so that a container's overlay root counts as a disk.
    fs = os.statvfs("/")
    used, free = (fs.f_blocks - fs.f_bfree) * fs.f_frsize, fs.f_bavail * fs.f_frsize
    reserved = (fs.f_bfree - fs.f_bavail) * fs.f_frsize
    for state, value in (("used", used), ("free", free), ("reserved", reserved)):
        yield Observation(value, {"device": "/dev/root", "mountpoint": "/", "type": "ext4", "mode": "rw",
                                  "state": state})


def network_io(options: CallbackOptions):
    for line in Path("/proc/net/dev").read_text().splitlines()[2:]:
        device, _, rest = line.partition(":")
        fields = rest.split()
        yield Observation(int(fields[0]), {"device": device.strip(), "direction": "receive"})
        yield Observation(int(fields[8]), {"device": device.strip(), "direction": "transmit"})


def load_1m(options: CallbackOptions):
    yield Observation(os.getloadavg()[0])


def uptime(options: CallbackOptions):
    yield Observation(float(Path("/proc/uptime").read_text().split()[0]))


def host_meter_provider(url: str, **exporter_options) -> metrics_sdk.MeterProvider:
    exporter = OTLPMetricExporter(endpoint=f"{url}/v1/metrics", headers={"Authorization": f"Bearer {API_KEY}"},
                                  timeout=10, **exporter_options)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=200)
    provider = metrics_sdk.MeterProvider(metric_readers=[reader],
                                         resource=Resource.create({"host.name": HOST, "service.name": "hostmetrics"}))
    meter = provider.get_meter("otelcol/hostmetricsreceiver")
    meter.create_observable_counter("system.cpu.time", [cpu_time], unit="s")
    meter.create_observable_up_down_counter("system.memory.usage", [memory_usage], unit="By")
    meter.create_observable_up_down_counter("system.paging.usage", [paging_usage], unit="By")
    meter.create_observable_up_down_counter("system.filesystem.usage", [filesystem_usage], unit="By")
    meter.create_observable_counter("system.network.io", [network_io], unit="By")
    meter.create_observable_gauge("system.cpu.load_average.1m", [load_1m], unit="{thread}")
    meter.create_observable_gauge("system.uptime", [uptime], unit="s")
    return provider


@pytest.fixture
def settings(settings):
    return attrs.evolve(settings, step_seconds=STEP_S)


def host_records(container) -> list[dict]:
    with container.db_engine().connect() as connection:
        query = sa.select(t.records).where(t.records.c.server_name == HOST).order_by(t.records.c.ts)
        return [dict(r) for r in connection.execute(query).mappings()]


def ingested() -> float:
    return REGISTRY.get_sample_value("argus_ingested_samples_total", {"source": "otlp"}) or 0.0


@pytest.mark.parametrize("exporter_options", [
    pytest.param({}, id="cumulative"),
    pytest.param({"compression": Compression.Gzip,
                  "preferred_temporality": {metrics_sdk.ObservableCounter: AggregationTemporality.DELTA}},
                 id="delta-gzip"),
])
def test_the_sdk_exporter_feeds_a_host_that_becomes_records_with_sane_values(container, exporter_options):
    before = ingested()
    with serving(container.app()) as url:
        provider = host_meter_provider(url, **exporter_options)
        try:
            time.sleep(3 * STEP_S + 0.5)  # two whole steps and the next one's grace
            assert provider.force_flush(10_000)
        finally:
            provider.shutdown()
    assert ingested() - before > 50
    closer = container.step_closer()
    deadline = time.monotonic() + 10
    while len(host_records(container)) < 2 and time.monotonic() < deadline:
        closer()
        time.sleep(0.2)
    records = host_records(container)
    assert len(records) >= 2, f"records: {records}"
    m, fs = meminfo(), os.statvfs("/")
    cached = m["Cached"] + m.get("SReclaimable", 0)
    mem_used_pct = 100 * (m["MemTotal"] - m["MemFree"] - m["Buffers"] - cached) / m["MemTotal"]
    disk_pct = 100 * (1 - fs.f_bavail / fs.f_blocks)
    for record in records:
        cpu = [record[f"cpu_{name}_pct"] for name in ("user", "sys", "iowait", "idle")]
        # steal time counts in the total and in no field: the four add up to 100 - steal (a shared VM steals)
        assert all(0 <= value <= 100 for value in cpu) and 0 < sum(cpu) <= 100.001, cpu
        assert record["mem_used_pct"] == pytest.approx(mem_used_pct, abs=10)  # a shared machine's memory moves
        assert record["disk_usage_pct"] == pytest.approx(disk_pct, abs=2)
        assert 0 <= record["swap_used_pct"] <= 100 and record["load_average"] >= 0
        assert record["uptime_days"] == min(365, int(float(Path("/proc/uptime").read_text().split()[0]) // 86400))
        assert record["java_cpu_pct"] is None and record["back_close_wait"] is None  # not sent: missing
