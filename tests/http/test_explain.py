"""GET /explain/{server_name}: precomputed bodies, the on-demand path through the engine, and every error body."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
from dependency_injector import providers
from falcon import testing

from argus.testing import EngineThread, FixedForecaster, wire_record
from tests.conftest import API_KEY


@pytest.fixture
def explain_container(container, settings):
    container.settings.override(providers.Object(attrs.evolve(settings, explain_timeout_s=0.5)))
    return container


@pytest.fixture
def api(explain_container) -> testing.TestClient:
    return testing.TestClient(explain_container.app(), headers={"X-API-Key": API_KEY})


@pytest.fixture
def fixed(explain_container):
    forecaster = FixedForecaster(ppdb003={"mem_pct": np.concatenate([np.linspace(80, 99.5, 10), np.full(86, 99.5)])})
    explain_container.forecaster.override(providers.Object(forecaster))
    return forecaster


def _feed(api, servers=("ppdb001", "ppdb003"), steps=12):
    for step in range(steps):
        records = [wire_record(name, step, mem_used_pct=80.0 if name == "ppdb003" else 60.0) for name in servers]
        assert api.simulate_post("/feed/data", json={"records": records}).status_code == 200


@pytest.fixture
def ticked(api, explain_container, fixed):
    _feed(api)
    api.simulate_post("/feed/data", json={"records": [wire_record("ppweb009", 11)]})  # one record: warming up
    engine = explain_container.engine()
    engine.start()
    engine.tick()
    return engine


@pytest.fixture
def answering(ticked):
    """The engine answering requests on a thread, as its loop does between ticks."""
    with EngineThread(ticked.parts.router.handle_pending):
        yield ticked


def test_a_server_at_risk_is_served_from_the_precomputed_body_in_the_reference_shape(api, ticked):
    result = api.simulate_get("/explain/ppdb003")
    assert result.status_code == 200 and result.headers["X-Explanation-Source"] == "precomputed"
    body = result.json
    assert set(body) >= {"server_name", "prediction", "shap", "attention", "counterfactuals"}
    assert body["server_name"] == "ppdb003"
    assert body["prediction"]["alert_level"] == "critical" and body["prediction"]["risk_score"] >= 80
    assert all(set(f) >= {"feature", "importance", "stars"} for f in body["shap"]["top_features"])
    assert set(body["attention"]) >= {"focus_periods", "analysis"}
    assert all(set(c) >= {"scenario", "impact", "recommendation"} for c in body["counterfactuals"])


def test_a_calm_server_is_explained_on_demand_by_the_engine_then_cached(api, answering):
    first = api.simulate_get("/explain/ppdb001")
    assert first.status_code == 200 and first.headers["X-Explanation-Source"] == "engine"
    assert first.json["prediction"]["alert_level"] == "healthy" and first.json["cached"] is False
    assert api.simulate_get("/explain/ppdb001").json["cached"] is True


def test_an_unknown_server_is_a_404(api, ticked):
    result = api.simulate_get("/explain/nope001")
    assert result.status_code == 404 and result.json == {"detail": "Unknown server: nope001"}


def test_a_server_still_warming_up_is_a_409(api, answering):
    result = api.simulate_get("/explain/ppweb009")
    assert result.status_code == 409
    assert result.json["detail"].startswith("Server ppweb009 is not ready to be explained yet")


def test_without_a_model_explanations_are_the_reference_500(api, explain_container):
    _feed(api, servers=("ppdb001",), steps=1)
    explain_container.engine().start()  # publishes status with model_loaded false (no model in model_dir)
    result = api.simulate_get("/explain/ppdb001")
    assert result.status_code == 500
    assert result.json == {"detail": "Internal server error", "error": "Model not loaded"}


def test_an_engine_that_does_not_answer_in_time_is_a_503_with_retry_after(api, ticked):
    result = api.simulate_get("/explain/ppdb001")  # nobody handles the request
    assert result.status_code == 503 and result.headers["Retry-After"] == "1"
    assert "did not answer within 0.5 s" in result.json["detail"]


def test_a_stopped_engine_is_a_503_at_once(api, fixed):
    _feed(api, servers=("ppdb001",), steps=1)
    result = api.simulate_get("/explain/ppdb001")  # the engine never published a heartbeat
    assert result.status_code == 503 and "Retry-After" in result.headers
    assert result.json["detail"].startswith("The engine is not running")


def _same_tick(explanation: dict, predictions: dict, server: str) -> None:
    published = predictions["predictions"][server]
    assert explanation["tick_at"] == explanation["timestamp"] == predictions["timestamp"]
    assert explanation["prediction"]["risk_score"] == published["risk_score"]
    assert explanation["prediction"]["alert_level"] == published["alert"]["level"]
    assert explanation["forecast_origin"] == published["last_observation"]


def test_an_explanation_names_its_tick_and_carries_the_risk_that_tick_published(api, answering):
    predictions = api.simulate_get("/predictions/current").json
    hot = api.simulate_get("/explain/ppdb003")
    calm = api.simulate_get("/explain/ppdb001")
    assert (hot.headers["X-Explanation-Source"], calm.headers["X-Explanation-Source"]) == ("precomputed", "engine")
    _same_tick(hot.json, predictions, "ppdb003")
    _same_tick(calm.json, predictions, "ppdb001")
    for counterfactual in hot.json["counterfactuals"]:  # the re-run of the unchanged window is the tick's risk
        assert counterfactual["risk_before"] == hot.json["prediction"]["risk_score"]


def test_after_a_newer_tick_the_explanation_is_of_the_newest_tick(api, answering):
    before = api.simulate_get("/explain/ppdb001").json
    records = [wire_record("ppdb001", 12, mem_used_pct=96.0), wire_record("ppdb003", 12, mem_used_pct=80.0)]
    assert api.simulate_post("/feed/data", json={"records": records}).status_code == 200
    answering.keeper.poll()
    answering.tick()
    predictions = api.simulate_get("/predictions/current").json
    assert predictions["predictions"]["ppdb001"]["risk_score"] != before["prediction"]["risk_score"]
    after = api.simulate_get("/explain/ppdb001").json
    assert after["cached"] is False and after["forecast_origin"] > before["forecast_origin"]
    _same_tick(after, predictions, "ppdb001")
