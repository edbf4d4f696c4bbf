"""POST /feed/data: strict validation, atomic durable writes, the reference's response shapes."""

from __future__ import annotations

import attrs
import orjson
import pytest
import sqlalchemy as sa

from argus.adapters.sql import tables as t
from argus.domain.metrics import METRIC_FIELDS
from argus.testing import wire_record

NUMBER_FIELDS = [f for f in METRIC_FIELDS if f not in ("back_close_wait", "front_close_wait", "uptime_days")]
PERCENT_FIELDS = [f for f in NUMBER_FIELDS if f.endswith("_pct")]
ALL_FIELDS = ["timestamp", "server_name", "status", *METRIC_FIELDS]


def _stored(container) -> int:
    with container.db_engine().connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(t.records)).scalar_one()


def _post(client, records, **kwargs):
    return client.simulate_post("/feed/data", json={"records": records}, **kwargs)


def test_a_valid_batch_is_stored_and_reports_warmup_progress(client, container):
    result = _post(client, [wire_record(f"ppweb{i:03d}") for i in range(45)])
    assert result.status_code == 200
    assert result.json == {
        "status": "warming_up", "records_received": 45, "tick": 1, "warmup_complete": False,
        "progress": "45% (need 100 records minimum)",
    }
    assert _stored(container) == 45


def test_once_100_records_exist_batches_are_accepted_with_the_window_size(client):
    _post(client, [wire_record(f"s{i}", 0) for i in range(60)])
    _post(client, [wire_record(f"s{i}", 1) for i in range(60)])
    result = _post(client, [wire_record("s0", 2)])
    assert result.json == {
        "status": "accepted", "records_received": 1, "tick": 3, "rolling_window_size": 2880, "warmup_complete": True,
    }


def test_resending_a_batch_is_idempotent(client, container):
    batch = [wire_record("a", step) for step in range(3)]
    assert _post(client, batch).status_code == 200
    assert _post(client, batch).status_code == 200
    assert _stored(container) == 3


def test_timestamps_with_a_zone_are_stored_in_utc(client, container):
    _post(client, [wire_record("a", timestamp="2025-01-15T12:00:00+02:00"), wire_record("b", timestamp="2025-01-15T10:00:00Z")])
    with container.db_engine().connect() as connection:
        stamps = set(connection.execute(sa.select(t.records.c.ts)).scalars())
    assert stamps == {1736935200}  # 2025-01-15T10:00:00Z


def test_unknown_extra_fields_are_ignored(client, container):
    result = _post(client, [wire_record("a", disk_io_mb_s=3.0, note="x")])
    assert result.status_code == 200 and _stored(container) == 1


BAD_VALUES = [
    *[(f, "12.5", "type_error.float") for f in NUMBER_FIELDS],
    *[(f, True, "type_error.float") for f in NUMBER_FIELDS],
    *[(f, None, "type_error.float") for f in NUMBER_FIELDS],
    *[(f, -0.1, "value_error.number.not_ge") for f in NUMBER_FIELDS],
    *[(f, 100.5, "value_error.number.not_le") for f in PERCENT_FIELDS],
    *[(f, 1.5, "type_error.integer") for f in ("back_close_wait", "front_close_wait", "uptime_days")],
    *[(f, "3", "type_error.integer") for f in ("back_close_wait", "front_close_wait", "uptime_days")],
    *[(f, -1, "value_error.number.not_ge") for f in ("back_close_wait", "front_close_wait", "uptime_days")],
    ("uptime_days", 366, "value_error.number.not_le"),
    ("back_close_wait", 10**12, "value_error.number.not_le"),
    ("timestamp", "yesterday", "value_error.datetime"),
    ("timestamp", "2025-02-30T10:00:00", "value_error.datetime"),
    ("timestamp", 1736935200, "value_error.datetime"),
    ("timestamp", "1900-01-01T00:00:00", "value_error.datetime"),
    ("server_name", "", "value_error.str.regex"),
    ("server_name", "db 01", "value_error.str.regex"),
    ("server_name", "x" * 129, "value_error.str.regex"),
    ("server_name", "../etc", "value_error.str.regex"),
    ("server_name", 7, "type_error.str"),
    ("status", "broken", "type_error.enum"),
    ("status", "Healthy", "type_error.enum"),
    ("status", None, "type_error.enum"),
]


@pytest.mark.parametrize(("field", "value", "error_type"), BAD_VALUES, ids=lambda v: repr(v)[:30])
def test_a_bad_field_rejects_the_whole_batch_naming_its_location(client, container, field, value, error_type):
    result = _post(client, [wire_record("good", 0), wire_record("bad", 1, **{field: value})])
    assert result.status_code == 422
    (detail,) = result.json["detail"]
    assert detail["loc"] == ["body", "records", 1, field]
    assert detail["type"] == error_type and isinstance(detail["msg"], str) and detail["msg"]
    assert _stored(container) == 0


@pytest.mark.parametrize("field", ALL_FIELDS)
def test_a_missing_field_is_reported(client, container, field):
    record = wire_record("a")
    del record[field]
    result = _post(client, [record])
    assert result.status_code == 422
    assert result.json["detail"] == [{"loc": ["body", "records", 0, field], "msg": "field required", "type": "value_error.missing"}]
    assert _stored(container) == 0


def test_non_finite_numbers_are_rejected(client, container):
    body = b'{"records": [' + orjson.dumps(wire_record("a")).replace(b'"mem_used_pct":72.1', b'"mem_used_pct":NaN') + b"]}"
    result = client.simulate_post("/feed/data", body=body, content_type="application/json")
    assert result.status_code == 400  # NaN is not JSON
    assert "not valid JSON" in result.json["detail"]
    assert _stored(container) == 0


def test_every_bad_field_of_every_bad_record_is_listed(client):
    result = _post(client, [wire_record("a", cpu_user_pct=-1, status="x"), 5, wire_record("c", mem_used_pct=101)])
    locs = [d["loc"] for d in result.json["detail"]]
    assert locs == [
        ["body", "records", 0, "status"], ["body", "records", 0, "cpu_user_pct"],
        ["body", "records", 1], ["body", "records", 2, "mem_used_pct"],
    ]


@pytest.mark.parametrize(
    ("body", "loc", "error_type"),
    [
        ({}, ["body", "records"], "value_error.missing"),
        ({"records": []}, ["body", "records"], "value_error.list.min_items"),
        ({"records": {"a": 1}}, ["body", "records"], "type_error.list"),
        ([1, 2], ["body"], "type_error.dict"),
    ],
)
def test_malformed_envelopes_get_422(client, container, body, loc, error_type):
    result = client.simulate_post("/feed/data", json=body)
    assert result.status_code == 422
    assert result.json["detail"][0]["loc"] == loc and result.json["detail"][0]["type"] == error_type
    assert _stored(container) == 0


def test_invalid_json_gets_400_with_a_detail(client, container):
    result = client.simulate_post("/feed/data", body=b'{"records": [', content_type="application/json")
    assert result.status_code == 400
    assert set(result.json) == {"detail"}
    assert _stored(container) == 0


def test_wrong_content_type_gets_415(client, container):
    result = client.simulate_post("/feed/data", body=orjson.dumps({"records": [wire_record()]}), content_type="text/plain")
    assert result.status_code == 415
    assert result.json == {"detail": "Content-Type must be application/json"}
    assert _stored(container) == 0


def test_oversized_body_gets_413(container, client):
    limit = container.settings().max_body_bytes
    body = b'{"records": [], "pad": "' + b"x" * limit + b'"}'
    result = client.simulate_post("/feed/data", body=body, content_type="application/json")
    assert result.status_code == 413
    assert "exceeds" in result.json["detail"]
    assert _stored(container) == 0


def test_a_10000_record_batch_is_accepted_in_one_transaction(client, container):
    batch = [wire_record(f"srv{i % 1000:04d}", i // 1000) for i in range(10_000)]
    result = _post(client, batch)
    assert result.status_code == 200 and result.json["records_received"] == 10_000
    assert _stored(container) == 10_000


def test_more_records_than_the_limit_get_413(container, settings, make_client):
    client = make_client(attrs.evolve(settings, max_records_per_request=5))
    result = _post(client, [wire_record(f"s{i}") for i in range(6)])
    assert result.status_code == 413
    assert result.json == {"detail": "Too many records in one request: 6 (limit 5); split the batch"}
