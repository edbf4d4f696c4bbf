"""/admin/* at its edges: a broken newest model folder, cancelling a training that already ended."""

from __future__ import annotations

import json
import shutil
import time

import attrs
import pytest
from dependency_injector import providers
from falcon import testing

from argus.adapters.tft.registry import MANIFEST, WEIGHTS, sha256_of
from argus.domain.training import TrainingRun
from argus.entrypoints.container import Container
from argus.testing import EngineThread
from tests.conftest import API_KEY
from tests.model.conftest import synthetic_records

pytestmark = pytest.mark.slow  # builds containers with the tiny TFT

GOOD_NEWEST = "tft_20250102_000000"


@pytest.fixture
def model_dir(tmp_path, engine_model_dir):
    target = tmp_path / "models"
    shutil.copytree(engine_model_dir, target)
    return target


@pytest.fixture
def admin_container(settings, model_dir):
    container = Container()
    container.settings.override(providers.Object(
        attrs.evolve(settings, model_dir=model_dir, rate_limits="admin=1000/minute")))
    yield container
    container.shutdown_resources()


@pytest.fixture
def client(admin_container):
    return testing.TestClient(admin_container.app(), headers={"X-API-Key": API_KEY})


@pytest.fixture
def running_engine(admin_container):
    admin_container.store().write_batch(synthetic_records(servers=2, days=0.5))
    engine = admin_container.engine()
    engine.start()
    with EngineThread(engine.step):
        yield engine


def _newer_copy(model_dir, name: str, created_at: str = "2099-01-01T00:00:00+00:00") -> tuple[dict, object]:
    """A copy of the newest good model, dated later, to break in one way or another."""
    folder = model_dir / name
    shutil.copytree(model_dir / GOOD_NEWEST, folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest.update(name=name, created_at=created_at)
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return manifest, folder


def _without_weights(model_dir) -> None:
    _, folder = _newer_copy(model_dir, "tft_20990101_000000")
    (folder / WEIGHTS).unlink()


def _unreadable_manifest(model_dir) -> None:
    _, folder = _newer_copy(model_dir, "tft_20990102_000000", created_at="2099-01-02T00:00:00+00:00")
    (folder / MANIFEST).write_text('{"format": "argus-tft/1", "created_at": "2099-01-02')


def _garbage_weights_with_a_matching_checksum(model_dir) -> None:
    manifest, folder = _newer_copy(model_dir, "tft_20990103_000000", created_at="2099-01-03T00:00:00+00:00")
    (folder / WEIGHTS).write_bytes(b"\x00garbage, not safetensors" * 100)
    manifest["weights_sha256"] = sha256_of(folder / WEIGHTS)
    (folder / MANIFEST).write_text(json.dumps(manifest))


def _unreadable_manifest_folder_only(model_dir) -> None:
    folder = model_dir / "tft_20990104_000000"
    folder.mkdir()
    (folder / MANIFEST).write_bytes(b"\xff\xfe not utf-8")
    (folder / WEIGHTS).write_bytes(b"x")


@pytest.mark.parametrize("break_it", [_without_weights, _unreadable_manifest, _garbage_weights_with_a_matching_checksum,
                                      _unreadable_manifest_folder_only])
def test_reload_without_a_body_skips_a_broken_newest_folder(client, model_dir, running_engine, break_it):
    break_it(model_dir)
    result = client.simulate_post("/admin/reload-model")
    assert result.status_code == 200, result.json
    assert result.json["model"] == GOOD_NEWEST
    assert running_engine.predictor.forecaster.name == GOOD_NEWEST
    assert (model_dir / "CURRENT").read_text().strip() == GOOD_NEWEST


def test_reload_without_a_body_refuses_clearly_when_no_folder_loads(client, model_dir, running_engine):
    _garbage_weights_with_a_matching_checksum(model_dir)
    for name in ("tft_20250101_000000", GOOD_NEWEST):
        (model_dir / name / WEIGHTS).write_bytes(b"tampered")
    result = client.simulate_post("/admin/reload-model")
    assert result.status_code == 422
    assert "tft_20990103_000000" in result.json["detail"] and "No model" in result.json["detail"]
    assert running_engine.predictor.forecaster.name == "tft_20250101_000000"  # the old one keeps serving
    assert (model_dir / "CURRENT").read_text().strip() == "tft_20250101_000000"


def test_cancel_after_the_training_failed_says_so(admin_container, client, running_engine):
    now = time.time()
    admin_container.training_runs().create(TrainingRun(
        training_id="train_20250101_000000", status="failed", started_at=now - 60, epochs=3, incremental=False, stage="fitting"))
    admin_container.training_runs().update("train_20250101_000000", finished_at=now,
                                            error="the training process exited unexpectedly")
    result = client.simulate_post("/admin/cancel-training")
    assert result.status_code == 409
    assert result.json == {"detail": "No training is running: the latest, train_20250101_000000, already failed "
                                     "(the training process exited unexpectedly)"}
