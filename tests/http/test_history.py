"""GET /historical/*: the reference's shapes, 422/404 bodies, CSV exports and the rate-limit group."""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from falcon import testing

from argus.domain.alerts import AlertEvent, AlertLevel, EventType
from argus.domain.risk import summarize
from argus.domain.ticks import TickResult
from tests.conftest import API_KEY
from tests.integration.test_history_store import play_script

TRICKY = 'Disk "data", nearly full\nsee runbook, step 2'
RANGES = ("30m", "1h", "8h", "1d", "1w", "1M")


@pytest.fixture
def scripted(client, container):
    """The scripted ticks of the store tests, ending now (ticks 5-15 fall in the last hour)."""
    start = datetime.fromtimestamp(time.time(), tz=UTC) - timedelta(minutes=82)
    play_script(container.store(), start=start)
    return client


def _record_event(store, message: str, server: str = "ppdb001") -> None:
    at = datetime.fromtimestamp(time.time() - 60, tz=UTC)
    event = AlertEvent(at=at, server_name=server, event_type=EventType.RAISED, previous_level=AlertLevel.HEALTHY,
                       new_level=AlertLevel.WARNING, risk_score=65.0, message=message, profile="Database",
                       raised_at=at, peak_level=AlertLevel.WARNING)
    store.record_tick(TickResult(at=at, model_name="fixed", assessments=[], forecasts={}, windows={}, events=[event],
                                 active=[], summary=summarize([]), servers_warming_up=0, records_in_windows=0,
                                 min_history_steps=12, duration_s=0.0), {})


def test_summary_has_the_reference_shape_and_the_scripted_numbers(scripted):
    body = scripted.simulate_get("/historical/summary").json
    assert body == {
        "success": True, "time_range": "1d", "total_alerts": 2,
        "alerts_by_level": {"critical": 2, "warning": 0, "degraded": 0},
        "avg_resolution_time_minutes": 37.5, "incidents_prevented": 1,
        "fleet_health_avg": body["fleet_health_avg"],
    }
    assert isinstance(body["fleet_health_avg"], float) and 0 < body["fleet_health_avg"] <= 100


def test_an_empty_history_answers_zeros_and_nulls_not_errors(client):
    body = client.simulate_get("/historical/summary", params={"time_range": "1M"}).json
    assert body["total_alerts"] == 0 and body["incidents_prevented"] == 0
    assert body["avg_resolution_time_minutes"] is None and body["fleet_health_avg"] is None
    assert client.simulate_get("/historical/environment").json == {"success": True, "time_range": "1h", "count": 0,
                                                                    "snapshots": []}


def test_alerts_default_to_the_last_hour_newest_first_and_filter_by_server(scripted):
    body = scripted.simulate_get("/historical/alerts").json
    assert body["time_range"] == "1h" and body["count"] == len(body["alerts"]) == body["total_count"]
    first = body["alerts"][0]
    assert set(first) >= {"timestamp", "server_name", "event_type", "previous_level", "new_level", "risk_score",
                          "resolved_at", "resolution_duration_minutes"}
    assert [a["timestamp"] for a in body["alerts"]] == sorted((a["timestamp"] for a in body["alerts"]), reverse=True)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", first["timestamp"])
    mine = scripted.simulate_get("/historical/alerts", params={"time_range": "1d", "server_name": "ppdb001"}).json
    assert [a["event_type"] for a in mine["alerts"]] == ["resolved", "de-escalated", "escalated", "raised"]
    assert {a["resolution_duration_minutes"] for a in mine["alerts"]} == {55.0}
    paged = scripted.simulate_get("/historical/alerts", params={"time_range": "1d", "limit": 2}).json
    assert paged["count"] == 2 and paged["total_count"] == 6


def test_server_history_has_the_reference_shape(scripted):
    body = scripted.simulate_get("/historical/server/ppdb001").json
    assert set(body) >= {"success", "server_name", "time_range", "alert_count", "avg_risk_score", "max_risk_score",
                         "time_in_warning_pct", "time_in_critical_pct", "risk_trend"}
    assert body["server_name"] == "ppdb001" and body["time_range"] == "1d" and body["alert_count"] == 1
    assert body["time_in_critical_pct"] > 0 and body["max_risk_score"] >= 80
    assert body["risk_trend"] in {"improving", "stable", "worsening"}
    calm = scripted.simulate_get("/historical/server/ppweb003", params={"time_range": "1h"}).json
    assert calm["alert_count"] == 0 and calm["time_in_warning_pct"] == calm["time_in_critical_pct"] == 0.0


def test_an_unknown_server_is_a_404_with_detail(client):
    result = client.simulate_get("/historical/server/nope")
    assert result.status_code == 404 and result.json == {"detail": "Unknown server: nope"}


def test_environment_snapshots_follow_the_range(scripted):
    body = scripted.simulate_get("/historical/environment").json
    assert body["time_range"] == "1h" and body["count"] == len(body["snapshots"]) == 11
    snapshot = body["snapshots"][0]
    assert set(snapshot) >= {"timestamp", "total_servers", "critical_count", "warning_count", "healthy_count",
                             "fleet_health"}
    assert snapshot["total_servers"] == 3
    assert isinstance(snapshot["expected_incidents_8h"], float) and snapshot["expected_incidents_8h"] >= 0.0
    assert scripted.simulate_get("/historical/environment", params={"time_range": "30m"}).json["count"] == 5


@pytest.mark.parametrize("path", ["/historical/summary", "/historical/alerts", "/historical/server/ppdb001",
                                  "/historical/environment", "/historical/export/alerts"])
def test_a_time_range_outside_the_reference_is_a_422_in_its_format(client, path):
    result = client.simulate_get(path, params={"time_range": "2h"})
    assert result.status_code == 422
    assert result.json == {"detail": [{
        "loc": ["query", "time_range"], "msg": "unexpected value; permitted: '30m', '1h', '8h', '1d', '1w', '1M'",
        "type": "value_error.const",
    }]}


@pytest.mark.parametrize("time_range", RANGES)
def test_every_reference_time_range_is_accepted(client, time_range):
    assert client.simulate_get("/historical/summary", params={"time_range": time_range}).json["time_range"] == time_range


def test_a_bad_limit_is_a_422_naming_the_parameter(client):
    result = client.simulate_get("/historical/alerts", params={"limit": "0"})
    assert result.status_code == 422 and result.json["detail"][0]["loc"] == ["query", "limit"]


def test_export_envelope_carries_csv_that_round_trips_quotes_commas_and_newlines(client, container):
    _record_event(container.store(), TRICKY)
    body = client.simulate_get("/historical/export/alerts", params={"time_range": "1w"}).json
    assert set(body) == {"success", "table", "time_range", "csv_data", "filename"}
    assert body["table"] == "alerts" and body["time_range"] == "1w"
    assert re.fullmatch(r"argus_alerts_1w_\d{8}_\d{6}\.csv", body["filename"])
    header, row = list(csv.reader(io.StringIO(body["csv_data"])))
    assert header[:3] == ["timestamp", "server_name", "event_type"]
    assert dict(zip(header, row, strict=True))["message"] == TRICKY


def test_accept_text_csv_serves_the_file_itself(scripted):
    result = scripted.simulate_get("/historical/export/environment", headers={"Accept": "text/csv"})
    assert result.status_code == 200 and result.headers["content-type"].startswith("text/csv")
    disposition = result.headers["content-disposition"]
    assert re.fullmatch(r'attachment; filename="argus_environment_1d_\d{8}_\d{6}\.csv"', disposition)
    rows = list(csv.DictReader(io.StringIO(result.text)))
    assert len(rows) == 16 and rows[0]["total_servers"] == "3"
    assert float(rows[0]["expected_incidents_30m"]) >= 0.0
    assert rows[0]["timestamp"] < rows[-1]["timestamp"]  # oldest first in files


def test_an_unknown_export_table_is_a_404_with_detail(client):
    result = client.simulate_get("/historical/export/records")
    assert result.status_code == 404
    assert result.json == {"detail": "Unknown export table: records; use alerts or environment"}


def test_history_needs_the_api_key(container):
    anonymous = testing.TestClient(container.app())
    assert anonymous.simulate_get("/historical/summary").status_code == 401
    keyed = testing.TestClient(container.app(), headers={"X-API-Key": API_KEY})
    assert keyed.simulate_get("/historical/summary").status_code == 200


def test_history_endpoints_share_the_historical_rate_limit_group(make_client, settings):
    client = make_client(attrs.evolve(settings, rate_limits="historical=3/minute"))
    codes = [client.simulate_get(path).status_code
             for path in ("/historical/summary", "/historical/alerts", "/historical/environment",
                          "/historical/export/alerts")]
    assert codes == [200, 200, 200, 429]
    assert client.simulate_get("/alerts/active").status_code == 200  # other groups count on their own
