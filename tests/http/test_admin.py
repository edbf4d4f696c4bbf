"""/admin/*: list models, hot reload (checked, atomic, no failed requests), training status and stats."""

from __future__ import annotations

import os
import shutil
import threading

import attrs
import pytest
from dependency_injector import providers
from falcon import testing

from argus.entrypoints.container import Container
from argus.testing import EngineThread
from tests.conftest import API_KEY
from tests.model.conftest import synthetic_records

pytestmark = pytest.mark.slow  # builds containers with the tiny TFT


@pytest.fixture
def model_dir(tmp_path, engine_model_dir):
    target = tmp_path / "models"
    shutil.copytree(engine_model_dir, target)
    return target


@pytest.fixture
def admin_container(settings, model_dir):
    container = Container()
    container.settings.override(providers.Object(
        attrs.evolve(settings, model_dir=model_dir, rate_limits="admin=1000/minute,predictions=100000/minute")))
    yield container
    container.shutdown_resources()


@pytest.fixture
def client(admin_container):
    return testing.TestClient(admin_container.app(), headers={"X-API-Key": API_KEY})


@pytest.fixture
def running_engine(admin_container):
    """The engine's loop in a thread: it answers requests and ticks like `argus engine` does."""
    admin_container.store().write_batch(synthetic_records(servers=3, days=1.0))
    engine = admin_container.engine()
    engine.start()
    with EngineThread(engine.step):
        yield engine


def test_models_lists_every_model_and_the_current_one(client):
    body = client.simulate_get("/admin/models").json
    assert body["current_model"] == "tft_20250101_000000"
    assert [m["name"] for m in body["models"]] == ["tft_20250102_000000", "tft_20250101_000000"]
    first = body["models"][1]
    assert first["path"] == "models/tft_20250101_000000" and first["is_current"] is True
    assert first["size_mb"] > 0 and first["created"].startswith("20")


@pytest.mark.parametrize("path", ["../etc", "/etc/passwd", "models/../../etc", "models/tft_20250101_000000/x"])
def test_reload_refuses_paths_outside_the_model_directory(client, path):
    result = client.simulate_post("/admin/reload-model", json={"model_path": path})
    assert result.status_code == 400 and "detail" in result.json


def test_reload_refuses_symlinks_and_unknown_models(client, model_dir, tmp_path):
    os.symlink(tmp_path, model_dir / "tft_link")
    assert client.simulate_post("/admin/reload-model", json={"model_path": "tft_link"}).status_code == 400
    missing = client.simulate_post("/admin/reload-model", json={"model_path": "tft_19990101_000000"})
    assert missing.status_code == 404 and missing.json == {"detail": "Model not found: tft_19990101_000000"}


def test_a_tampered_model_is_refused_and_the_old_one_keeps_serving(client, model_dir, running_engine):
    shutil.copytree(model_dir / "tft_20250102_000000", model_dir / "tft_20250103_000000")
    (model_dir / "tft_20250103_000000" / "weights.safetensors").write_bytes(b"not weights")
    result = client.simulate_post("/admin/reload-model", json={"model_path": "models/tft_20250103_000000"})
    assert result.status_code == 422 and "detail" in result.json
    assert running_engine.predictor.forecaster.name == "tft_20250101_000000"
    assert (model_dir / "CURRENT").read_text().strip() == "tft_20250101_000000"


def test_hot_reload_swaps_models_while_requests_keep_succeeding(client, model_dir, running_engine):
    failures, stop = [], threading.Event()

    def hammer():
        while not stop.is_set():
            result = client.simulate_get("/predictions/current")
            if result.status_code != 200:
                failures.append(result.status_code)

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for name in ["tft_20250102_000000", "tft_20250101_000000", "tft_20250102_000000"]:
            result = client.simulate_post("/admin/reload-model", json={"model_path": name})
            assert result.status_code == 200, result.text
            assert result.json == {"success": True, "model": name, "message": "Model reloaded successfully",
                                   "previous_model": result.json["previous_model"]}
            assert (model_dir / "CURRENT").read_text().strip() == name
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert failures == []
    assert running_engine.predictor.forecaster.name == "tft_20250102_000000"
    running_engine.publish_status()
    assert client.simulate_get("/status").json["model_path"] == "models/tft_20250102_000000"


def test_reload_without_a_path_takes_the_newest_model(client, running_engine):
    result = client.simulate_post("/admin/reload-model")
    assert result.status_code == 200 and result.json["model"] == "tft_20250102_000000"


def test_admin_actions_without_an_engine_are_a_503_with_retry_after(settings, model_dir, make_client):
    client = make_client(attrs.evolve(settings, model_dir=model_dir, admin_timeout_s=0.3))
    result = client.simulate_post("/admin/reload-model", json={"model_path": "tft_20250102_000000"})
    assert result.status_code == 503 and result.headers["Retry-After"]


def test_idle_training_status_stats_and_cancel(client, running_engine):
    status = client.simulate_get("/admin/training-status").json
    assert status["training_active"] is False and status["training_id"] is None
    stats = client.simulate_get("/admin/training-stats").json
    assert stats["total_trainings"] == 0 and stats["last_training"] is None
    cancel = client.simulate_post("/admin/cancel-training")
    assert cancel.status_code == 409 and cancel.json == {"detail": "No training is running"}


@pytest.mark.parametrize("query", ["epochs=0", "epochs=ten", "incremental=maybe"])
def test_training_parameters_are_validated(client, query):
    result = client.simulate_post("/admin/trigger-training", query_string=query)
    assert result.status_code == 422 and result.json["detail"][0]["loc"][0] == "query"


def test_admin_endpoints_share_the_10_per_minute_limit(settings, model_dir):
    container = Container()
    container.settings.override(providers.Object(attrs.evolve(settings, model_dir=model_dir)))
    try:
        limited = testing.TestClient(container.app(), headers={"X-API-Key": API_KEY})
        codes = [limited.simulate_get("/admin/models").status_code for _ in range(10)]
        assert codes == [200] * 10
        assert limited.simulate_get("/admin/training-stats").status_code == 429
    finally:
        container.shutdown_resources()
