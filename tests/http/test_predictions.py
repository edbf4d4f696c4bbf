"""GET /predictions/current and /alerts/active: pre-rendered snapshots in the reference's shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from dependency_injector import providers

from argus.testing import FixedForecaster, wire_record


@pytest.fixture
def fixed(container):
    """The container's engine with a FixedForecaster (fast) instead of the TFT."""
    forecaster = FixedForecaster(ppdb003={"mem_pct": np.concatenate([np.linspace(80, 99.5, 10), np.full(86, 99.5)])})
    container.forecaster.override(providers.Object(forecaster))
    return forecaster


def _feed_fleet(client, servers=("ppdb001", "ppdb003", "ppweb001"), steps=12):
    for step in range(steps):
        records = [wire_record(name, step, mem_used_pct=80.0 if name == "ppdb003" else 60.0) for name in servers]
        assert client.simulate_post("/feed/data", json={"records": records}).status_code == 200


def test_before_any_tick_predictions_say_insufficient_data(client):
    result = client.simulate_get("/predictions/current")
    assert result.status_code == 200
    assert result.json == {"error": "insufficient_data", "message": "Need at least 100 records, have 0",
                           "predictions": {}}


def test_without_a_model_predictions_are_a_500_model_not_loaded(client, container):
    engine = container.engine()  # no model in the settings' model dir
    engine.start()
    result = client.simulate_get("/predictions/current")
    assert result.status_code == 500
    assert result.json == {"detail": "Internal server error", "error": "Model not loaded"}


def test_predictions_follow_the_reference_shape(client, container, fixed):
    _feed_fleet(client)
    engine = container.engine()
    engine.start()
    engine.tick()
    body = client.simulate_get("/predictions/current").json
    assert set(body) >= {"predictions", "summary", "alerts", "timestamp"}
    assert set(body["predictions"]) == {"ppdb001", "ppdb003", "ppweb001"}
    hot = body["predictions"]["ppdb003"]
    assert hot["alert"]["level"] == "critical" and hot["alert"]["label"] == "🔴 Critical"
    assert hot["alert"]["score"] == hot["risk_score"] and hot["alert"]["color"] == "#FF0000"
    assert hot["message"].startswith("Memory exhaustion predicted in ")
    assert hot["profile"] == "Database"
    assert hot["display_metrics"]["memory"] == "80.0%" and hot["display_metrics"]["disk_io"] == "n/a"
    assert len(hot["forecast"]["timestamps"]) == 96
    summary = body["summary"]
    assert set(summary) >= {"total_servers", "critical", "warning", "degraded", "healthy", "fleet_health",
                            "prob_30m", "prob_8h"}
    assert summary["total_servers"] == 3 and summary["critical"] == 1
    assert isinstance(summary["fleet_health"], float)
    assert body["alerts"][0] == {"server_name": "ppdb003", "level": "critical", "risk_score": hot["risk_score"],
                                 "message": hot["message"]}


def test_active_alerts_have_a_time_to_issue(client, container, fixed):
    _feed_fleet(client)
    engine = container.engine()
    engine.start()
    engine.tick()
    body = client.simulate_get("/alerts/active").json
    assert body["count"] == 1 and set(body) == {"timestamp", "count", "alerts"}
    (alert,) = body["alerts"]
    assert {k: alert[k] for k in ("server_name", "level", "profile")} == {
        "server_name": "ppdb003", "level": "critical", "profile": "Database"}
    assert alert["time_to_issue"].endswith("minutes") and alert["message"].startswith("Memory exhaustion predicted")


def test_serving_a_snapshot_does_not_run_the_model(client, container, fixed):
    _feed_fleet(client)
    engine = container.engine()
    engine.start()
    engine.tick()
    calls = fixed.calls
    for _ in range(5):
        assert client.simulate_get("/predictions/current").status_code == 200
    assert fixed.calls == calls


def test_predictions_and_alerts_have_their_own_30_per_minute_limits(client):
    codes = [client.simulate_get("/predictions/current").status_code for _ in range(31)]
    assert codes[-1] == 429 and codes[:30] == [200] * 30
    assert client.simulate_get("/alerts/active").status_code == 200


def test_clients_that_accept_gzip_get_the_snapshot_compressed(client, container, fixed):
    import gzip
    import json

    _feed_fleet(client, servers=tuple(f"ppweb{i:03d}" for i in range(20)))
    engine = container.engine()
    engine.start()
    engine.tick()
    plain = client.simulate_get("/predictions/current")
    packed = client.simulate_get("/predictions/current", headers={"Accept-Encoding": "gzip, deflate"})
    assert packed.headers["Content-Encoding"] == "gzip" and "Content-Encoding" not in plain.headers
    assert len(packed.content) < len(plain.content) / 3
    assert json.loads(gzip.decompress(packed.content)) == plain.json


def test_the_summary_expects_incidents_instead_of_only_p_at_least_one(client, container, fixed):
    from argus.adapters.http.openapi import openapi_document

    _feed_fleet(client)
    engine = container.engine()
    engine.start()
    engine.tick()
    body = client.simulate_get("/predictions/current").json
    summary, servers = body["summary"], body["predictions"].values()
    for horizon in ("30m", "8h"):
        probs = [p[f"prob_{horizon}"] for p in servers]
        assert summary[f"expected_incidents_{horizon}"] == pytest.approx(round(sum(probs), 2), abs=0.011)
        assert summary[f"servers_above_50pct_{horizon}"] == sum(p > 0.5 for p in probs)
        at_least_one = 1.0 - math.prod(1.0 - p for p in probs)
        assert summary[f"prob_{horizon}"] == pytest.approx(at_least_one, abs=1e-3)  # kept: P(at least one)
    assert summary["servers_above_50pct_8h"] == 1  # ppdb003, critical
    schema = openapi_document()["components"]["schemas"]["Predictions"]["properties"]["summary"]
    assert set(schema["required"]) <= set(summary)
    kinds = {"integer": int, "number": (int, float)}
    assert all(isinstance(summary[name], kinds[spec["type"]]) for name, spec in schema["properties"].items())
