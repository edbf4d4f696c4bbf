"""The engine's tick end to end: SQL store, the real (tiny) TFT, risk, alerts, published snapshots."""

from __future__ import annotations

import json

import attrs
import numpy as np
import pytest
import sqlalchemy as sa
from dependency_injector import providers

from argus.adapters.sql import tables as t
from argus.domain.metrics import FIELD_INDEX, Record
from argus.entrypoints.container import Container
from tests.model.conftest import synthetic_records

pytestmark = pytest.mark.slow


def _leaking(records: list[Record], server: str) -> list[Record]:
    """Give ``server`` a memory leak that ends over the 95% limit."""
    mine = [r for r in records if r.server_name == server]
    out = [r for r in records if r.server_name != server]
    for i, record in enumerate(mine):
        values = list(record.values)
        values[FIELD_INDEX["mem_used_pct"]] = min(99.0, 50.0 + 50.0 * i / len(mine))
        out.append(attrs.evolve(record, values=tuple(values)))
    return out


@pytest.fixture
def engine_container(settings, engine_model_dir):
    container = Container()
    container.settings.override(providers.Object(attrs.evolve(settings, model_dir=engine_model_dir)))
    yield container
    container.shutdown_resources()


def test_a_tick_forecasts_every_ready_server_and_publishes_the_reference_shape(engine_container):
    store = engine_container.store()
    records = _leaking(synthetic_records(servers=4, days=1.0), "ppweb001")
    store.write_batch(records)
    engine = engine_container.engine()
    engine.start()
    result = engine.tick()

    assert result.model_name == "tft_20250101_000000" and len(result.assessments) == 4
    body = json.loads(store.read_published("predictions").body)
    assert set(body) >= {"predictions", "summary", "alerts", "timestamp"}
    server = body["predictions"]["ppdb000"]
    assert set(server) >= {"risk_score", "profile", "alert", "display_metrics", "forecast"}
    assert server["profile"] == "Database"
    assert set(server["alert"]) == {"level", "score", "color", "emoji", "label"}
    assert set(server["display_metrics"]) >= {"cpu", "memory", "disk_io"}
    forecast = server["forecast"]
    assert len(forecast["cpu_pct"]) == len(forecast["mem_pct"]) == len(forecast["timestamps"]) == 24
    last = max(r.timestamp for r in records if r.server_name == "ppdb000")
    assert forecast["timestamps"][0] > last.replace(tzinfo=None).isoformat()
    assert all(lo <= hi for lo, hi in zip(forecast["bands"]["mem_pct"]["p10"], forecast["bands"]["mem_pct"]["p90"], strict=True))

    leaking = body["predictions"]["ppweb001"]
    assert leaking["alert"]["level"] == "critical" and leaking["message"].startswith("Memory exhausted now")
    summary = body["summary"]
    assert summary["total_servers"] == 4
    assert summary["critical"] + summary["warning"] + summary["degraded"] + summary["healthy"] == 4
    assert 0.0 <= summary["prob_30m"] <= summary["prob_8h"] <= 1.0
    assert [a["server_name"] for a in body["alerts"]][0] == "ppweb001"

    alerts = json.loads(store.read_published("alerts").body)
    assert alerts["count"] == len(alerts["alerts"]) >= 1
    assert alerts["alerts"][0]["time_to_issue"] == "now"


def test_tick_outputs_are_recorded_and_a_restart_resumes_open_alerts(engine_container):
    store = engine_container.store()
    store.write_batch(_leaking(synthetic_records(servers=2, days=1.0), "ppweb001"))
    engine = engine_container.engine()
    engine.start()
    first = engine.tick()
    assert [e.event_type.value for e in first.events] == ["raised"]
    with store.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(t.alert_events)).scalar_one() == 1
        assert connection.execute(sa.select(sa.func.count()).select_from(t.fleet_snapshots)).scalar_one() == 1
        assert connection.execute(sa.select(sa.func.count()).select_from(t.server_risk)).scalar_one() == 2

    restarted = engine_container.engine()  # a new engine over the same database
    restarted.predictor.tracker.restore([])  # forget in-memory state: it must come from the store
    restarted.start()
    assert [a.server_name for a in restarted.predictor.tracker.active()] == ["ppweb001"]
    assert restarted.tick().events == []


def test_servers_with_less_than_an_hour_are_warming_up(engine_container):
    store = engine_container.store()
    records = synthetic_records(servers=2, days=1.0)
    short = [r for r in synthetic_records(servers=3, days=1.0) if r.server_name == "ppdb002"][:5]
    store.write_batch(records + short)
    engine = engine_container.engine()
    engine.start()
    result = engine.tick()
    assert {a.server_name for a in result.assessments} == {"ppdb000", "ppweb001"}
    assert result.servers_warming_up == 1


def test_an_unseen_server_with_one_hour_of_history_gets_a_forecast(engine_container):
    store = engine_container.store()
    records = [r for r in synthetic_records(servers=1, days=1.0)][-12:]
    renamed = [attrs.evolve(r, server_name="brand-new-host") for r in records]
    store.write_batch(renamed)
    engine = engine_container.engine()
    engine.start()
    result = engine.tick()
    assert "brand-new-host" in result.forecasts
    assert np.all(np.diff(result.forecasts["brand-new-host"].values["cpu_pct"], axis=1) >= 0)
