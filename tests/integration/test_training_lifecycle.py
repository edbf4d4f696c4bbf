"""Training over the API, end to end: a real training process, progress, promotion, cancel, stats."""

from __future__ import annotations

import os
import shutil
import time

import attrs
import pytest
from dependency_injector import providers
from falcon import testing

from argus.entrypoints.container import Container
from argus.testing import EngineThread
from tests.conftest import API_KEY
from tests.model.conftest import synthetic_records

pytestmark = pytest.mark.slow

TINY = {"max_samples_per_epoch": 16, "batch_size": 8, "val_days": 0.5, "val_samples": 16, "holdout_days": 0.5,
        "hidden_size": 4, "attention_head_size": 1, "hidden_continuous_size": 4, "accelerator": "cpu",
        "max_encoder_steps": 48, "min_encoder_steps": 12, "horizon_steps": 24}


@pytest.fixture
def service(settings, tmp_path, engine_model_dir):
    """A container, an engine loop in a thread, and a client: the service as a test sees it."""
    model_dir = tmp_path / "models"
    shutil.copytree(engine_model_dir, model_dir)
    shutil.rmtree(model_dir / "tft_20250102_000000")
    configured = attrs.evolve(settings, model_dir=model_dir, rate_limits="admin=1000/minute",
                              training_options=TINY, auto_promote="always", training_cancel_grace_s=10.0)
    container = Container()
    container.settings.override(providers.Object(configured))
    container.store().write_batch(synthetic_records(servers=3, days=2.0))
    engine = container.engine()
    engine.start()
    client = testing.TestClient(container.app(), headers={"X-API-Key": API_KEY})
    with EngineThread(engine.step, interval_s=0.05):
        yield client, engine, model_dir, container
    container.shutdown_resources()


def _wait_for_status(client, predicate, timeout_s=180.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = client.simulate_get("/admin/training-status").json
        if predicate(status):
            return status
        time.sleep(0.2)
    raise AssertionError(f"training status never matched: {status}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_training_runs_in_its_own_process_reports_progress_and_promotes(service):
    client, engine, model_dir, container = service
    started = client.simulate_post("/admin/trigger-training", query_string="epochs=2&incremental=true")
    assert started.status_code == 200, started.text
    body = started.json
    assert body["success"] is True and body["epochs"] == 2 and body["incremental"] is True
    assert body["training_id"].startswith("train_") and body["message"] == "Training started"

    second = client.simulate_post("/admin/trigger-training")
    assert second.status_code == 409 and "already running" in second.json["detail"]

    active = _wait_for_status(client, lambda s: s["training_active"])
    assert active["progress"]["total_epochs"] == 2
    done = _wait_for_status(client, lambda s: not s["training_active"])
    last = done["last_run"]
    assert last["status"] == "completed", last
    assert last["incremental"] is True and last["base_model"] == "tft_20250101_000000"
    assert last["promoted"] is True and last["promotion"]["rule"] == "always"
    new_model = last["model"]
    assert (model_dir / new_model / "manifest.json").exists()
    models = client.simulate_get("/admin/models").json
    assert new_model in [m["name"] for m in models["models"]]
    deadline = time.monotonic() + 30
    while engine.predictor.forecaster.name != new_model and time.monotonic() < deadline:
        time.sleep(0.1)
    assert engine.predictor.forecaster.name == new_model
    assert (model_dir / "CURRENT").read_text().strip() == new_model


def test_cancel_really_stops_the_process_and_leaves_no_model(service):
    client, engine, model_dir, container = service
    before = sorted(p.name for p in model_dir.iterdir())
    started = client.simulate_post("/admin/trigger-training", query_string="epochs=500&incremental=false")
    assert started.status_code == 200
    running = _wait_for_status(client, lambda s: s["training_active"] and s["progress"]["stage"] in ("train", "epoch_end"))
    pid = container.training_runs().get(running["training_id"]).pid
    assert pid and _alive(pid)

    cancelled = client.simulate_post("/admin/cancel-training")
    assert cancelled.status_code == 200 and cancelled.json["success"] is True
    status = _wait_for_status(client, lambda s: not s["training_active"], timeout_s=30)
    assert status["last_run"]["status"] == "cancelled"
    deadline = time.monotonic() + 15
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)
    assert sorted(p.name for p in model_dir.iterdir()) == before
    assert engine.predictor.forecaster.name == "tft_20250101_000000"

    stats = client.simulate_get("/admin/training-stats").json
    assert stats["total_trainings"] == 1 and stats["cancelled"] == 1 and stats["models_produced"] == 0

    restarted = Container()  # a new process over the same database: the runs are still there
    restarted.settings.override(providers.Object(container.settings()))
    try:
        again = testing.TestClient(restarted.app(), headers={"X-API-Key": API_KEY})
        assert again.simulate_get("/admin/training-stats").json["total_trainings"] == 1
    finally:
        restarted.shutdown_resources()
