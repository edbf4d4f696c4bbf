"""GET /metrics: the key (or ARGUS_METRICS_PUBLIC=1), the text format, Argus's health and its published forecasts."""

from __future__ import annotations

import gzip
import shutil
import subprocess

import attrs
import numpy as np
import pytest
from dependency_injector import providers
from falcon import testing
from prometheus_client.parser import text_string_to_metric_families

from argus.adapters import telemetry
from argus.adapters.http.metrics import PublishedCollector
from argus.adapters.http.resources import EngineView
from argus.domain.ingestion import PublishedItem
from argus.domain.metrics import METRIC_FIELDS
from argus.entrypoints.container import Container
from argus.entrypoints.settings import Settings
from argus.testing import FixedForecaster, InMemoryMetricsStore, wire_record
from tests.conftest import API_KEY

SERVERS = ("ppdb001", "ppdb003", "ppweb001")


def scrape(client, **headers) -> dict[tuple[str, frozenset], float]:
    """Every sample of one /metrics answer: (name, labels) -> value."""
    result = client.simulate_get("/metrics", headers=headers)
    assert result.status_code == 200, result.text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(result.text) for s in family.samples}


def series(samples, name: str, **labels) -> dict[frozenset, float]:
    """The samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return {key: value for (n, key), value in samples.items() if n == name and wanted <= key}


def value(samples, name: str, **labels) -> float:
    (found,) = series(samples, name, **labels).values() or [0.0]
    return found


@pytest.fixture
def fixed(container):
    """The container's engine with a FixedForecaster: ppdb003's memory climbs past its limit within the hour."""
    forecaster = FixedForecaster(ppdb003={"mem_pct": np.concatenate([np.linspace(80, 99.5, 10), np.full(86, 99.5)])})
    container.forecaster.override(providers.Object(forecaster))
    return forecaster


def _feed_and_tick(client, container, steps: int = 12):
    for step in range(steps):
        records = [wire_record(name, step, mem_used_pct=80.0 if name == "ppdb003" else 60.0) for name in SERVERS]
        assert client.simulate_post("/feed/data", json={"records": records}).status_code == 200
    engine = container.engine()
    engine.start()
    return engine.tick()


def test_metrics_need_the_api_key_as_header_or_bearer_token(client):
    bare = testing.TestClient(client.app)
    assert bare.simulate_get("/metrics").status_code == 401
    assert bare.simulate_get("/metrics", headers={"Authorization": "Bearer wrong-key-0123456789"}).status_code == 401
    assert bare.simulate_get("/metrics", headers={"Authorization": f"Basic {API_KEY}"}).status_code == 401
    assert bare.simulate_get("/metrics", headers={"X-API-Key": API_KEY}).status_code == 200
    assert bare.simulate_get("/metrics", headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 200
    refused = bare.simulate_get("/metrics")
    assert refused.json == {"detail": "Invalid or missing API key"}


def test_the_public_flag_serves_metrics_without_a_key_and_only_metrics(make_client, settings):
    assert Settings.from_env({"ARGUS_METRICS_PUBLIC": "1"}).metrics_public is True
    assert Settings.from_env({}).metrics_public is False
    client = make_client(attrs.evolve(settings, metrics_public=True))
    bare = testing.TestClient(client.app)
    assert bare.simulate_get("/metrics").status_code == 200
    assert bare.simulate_get("/predictions/current").status_code == 401


def test_the_answer_is_prometheus_text_or_openmetrics_and_gzipped_on_request(client):
    plain = client.simulate_get("/metrics")
    assert plain.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# TYPE argus_ingested_records_total counter" in plain.text
    om = client.simulate_get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert om.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert om.text.rstrip().endswith("# EOF")
    zipped = client.simulate_get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert b"argus_http_request_duration_seconds" in gzip.decompress(zipped.content)


def test_feed_records_and_refused_requests_are_counted_by_source_and_reason(client):
    before = scrape(client)
    records = [wire_record("ppdb001", step) for step in range(3)]
    assert client.simulate_post("/feed/data", json={"records": records}).status_code == 200
    assert client.simulate_post("/feed/data", json={"records": [wire_record(cpu_user_pct=300)]}).status_code == 422
    assert client.simulate_post("/feed/data", body="x", headers={"Content-Type": "text/plain"}).status_code == 415
    after = scrape(client)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("argus_ingested_records_total", source="feed") == 3
    assert grew("argus_ingested_samples_total", source="feed") == 3 * len(METRIC_FIELDS)  # a record's numbers
    assert grew("argus_rejected_requests_total", source="feed", reason="invalid") == 1
    assert grew("argus_rejected_requests_total", source="feed", reason="unsupported_media_type") == 1
    assert grew("argus_http_responses_total", route="/feed/data", code="200") == 1


def test_request_latency_is_labelled_by_route_template_never_the_raw_path(client):
    before = scrape(client)
    for name in ("a1", "b2", "c3"):
        client.simulate_get(f"/explain/{name}")
    client.simulate_get("/no/such/path/123")
    after = scrape(client)
    routes = {dict(key)["route"] for key in series(after, "argus_http_request_duration_seconds_count")}
    assert "/explain/{server_name}" in routes and "unmatched" in routes
    assert not any("a1" in route or "123" in route for route in routes)
    counted = "argus_http_request_duration_seconds_count"
    template = {"route": "/explain/{server_name}", "method": "GET"}
    assert value(after, counted, **template) - value(before, counted, **template) == 3


def test_ingest_sources_outside_the_fixed_set_are_refused():
    with pytest.raises(ValueError, match="unknown ingest source"):
        telemetry.count_ingested("carrier_pigeon", records=1)


def test_published_forecasts_become_series_per_server(client, container, fixed):
    ticks_before = telemetry.REGISTRY.get_sample_value("argus_tick_duration_seconds_count")  # no scrape: it caches
    _feed_and_tick(client, container)
    body = client.simulate_get("/predictions/current").json
    samples = scrape(client)
    assert value(samples, "argus_tick_duration_seconds_count") == ticks_before + 1
    assert value(samples, "argus_engine_up") == 1 and value(samples, "argus_servers_ready") == 3
    assert value(samples, "argus_metrics_servers_omitted") == 0
    for name, entry in body["predictions"].items():
        assert value(samples, "argus_risk_score", server=name, profile=entry["profile"]) == entry["risk_score"]
        level = {"healthy": 0, "degraded": 1, "warning": 2, "critical": 3}[entry["alert"]["level"]]
        assert value(samples, "argus_alert_level", server=name) == level
        assert value(samples, "argus_incident_probability", server=name, horizon="8h") == entry["prob_8h"]
        forecast = entry["forecast"]
        for horizon, index in (("30m", 5), ("2h", 23), ("8h", 95)):
            assert value(samples, "argus_forecast", server=name, metric="mem_pct", percentile="p50",
                         horizon=horizon) == forecast["mem_pct"][index]
            assert value(samples, "argus_forecast", server=name, metric="cpu_pct", percentile="p90",
                         horizon=horizon) == forecast["bands"]["cpu_pct"]["p90"][index]
        assert value(samples, "argus_observed", server=name, metric="mem_pct") == entry["observed"]["mem_pct"]
    assert value(samples, "argus_alert_level", server="ppdb003") == 3
    minutes = body["predictions"]["ppdb003"]["time_to_issue_minutes"]
    assert value(samples, "argus_time_to_issue_seconds", server="ppdb003", metric="mem_pct") == minutes * 60
    assert value(samples, "argus_servers_by_level", level="critical") == 1


def test_the_server_cap_keeps_the_highest_risks(make_client, settings):
    container = Container()
    container.settings.override(providers.Object(attrs.evolve(settings, metrics_max_servers=1)))
    container.forecaster.override(providers.Object(
        FixedForecaster(ppdb003={"mem_pct": np.concatenate([np.linspace(80, 99.5, 10), np.full(86, 99.5)])})))
    try:
        client = testing.TestClient(container.app(), headers={"X-API-Key": API_KEY})
        _feed_and_tick(client, container)
        samples = scrape(client)
        assert {dict(k)["server"] for k in series(samples, "argus_risk_score")} == {"ppdb003"}
        assert {dict(k)["server"] for k in series(samples, "argus_forecast")} == {"ppdb003"}
        assert value(samples, "argus_metrics_servers_omitted") == 2
        assert value(samples, "argus_servers_by_level", level="healthy") == 2  # fleet counts are not capped
    finally:
        container.shutdown_resources()


class CountingPublished(InMemoryMetricsStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def read_published(self, key: str) -> PublishedItem | None:
        self.reads += 1
        return super().read_published(key)


def test_the_published_state_is_read_at_most_once_per_cache_period_and_ages_still_move():
    published = CountingPublished()
    published.publish({"status": '{"model_loaded": false, "servers_ready": 0}'})
    now = [published.read_published("status").updated_at]
    published.reads = 0
    collector = PublishedCollector(published, EngineView(published, 30.0), cache_s=5.0, clock=lambda: now[0])

    def heartbeat_age() -> float:
        return next(f.samples[0].value for f in collector.collect() if f.name == "argus_engine_heartbeat_age_seconds")

    first = heartbeat_age()
    reads = published.reads
    now[0] += 3.0
    assert heartbeat_age() == pytest.approx(first + 3.0, abs=0.5) and published.reads == reads
    now[0] += 3.0
    heartbeat_age()
    assert published.reads > reads


def test_a_failing_tick_callback_costs_nothing(client, container, fixed):
    def broken(duration_s: float) -> None:
        raise RuntimeError("telemetry down")

    for step in range(12):
        assert client.simulate_post("/feed/data", json={"records": [wire_record("ppdb001", step)]}).status_code == 200
    engine = container.engine()
    engine.parts.on_tick = broken
    engine.start()
    assert engine.tick() is not None
    assert client.simulate_get("/predictions/current").json["predictions"]["ppdb001"]["risk_score"] >= 0


def test_promtool_accepts_the_exposition(client, container, fixed):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (apt-get install prometheus); CI installs it")
    _feed_and_tick(client, container)
    client.simulate_post("/feed/data", json={"records": [wire_record(cpu_user_pct=300)]})
    text = client.simulate_get("/metrics").text
    assert 'argus_forecast{' in text and "argus_rejected_requests_total{" in text
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.slow  # the tiny TFT
def test_the_tiny_models_forecasts_and_model_age_are_exposed(settings, tmp_path, engine_model_dir):
    from tests.model.conftest import synthetic_records

    shutil.copytree(engine_model_dir, tmp_path / "tiny-models")
    container = Container()
    container.settings.override(providers.Object(attrs.evolve(settings, model_dir=tmp_path / "tiny-models")))
    try:
        container.store().write_batch(synthetic_records(servers=3, days=1.0))
        engine = container.engine()
        engine.start()
        result = engine.tick()
        samples = scrape(testing.TestClient(container.app(), headers={"X-API-Key": API_KEY}))
        names = {a.server_name for a in result.assessments}
        assert len(names) == 3
        assert value(samples, "argus_model_info", model="tft_20250101_000000") == 1
        assert value(samples, "argus_model_age_seconds") > 0
        for name in names:
            steps = len(result.forecasts[name].timestamps)  # the tiny model forecasts fewer than 8 hours
            reached = [h for h, n in (("30m", 6), ("2h", 24), ("8h", 96)) if n <= steps]
            assert "30m" in reached
            points = series(samples, "argus_forecast", server=name, metric="cpu_pct")
            assert {(dict(k)["horizon"], dict(k)["percentile"]) for k in points} == {
                (h, p) for h in reached for p in ("p10", "p50", "p90")}
            assert all(0 <= v <= 100 for v in points.values())
            assert 0 <= value(samples, "argus_risk_score", server=name) <= 100
    finally:
        container.shutdown_resources()
