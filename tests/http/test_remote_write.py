"""POST /api/v1/write with real snappy + protobuf bodies: the spec's status codes, nothing partial stored."""

from __future__ import annotations

import math
import struct
import time

import attrs
import cramjam
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from argus.adapters.prometheus import wire
from argus.adapters.prometheus.sample_hosts import Host, shard_batches, write_request
from argus.adapters.sql import tables as t
from argus.adapters.sql.sample_buffer import rollup_samples
from tests.conftest import API_KEY

HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
           "X-Prometheus-Remote-Write-Version": "0.1.0", "User-Agent": "Prometheus/2.42.0"}
STALE_NAN = struct.unpack("<d", struct.pack("<Q", wire.STALE_NAN_BITS))[0]


def now_ms() -> int:
    return int(time.time() * 1000)


def post(client, body: bytes, headers=None, key: str | None = API_KEY):
    sent = {**HEADERS, **(headers or {})}
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    return client.simulate_post("/api/v1/write", body=body, headers=sent)


@pytest.fixture
def settings(settings):
    """Minute steps: a test closes steps without waiting five minutes of data."""
    return attrs.evolve(settings, step_seconds=60)


def buffered(container) -> int:
    with container.db_engine().connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(rollup_samples)).scalar_one()


def cpu(value=1.0, ts=None, instance="web1:9100", mode="user", **extra):
    labels = {"__name__": "node_cpu_seconds_total", "cpu": "0", "mode": mode, "instance": instance, **extra}
    return labels, value, now_ms() if ts is None else ts


def body_of(*samples) -> bytes:
    return wire.encode(write_request(list(samples)))


def test_a_shard_batch_is_stored_and_says_what_it_kept(client, container):
    body = next(shard_batches([Host("web1:9100"), Host("web2:9100"), Host("web3:9100"), Host("web4:9100")],
                              now_ms()))
    result = post(client, body)
    assert result.status_code == 200, result.text
    assert result.json["samples_received"] == 2000
    stored = result.json["samples_stored"]
    assert stored == buffered(container) > 100
    assert result.json["samples_skipped"] == {"unused": 2000 - stored}


def test_the_key_comes_as_a_bearer_token_or_x_api_key_and_nothing_is_stored_without_it(client, container):
    body = body_of(cpu())
    assert post(client, body, key=None, headers={"X-API-Key": "wrong-key-0123456789"}).status_code == 401
    assert post(client, body, key="wrong-key-0123456789", headers={"X-API-Key": None}).status_code == 401
    assert buffered(container) == 0
    assert post(client, body, key=None).status_code == 200  # the client's own X-API-Key
    assert buffered(container) == 1


@pytest.mark.parametrize("headers", [{"Content-Type": "application/json"}, {"Content-Type": None},
                                     {"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request"},
                                     {"Content-Encoding": "gzip"}])
def test_other_media_types_and_encodings_are_415(client, container, headers):
    result = post(client, body_of(cpu()), headers=headers)
    assert result.status_code == 415 and "detail" in result.json
    assert buffered(container) == 0


def test_the_v1_proto_parameter_is_accepted(client):
    headers = {"Content-Type": "application/x-protobuf; proto=prometheus.WriteRequest"}
    assert post(client, body_of(cpu()), headers=headers).status_code == 200


@pytest.mark.parametrize("body", [
    b"definitely not snappy",
    bytes(cramjam.snappy.compress(write_request([cpu()]).SerializeToString())),  # framed, not block format
    bytes(cramjam.snappy.compress_raw(write_request([cpu(), cpu(mode="idle")]).SerializeToString()[:-7])),
    bytes(cramjam.snappy.compress_raw(b"\x0a\xff\xff\xff\x0f")),
    body_of(cpu())[:-3],
    b"",
])
def test_malformed_snappy_or_protobuf_is_400_and_nothing_is_stored(client, container, body):
    result = post(client, body)
    assert result.status_code == 400, result.text
    assert isinstance(result.json["detail"], str)
    assert buffered(container) == 0


def test_a_body_over_the_limit_is_413(make_client, settings, container):
    small = make_client(attrs.evolve(settings, max_body_bytes=1024))
    body = body_of(*(cpu(mode="user", cpu_extra=str(i)) for i in range(200)))
    assert len(body) > 1024
    result = post(small, body)
    assert result.status_code == 413 and "1024" in result.json["detail"]


def test_a_body_decompressing_past_the_limit_is_413_before_it_is_decompressed(make_client, settings):
    small = make_client(attrs.evolve(settings, max_body_bytes=1024))
    body = bytes(cramjam.snappy.compress_raw(b"\x00" * 10_000))  # a tiny zip bomb
    assert len(body) < 1024
    result = post(small, body)
    assert result.status_code == 413 and "decompresses to 10000 bytes" in result.json["detail"]


def test_a_huge_label_value_refuses_the_whole_request(client, container):
    result = post(client, body_of(cpu(), cpu(mode="idle", instance="x" * 10_000)))
    assert result.status_code == 400 and "512" in result.json["detail"]
    assert buffered(container) == 0


def test_nan_and_stale_markers_are_skipped_and_counted(client, container):
    result = post(client, body_of(cpu(value=math.nan), cpu(value=STALE_NAN, mode="idle"), cpu(value=3.0, mode="iowait")))
    assert result.status_code == 200
    assert result.json["samples_stored"] == 1 == buffered(container)
    assert result.json["samples_skipped"] == {"nan": 1, "stale_marker": 1}


def test_a_resent_request_stores_nothing_twice(client, container):
    body = body_of(cpu(ts=now_ms() - 1000), cpu(mode="idle"))
    assert post(client, body).json["samples_stored"] == 2
    again = post(client, body).json
    assert again["samples_stored"] == 0 and again["samples_skipped"] == {"duplicate": 2}
    assert buffered(container) == 2


def test_samples_too_far_ahead_or_too_old_are_skipped(make_client, settings):
    client = make_client(attrs.evolve(settings, records_retention_days=1))
    result = post(client, body_of(cpu(ts=now_ms() + 3_600_000), cpu(ts=now_ms() - 3 * 86_400_000, mode="idle")))
    assert result.status_code == 200 and result.json["samples_skipped"] == {"too_new": 1, "too_old": 1}


def test_a_closed_step_becomes_a_record_with_missing_fields_nan(client, container):
    host = Host("db7.example.com:9100")
    step = (now_ms() // 60_000 - 4) * 60_000
    for k in range(10):  # every 15 s from one step to past the next one's grace (12 s at 60 s steps)
        for body in shard_batches([host], step + 15_000 * k + 1):
            assert post(client, body).status_code == 200
    assert container.step_closer()() == 2  # the steps ending step + 60 s and step + 120 s
    late = post(client, body_of(cpu(ts=step + 30_000, instance="db7.example.com:9100", mode="nice"))).json
    assert late["samples_skipped"] == {"out_of_order": 1}
    with container.db_engine().connect() as connection:
        rows = connection.execute(sa.select(t.records).order_by(t.records.c.ts)).mappings().all()
    assert [r["ts"] for r in rows] == [step // 1000 + 60, step // 1000 + 120]
    record = rows[-1]
    assert record["server_name"] == "db7.example.com" and record["status"] == "healthy"
    assert record["cpu_user_pct"] == pytest.approx(30.0) and record["cpu_idle_pct"] == pytest.approx(55.0)
    assert record["mem_used_pct"] == pytest.approx(62.5) and record["disk_usage_pct"] == pytest.approx(65.0)
    assert record["net_in_mb_s"] == pytest.approx(2.5) and record["load_average"] == 1.25
    assert record["java_cpu_pct"] is None and record["back_close_wait"] is None  # missing, never invented
    assert record["front_close_wait"] is None


def test_the_remote_write_rate_limit_is_429_with_retry_after(make_client, settings):
    client = make_client(attrs.evolve(settings, rate_limits="remote_write=2/minute"))
    assert [post(client, body_of(cpu(mode=m))).status_code for m in ("user", "idle")] == [200, 200]
    result = post(client, body_of(cpu(mode="iowait")))
    assert result.status_code == 429 and int(result.headers["Retry-After"]) > 0


def _stores_nothing_or_all(client, container, body: bytes) -> None:
    before = buffered(container)
    result = post(client, body)
    assert result.status_code in (200, 400, 413), result.text
    if result.status_code != 200:
        assert buffered(container) == before
    else:
        assert buffered(container) == before + result.json["samples_stored"]


FUZZ = hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(body=st.binary(min_size=1, max_size=300))
def test_fuzz_arbitrary_bytes_are_refused_whole_or_read_whole(client, container, body):
    _stores_nothing_or_all(client, container, body)


@FUZZ
@given(raw=st.binary(min_size=1, max_size=300))
def test_fuzz_snappy_of_arbitrary_bytes_is_refused_whole_or_read_whole(client, container, raw):
    _stores_nothing_or_all(client, container, bytes(cramjam.snappy.compress_raw(raw)))


@FUZZ
@given(data=st.data())
def test_fuzz_cut_or_flipped_real_bodies_never_store_part_of_a_refused_request(client, container, data):
    raw = write_request([cpu(mode=m, instance=f"h{i}:1") for i in range(3) for m in ("user", "idle")]).SerializeToString()
    if data.draw(st.booleans()):
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    else:
        i = data.draw(st.integers(0, len(raw) - 1))
        raw = raw[:i] + bytes([raw[i] ^ data.draw(st.integers(1, 255))]) + raw[i + 1:]
    _stores_nothing_or_all(client, container, bytes(cramjam.snappy.compress_raw(raw)))


@FUZZ
@given(cut=st.integers(1, 40))
def test_fuzz_a_truncated_snappy_block_is_always_400(client, container, cut):
    body = body_of(*(cpu(mode=m) for m in ("user", "idle", "iowait", "system")))
    result = post(client, body[:-cut] if cut < len(body) else body[:1])
    assert result.status_code == 400 and buffered(container) == 0
