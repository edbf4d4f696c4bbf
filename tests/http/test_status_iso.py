"""/status keeps the reference's zone-less ``last_prediction`` and adds ISO 8601 times with their zone."""

from __future__ import annotations

from datetime import datetime

from argus.adapters.http.resources import _iso_utc
from argus.testing import wire_record


def test_status_times_are_also_given_in_iso_8601_with_a_zone(client, container):
    before = client.simulate_get("/status").json
    assert before["last_prediction"] is None and before["last_prediction_iso"] is None
    client.simulate_post("/feed/data", json={"records": [wire_record("s1")]})
    container.engine().start()
    engine = client.simulate_get("/status").json["engine"]
    started = datetime.fromisoformat(engine["started_at_iso"])
    assert started.tzinfo is not None and started.utcoffset().total_seconds() == 0
    assert abs(started.timestamp() - engine["started_at"]) < 1


def test_a_zone_less_wire_time_is_read_as_utc():
    assert _iso_utc("2025-01-15T10:05:00") == "2025-01-15T10:05:00+00:00"
    assert _iso_utc(0) == "1970-01-01T00:00:00+00:00"
    assert _iso_utc(None) is None
