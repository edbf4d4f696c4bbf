"""POST /v1/metrics with OTLP bodies built here (protobuf and JSON, gzip or not): spec status codes, partial success."""

from __future__ import annotations

import gzip
import json
import math
import time

import attrs
import pytest
import sqlalchemy as sa
from falcon import testing
from google.protobuf import json_format
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2

from argus.adapters.sql import tables as t
from argus.adapters.sql.sample_buffer import rollup_samples
from argus.adapters.telemetry import REGISTRY
from argus.domain.errors import ConfigurationError
from argus.entrypoints.settings import Settings
from tests.conftest import API_KEY

PROTOBUF, JSON = "application/x-protobuf", "application/json"
CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
GIB = 1024**3


def now_ns() -> int:
    return time.time_ns()


def kv(**attributes) -> list[KeyValue]:
    out = []
    for key, value in attributes.items():
        item = KeyValue(key=key.replace("__", "."))
        if isinstance(value, int):
            item.value.int_value = value
        else:
            item.value.string_value = value
        out.append(item)
    return out


def point(value: float, ts_ns: int, start_ns: int = 0, **attributes) -> metrics_pb2.NumberDataPoint:
    p = metrics_pb2.NumberDataPoint(time_unix_nano=ts_ns, start_time_unix_nano=start_ns, attributes=kv(**attributes))
    if isinstance(value, int):
        p.as_int = value
    else:
        p.as_double = value
    return p


def gauge(name: str, *points, unit: str = "") -> metrics_pb2.Metric:
    return metrics_pb2.Metric(name=name, unit=unit, gauge=metrics_pb2.Gauge(data_points=points))


def total(name: str, *points, unit: str = "", temporality=CUMULATIVE, monotonic=True) -> metrics_pb2.Metric:
    return metrics_pb2.Metric(name=name, unit=unit, sum=metrics_pb2.Sum(
        data_points=points, aggregation_temporality=temporality, is_monotonic=monotonic))


def request_of(*metrics, host: str | None = "web1", **resource) -> ExportMetricsServiceRequest:
    attributes = {**({"host.name": host} if host is not None else {}), **resource}
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.extend(kv(**attributes))
    rm.scope_metrics.add().metrics.extend(metrics)
    return request


def hostmetrics_scrape(ts_ns: int, k: int = 0, host: str = "web1") -> ExportMetricsServiceRequest:
    """One scrape as the collector's hostmetrics receiver sends it (cumulative sums), counters advanced ``k`` times."""
    cpu_share = {"user": 0.30, "system": 0.10, "idle": 0.50, "wait": 0.05, "interrupt": 0.0, "nice": 0.0,
                 "softirq": 0.03, "steal": 0.02}
    return request_of(
        total("system.cpu.time", *(point(1000 * share + 15.0 * k * share, ts_ns, cpu=f"cpu{c}", state=state)
                                   for c in range(2) for state, share in cpu_share.items()), unit="s"),
        total("system.memory.usage", *(point(v, ts_ns, state=s) for s, v in (
            ("used", 6 * GIB), ("free", 2 * GIB), ("buffered", 1 * GIB), ("cached", 7 * GIB),
            ("slab_reclaimable", GIB // 2), ("slab_unreclaimable", GIB // 4))), unit="By", monotonic=False),
        total("system.paging.usage", point(GIB // 2, ts_ns, device="/dev/sda3", state="used"),
              point(3 * GIB // 2, ts_ns, device="/dev/sda3", state="free"), unit="By", monotonic=False),
        total("system.filesystem.usage", *(point(v, ts_ns, device=d, mountpoint=m, type=ty, mode="rw", state=s)
                                           for d, m, ty in (("/dev/sda1", "/", "ext4"), ("tmpfs", "/run", "tmpfs"))
                                           for s, v in (("used", 60 * GIB), ("free", 35 * GIB), ("reserved", 5 * GIB)))
              , unit="By", monotonic=False),
        total("system.network.io", *(point(10**9 + 2_500_000 * 15 * k, ts_ns, device=d, direction=dr)
                                     for d in ("eth0", "lo") for dr in ("receive", "transmit")), unit="By"),
        gauge("system.cpu.load_average.1m", point(1.25, ts_ns), unit="{thread}"),
        gauge("system.uptime", point(40 * 86400.5, ts_ns), unit="s"),
        total("system.network.connections", point(7, ts_ns, protocol="tcp", state="CLOSE_WAIT"),
              point(40, ts_ns, protocol="tcp", state="ESTABLISHED"), unit="{connection}", monotonic=False),
        total("system.disk.io", point(123, ts_ns, device="sda", direction="read"), unit="By"),  # not read
        host=host,
    )


def post(client, body: bytes, content_type: str = PROTOBUF, headers=None, key: str | None = API_KEY):
    sent = {"Content-Type": content_type, "User-Agent": "OTel-OTLP-Exporter-Python/1.45.2", **(headers or {})}
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    return client.simulate_post("/v1/metrics", body=body, headers=sent)


def encoded(request: ExportMetricsServiceRequest, content_type: str = PROTOBUF) -> bytes:
    return request.SerializeToString() if content_type == PROTOBUF else json_format.MessageToJson(request).encode()


def response_of(result) -> ExportMetricsServiceResponse:
    response = ExportMetricsServiceResponse()
    if result.headers["Content-Type"] == PROTOBUF:
        response.ParseFromString(result.content)
    else:
        json_format.Parse(result.text, response)
    return response


@pytest.fixture
def settings(settings):
    """Minute steps: a test closes steps without waiting five minutes of data."""
    return attrs.evolve(settings, step_seconds=60, rate_limits="auth_failures=1000/minute")


def buffered(container) -> int:
    with container.db_engine().connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(rollup_samples)).scalar_one()


def signals(container) -> set[tuple[str, str]]:
    with container.db_engine().connect() as connection:
        return set(connection.execute(sa.select(rollup_samples.c.signal, rollup_samples.c.series)).all())


def ingested(source: str = "otlp") -> float:
    return REGISTRY.get_sample_value("argus_ingested_samples_total", {"source": source}) or 0.0


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_a_hostmetrics_scrape_is_stored_and_answered_in_the_request_encoding(client, container, content_type):
    before = ingested()
    result = post(client, encoded(hostmetrics_scrape(now_ns()), content_type), content_type)
    assert result.status_code == 200, result.text
    assert result.headers["Content-Type"] == content_type
    assert not response_of(result).HasField("partial_success")  # everything was fine
    stored = signals(container)
    assert {("cpu.user", "cpu0"), ("cpu.iowait", "cpu1"), ("cpu.irq", "cpu0"), ("mem_total_bytes", ""),
            ("mem_available_bytes", ""), ("swap_total_bytes", ""), ("fs_size_bytes", "/"), ("fs_avail_bytes", "/"),
            ("net_rx_bytes", "eth0"), ("net_tx_bytes", "eth0"), ("load1", ""), ("boot_time_s", ""),
            ("close_wait_back", "")} <= stored
    assert ("fs_size_bytes", "/run") not in stored and ("net_rx_bytes", "lo") not in stored  # not real
    assert ingested() - before == buffered(container) == 16 + 2 + 2 + 2 + 2 + 1 + 1 + 1


def test_json_with_original_field_names_numbers_for_int64_and_unknown_fields_is_read(client, container):
    ts = str(now_ns())
    body = {"resource_metrics": [{
        "resource": {"attributes": [{"key": "host.name", "value": {"stringValue": "db7.example.com"}}]},
        "schemaUrl": "https://opentelemetry.io/schemas/1.9.0", "somethingNew": {"x": 1},
        "scopeMetrics": [{"scope": {"name": "otelcol/hostmetricsreceiver/load", "version": "0.91.0"},
                          "metrics": [{"name": "system.cpu.load_average.1m", "unit": "{thread}",
                                       "gauge": {"dataPoints": [{"timeUnixNano": ts, "asDouble": 0.5}]}},
                                      {"name": "system.network.io", "unit": "By", "sum": {
                                          "aggregationTemporality": 2, "isMonotonic": True, "dataPoints": [
                                              {"timeUnixNano": int(ts), "asInt": "1234", "attributes": [
                                                  {"key": "device", "value": {"stringValue": "eth0"}},
                                                  {"key": "direction", "value": {"stringValue": "receive"}}]}]}}]}]}]}
    result = post(client, json.dumps(body).encode(), "application/json; charset=utf-8")
    assert result.status_code == 200, result.text
    assert result.json == {}
    assert signals(container) == {("load1", ""), ("net_rx_bytes", "eth0")}


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_gzip_bodies_are_accepted(client, container, content_type):
    body = gzip.compress(encoded(hostmetrics_scrape(now_ns()), content_type))
    result = post(client, body, content_type, headers={"Content-Encoding": "gzip"})
    assert result.status_code == 200, result.text
    assert buffered(container) > 20


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_rejected_points_come_back_as_a_partial_success_and_the_rest_is_stored(client, container, content_type):
    ts = now_ns()
    request = request_of(gauge("system.cpu.load_average.1m", point(1.0, ts), point(math.nan, ts + 1),
                               point(-2.0, ts + 2), point(math.inf, ts + 3)))
    nameless = request_of(gauge("system.cpu.load_average.1m", point(1.0, ts), point(2.0, ts + 1)), host=None)
    bad_name = request_of(gauge("system.cpu.load_average.1m", point(1.0, ts)), host="not a host name")
    request.resource_metrics.extend([*nameless.resource_metrics, *bad_name.resource_metrics])
    result = post(client, encoded(request, content_type), content_type)
    assert result.status_code == 200
    partial = response_of(result).partial_success
    assert partial.rejected_data_points == 6
    assert partial.error_message.startswith("Argus rejected 6 of 7 data points: ")
    assert "invalid_server_name 3 (the resource attribute host.name is missing" in partial.error_message
    assert "nan 1" in partial.error_message and "negative 1" in partial.error_message
    assert "not_finite 1" in partial.error_message
    assert buffered(container) == 1
    if content_type == JSON:
        assert result.json == {"partialSuccess": {"rejectedDataPoints": "6", "errorMessage": partial.error_message}}


def test_nothing_argus_reads_is_a_warning_without_rejected_points(client, container):
    request = request_of(total("http.server.request.count", point(5, now_ns()), temporality=DELTA))
    partial = response_of(post(client, encoded(request))).partial_success
    assert partial.rejected_data_points == 0 and "system.cpu.time" in partial.error_message
    assert buffered(container) == 0


def test_the_server_attribute_is_configurable(make_client, settings):
    client = make_client(attrs.evolve(settings, otlp_server_attribute="k8s.node.name"))
    request = request_of(gauge("system.cpu.load_average.1m", point(1.0, now_ns())), **{"k8s.node.name": "node-7"})
    assert response_of(post(client, encoded(request))).partial_success.rejected_data_points == 0
    request = request_of(gauge("system.cpu.load_average.1m", point(1.0, now_ns())))  # host.name only
    assert response_of(post(client, encoded(request))).partial_success.rejected_data_points == 1


def test_the_server_attribute_setting_is_read_and_checked():
    assert Settings.from_env({}).otlp_server_attribute == "host.name"
    assert Settings.from_env({"ARGUS_OTLP_SERVER_ATTRIBUTE": "k8s.node.name"}).otlp_server_attribute == "k8s.node.name"
    with pytest.raises(ConfigurationError, match="ARGUS_OTLP_SERVER_ATTRIBUTE"):
        Settings.from_env({"ARGUS_OTLP_SERVER_ATTRIBUTE": "host name"})


def test_points_too_new_or_too_old_are_rejected(make_client, settings, container):
    client = make_client(attrs.evolve(settings, records_retention_days=1))
    ts = now_ns()
    request = request_of(gauge("system.cpu.load_average.1m", point(1.0, ts + 3600 * 10**9),
                               point(1.0, ts - 3 * 86400 * 10**9), point(1.0, ts)))
    partial = response_of(post(client, encoded(request))).partial_success
    assert partial.rejected_data_points == 2
    assert "too_new 1" in partial.error_message and "too_old 1" in partial.error_message


def test_the_key_comes_as_x_api_key_or_bearer_and_nothing_is_stored_without_it(client, container):
    body = encoded(hostmetrics_scrape(now_ns()))
    assert post(client, body, key=None, headers={"X-API-Key": "wrong-key-0123456789"}).status_code == 401
    bare = testing.TestClient(container.app())  # no X-API-Key of its own
    assert post(bare, body, key="wrong-key-0123456789").status_code == 401
    assert post(bare, body, key=None).status_code == 401
    assert buffered(container) == 0
    assert post(client, body, key=None).status_code == 200  # the client's own X-API-Key
    stored = buffered(container)
    assert post(bare, encoded(hostmetrics_scrape(now_ns() + 10**9))).status_code == 200  # Authorization: Bearer
    assert buffered(container) == 2 * stored


@pytest.mark.parametrize("headers", [{"Content-Type": "text/plain"}, {"Content-Type": "application/grpc"},
                                     {"Content-Encoding": "br"}, {"Content-Encoding": "snappy"}])
def test_other_media_types_and_encodings_are_415(client, container, headers):
    result = post(client, encoded(hostmetrics_scrape(now_ns())), headers=headers)
    assert result.status_code == 415 and "detail" in result.json
    assert buffered(container) == 0


@pytest.mark.parametrize(("body", "content_type", "encoding"), [
    (b"definitely not protobuf", PROTOBUF, None),
    (encoded(hostmetrics_scrape(1_700_000_000 * 10**9))[:-5], PROTOBUF, None),
    (b"\x0a\xff\xff\xff\x0f", PROTOBUF, None),
    (b"{\"resourceMetrics\": 5}", JSON, None),
    (b"[]", JSON, None),
    (b"", JSON, None),
    (b"\xff\xfe", JSON, None),
    (b"[" * 50_000, JSON, None),
    (b"not gzip at all", PROTOBUF, "gzip"),
    (gzip.compress(encoded(hostmetrics_scrape(1_700_000_000 * 10**9)))[:-12], PROTOBUF, "gzip"),
])
def test_malformed_bodies_are_400_and_nothing_is_stored(client, container, body, content_type, encoding):
    result = post(client, body, content_type, headers={"Content-Encoding": encoding} if encoding else None)
    assert result.status_code == 400, result.text
    assert isinstance(result.json["detail"], str)
    assert buffered(container) == 0


def test_an_empty_protobuf_request_is_a_valid_empty_export(client, container):
    result = post(client, b"")
    assert result.status_code == 200 and result.content == b""


def test_a_body_over_the_limit_is_413(make_client, settings, container):
    small = make_client(attrs.evolve(settings, max_body_bytes=1024))
    body = encoded(hostmetrics_scrape(now_ns()))
    assert len(body) > 1024
    result = post(small, body)
    assert result.status_code == 413 and "1024" in result.json["detail"]


def test_a_gzip_body_decompressing_past_the_limit_is_413(make_client, settings, container):
    small = make_client(attrs.evolve(settings, max_body_bytes=1024))
    body = gzip.compress(b"\x00" * 10_000_000)  # a zip bomb: 10 MB from 10 KB
    assert len(body) < 20_000
    small = make_client(attrs.evolve(settings, max_body_bytes=20_000))
    result = post(small, body, headers={"Content-Encoding": "gzip"})
    assert result.status_code == 413 and "decompresses to more than 20000 bytes" in result.json["detail"]


def test_the_otlp_rate_limit_is_429_with_retry_after(make_client, settings):
    client = make_client(attrs.evolve(settings, rate_limits="otlp=2/minute"))
    body = encoded(request_of(gauge("system.cpu.load_average.1m", point(1.0, now_ns()))))
    assert [post(client, body).status_code for _ in range(2)] == [200, 200]
    result = post(client, body)
    assert result.status_code == 429 and int(result.headers["Retry-After"]) > 0


def test_a_resent_request_stores_nothing_twice(client, container):
    body = encoded(hostmetrics_scrape(now_ns()))
    assert post(client, body).status_code == 200
    stored = buffered(container)
    again = post(client, body)
    assert again.status_code == 200 and not response_of(again).HasField("partial_success")
    assert buffered(container) == stored


def records(container) -> list[dict]:
    with container.db_engine().connect() as connection:
        return [dict(r) for r in connection.execute(sa.select(t.records).order_by(t.records.c.ts)).mappings()]


def test_closed_steps_become_records_with_known_values_and_missing_fields_stay_missing(client, container):
    step_ns = (now_ns() // 60_000_000_000 - 4) * 60_000_000_000
    for k in range(10):  # every 15 s from one step to past the next one's grace (12 s at 60 s steps)
        assert post(client, encoded(hostmetrics_scrape(step_ns + 15 * k * 10**9 + 10**6, k))).status_code == 200
    assert container.step_closer()() == 2
    late = request_of(gauge("system.cpu.load_average.1m", point(9.0, step_ns + 30 * 10**9)))
    partial = response_of(post(client, encoded(late))).partial_success  # its step has closed
    assert partial.rejected_data_points == 1 and "out_of_order 1" in partial.error_message
    record = records(container)[-1]
    assert record["server_name"] == "web1" and record["ts"] == step_ns // 10**9 + 120
    assert record["cpu_user_pct"] == pytest.approx(30.0) and record["cpu_idle_pct"] == pytest.approx(50.0)
    assert record["cpu_iowait_pct"] == pytest.approx(5.0) and record["cpu_sys_pct"] == pytest.approx(13.0)
    assert record["mem_used_pct"] == pytest.approx(100 * 6 / 16)  # used / (used + free + buffered + cached)
    assert record["swap_used_pct"] == pytest.approx(25.0) and record["disk_usage_pct"] == pytest.approx(65.0)
    assert record["net_in_mb_s"] == pytest.approx(2.5) and record["net_out_mb_s"] == pytest.approx(2.5)
    assert record["load_average"] == 1.25 and record["uptime_days"] == 40 and record["back_close_wait"] == 7
    assert record["java_cpu_pct"] is None and record["front_close_wait"] is None  # missing, never invented


def test_delta_counters_give_the_same_record_as_cumulative_ones(client, container):
    """The SDK's delta temporality: each point is the increase since the one before."""
    step_ns = (now_ns() // 60_000_000_000 - 4) * 60_000_000_000
    share = {"user": 0.25, "system": 0.05, "idle": 0.65, "iowait": 0.05}
    for k in range(1, 10):
        ts, start = step_ns + 15 * k * 10**9 + 10**6, step_ns + 15 * (k - 1) * 10**9 + 10**6
        scrape = hostmetrics_scrape(ts, k, host="delta1")
        metrics = scrape.resource_metrics[0].scope_metrics[0].metrics
        del metrics[0], metrics[3]  # cumulative system.cpu.time and system.network.io
        metrics.extend([
            total("system.cpu.time", *(point(15.0 * s, ts, start, **{"cpu__mode": m, "cpu__logical_number": c})
                                       for c in range(4) for m, s in share.items()), unit="s", temporality=DELTA),
            total("system.network.io", point(1_000_000 * 15, ts, start, device="eth0", direction="transmit"),
                  unit="By", temporality=DELTA)])
        assert not response_of(post(client, encoded(scrape))).HasField("partial_success")
    assert container.step_closer()() == 2
    first, second = records(container)
    for record in (first, second):
        assert record["cpu_user_pct"] == pytest.approx(25.0) and record["cpu_idle_pct"] == pytest.approx(65.0)
        assert record["cpu_sys_pct"] == pytest.approx(5.0) and record["cpu_iowait_pct"] == pytest.approx(5.0)
        assert record["net_out_mb_s"] == pytest.approx(1.0, rel=1e-3)  # the first delta starts 2 ms late
        assert record["net_in_mb_s"] is None  # no receive series was sent


def test_a_delta_sum_of_a_level_is_rejected(client, container):
    request = request_of(total("system.memory.usage", point(5, now_ns(), now_ns() - 10**9, state="used"),
                               point(5, now_ns(), now_ns() - 10**9, state="free"), temporality=DELTA, unit="By"))
    partial = response_of(post(client, encoded(request))).partial_success
    assert partial.rejected_data_points == 2 and "delta_temporality 2" in partial.error_message


def test_a_host_without_swap_has_none_used(client, container):
    ts = now_ns()
    request = request_of(total("system.paging.operations", point(10, ts, direction="page_in", type="major"),
                               unit="{operations}"))
    assert post(client, encoded(request)).status_code == 200
    with container.db_engine().connect() as connection:
        rows = connection.execute(sa.select(rollup_samples.c.signal, rollup_samples.c.value)).all()
    assert sorted(rows) == [("swap_free_bytes", 0.0), ("swap_total_bytes", 0.0)]


def _refused_whole_or_read_whole(client, container, body: bytes, content_type: str, encoding: str | None) -> None:
    before = buffered(container)
    result = post(client, body, content_type, headers={"Content-Encoding": encoding} if encoding else None)
    assert result.status_code in (200, 400, 413), result.text
    if result.status_code != 200:
        assert buffered(container) == before and "detail" in result.json


FUZZ_NS = (time.time_ns() // 10**9) * 10**9  # one time for every example: the same bodies for the same draws
FUZZ = hypothesis_settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(body=st.binary(min_size=1, max_size=300), content_type=st.sampled_from([PROTOBUF, JSON]),
       encoding=st.sampled_from([None, "gzip"]))
def test_fuzz_arbitrary_bytes_are_refused_whole_or_read_whole(client, container, body, content_type, encoding):
    _refused_whole_or_read_whole(client, container, body, content_type, encoding)


@FUZZ
@given(data=st.data(), content_type=st.sampled_from([PROTOBUF, JSON]), zipped=st.booleans())
def test_fuzz_cut_or_flipped_real_bodies_never_store_part_of_a_refused_request(client, container, data, content_type,
                                                                                 zipped):
    raw = encoded(hostmetrics_scrape(FUZZ_NS), content_type)
    if zipped:
        raw = gzip.compress(raw, mtime=0)
    if data.draw(st.booleans()):
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    else:
        i = data.draw(st.integers(0, len(raw) - 1))
        raw = raw[:i] + bytes([raw[i] ^ data.draw(st.integers(1, 255))]) + raw[i + 1:]
    _refused_whole_or_read_whole(client, container, raw, content_type, "gzip" if zipped else None)


@FUZZ
@given(data=st.data())
def test_fuzz_any_point_values_times_and_attributes_never_fail(client, container, data):
    """Valid OTLP with hostile contents: 200 with the rejected points counted, never a 4xx/5xx."""
    points = [point(data.draw(st.one_of(st.floats(), st.integers(-(2**63), 2**63 - 1))),
                    data.draw(st.integers(0, 2**64 - 1)), data.draw(st.integers(0, 2**64 - 1)),
                    device=data.draw(st.text(max_size=600)), direction=data.draw(st.sampled_from(["receive", "x"])))
              for _ in range(data.draw(st.integers(1, 4)))]
    temporality = data.draw(st.sampled_from([0, CUMULATIVE, DELTA]))
    request = request_of(total("system.network.io", *points, unit=data.draw(st.sampled_from(["By", "", "bits"])),
                               temporality=temporality), host=data.draw(st.text(max_size=140)))
    result = post(client, encoded(request))
    assert result.status_code == 200, result.text
    assert response_of(result).partial_success.rejected_data_points <= len(points)
