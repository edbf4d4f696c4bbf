"""POST /admin/trigger-training refuses up front when no server has enough history; failed runs say why."""

from __future__ import annotations

import shutil
import sys
import time

import attrs
import pytest
from dependency_injector import providers
from falcon import testing

from argus.adapters.sql.database import create_db_engine, migrate
from argus.adapters.sql.training_runs import SqlTrainingRuns
from argus.adapters.training_process import TrainingSupervisor
from argus.entrypoints.container import Container
from argus.entrypoints.training_job import history_shortfall
from argus.testing import EngineThread
from tests.conftest import API_KEY
from tests.model.conftest import synthetic_records

pytestmark = pytest.mark.slow  # builds a container with the tiny TFT


@pytest.fixture
def service(settings, tmp_path, engine_model_dir):
    model_dir = tmp_path / "models"
    shutil.copytree(engine_model_dir, model_dir)
    container = Container()
    container.settings.override(providers.Object(
        attrs.evolve(settings, model_dir=model_dir, rate_limits="admin=1000/minute")))
    container.store().write_batch(synthetic_records(servers=3, days=1.0))  # a demo's worth: a day, not 57 h
    engine = container.engine()
    engine.start()
    with EngineThread(engine.step, interval_s=0.05):
        yield testing.TestClient(container.app(), headers={"X-API-Key": API_KEY}), container
    container.shutdown_resources()


def test_training_with_too_little_history_is_refused_with_what_is_needed_and_what_is_there(service):
    client, container = service
    result = client.simulate_post("/admin/trigger-training", query_string="epochs=3")
    assert result.status_code == 409, result.text
    assert set(result.json) == {"detail"}
    detail = result.json["detail"]
    assert detail.startswith("Not enough history to train: a server needs at least 51.0 h")  # the tiny base model: 12 + 24 steps
    assert "the longest stored is 23.9 h" in detail and "864 records from 3 servers" in detail
    status = client.simulate_get("/admin/training-status").json
    assert status["training_active"] is False and status["training_id"] is None  # nothing was started
    assert container.training_runs().latest() is None


def test_the_history_check_passes_once_a_server_has_enough(settings, tmp_path):
    configured = attrs.evolve(settings, training_options={"val_days": 0.5, "holdout_days": 0.5,
                                                           "min_encoder_steps": 12, "horizon_steps": 24})
    container = Container()
    container.settings.override(providers.Object(configured))
    try:
        container.store().write_batch(synthetic_records(servers=2, days=1.0))
        assert "needs at least 27.0 h" in history_shortfall(configured, None)
        container.store().write_batch(synthetic_records(servers=1, days=2.0))
        assert history_shortfall(configured, None) is None
    finally:
        container.shutdown_resources()


def test_a_training_process_that_dies_is_recorded_as_failed_with_why(settings, tmp_path):
    db = create_db_engine(settings.database_url)
    migrate(db)
    runs = SqlTrainingRuns(db)
    supervisor = TrainingSupervisor(runs, tmp_path, on_promoted=lambda name: None, current_model=lambda: None,
                                    command=[sys.executable, "-c", "import sys; sys.exit(1)"],
                                    history_shortfall=lambda base: None)
    started = supervisor.start({"epochs": 3, "incremental": False})
    deadline = time.monotonic() + 30
    while runs.get(started["training_id"]).status == "running" and time.monotonic() < deadline:
        supervisor.poll()
        time.sleep(0.05)
    run = runs.get(started["training_id"])
    assert (run.status, run.stage) == ("failed", "failed")
    assert run.error == "the training process exited unexpectedly"
    db.dispose()
