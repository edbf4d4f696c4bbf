"""Model folders: save/load round trip, tamper and path checks, CURRENT, the manifest."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from argus.adapters.tft.forecaster import TftForecaster
from argus.adapters.tft.registry import DirectoryModelRegistry
from argus.domain.forecast import ModelLoadError
from tests.model.conftest import synthetic_values, window_of

NAME = "tft_20250101_000000"


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path):
    shutil.copytree(tiny_model_dir / NAME, tmp_path / NAME)
    (tmp_path / "CURRENT").write_text(NAME + "\n")
    return DirectoryModelRegistry(tmp_path)


def test_a_model_round_trips_through_save_and_load(tiny_model_dir, tiny_forecaster):
    reloaded = TftForecaster.load(DirectoryModelRegistry(tiny_model_dir), NAME, device="cpu")
    window = window_of("ppdb000", synthetic_values(80, seed=0))
    a = tiny_forecaster.forecast([window], {})["ppdb000"]
    b = reloaded.forecast([window], {})["ppdb000"]
    for target in a.values:
        np.testing.assert_array_equal(a.values[target], b.values[target])


def test_the_manifest_describes_the_network_and_its_data(tiny_model_dir):
    manifest = json.loads((tiny_model_dir / NAME / "manifest.json").read_text())
    assert manifest["format"] == "argus-tft/1" and manifest["name"] == NAME
    assert manifest["network"]["hidden_size"] == 4
    assert manifest["feature_spec"]["horizon_steps"] == 24
    assert "cpu_pct_z" in manifest["features"]["unknown_reals"]
    assert "status" in manifest["features"]["excluded"][0]
    assert manifest["libraries"]["torch"].startswith("2.13.0")
    assert manifest["training"]["data"]["servers"] == 4 and manifest["training"]["data"]["records"] > 0
    assert manifest["validation"]["targets"]["cpu_pct"]["mae"] >= 0
    assert len(manifest["weights_sha256"]) == 64 and manifest["size_bytes"] > 0


def test_tampered_weights_are_rejected(model_copy):
    weights = model_copy.root / NAME / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="checksum"):
        TftForecaster.load(model_copy, NAME, device="cpu")


def test_a_foreign_manifest_is_rejected(model_copy):
    manifest_path = model_copy.root / NAME / "manifest.json"
    manifest_path.write_text(json.dumps({"format": "pickle-please", "weights_sha256": "x"}))
    with pytest.raises(ModelLoadError):
        model_copy.info(NAME)


@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "a/b", "..", ".hidden", "", "x" * 200])
def test_names_that_leave_the_model_directory_are_rejected(model_copy, name):
    with pytest.raises(ModelLoadError):
        TftForecaster.load(model_copy, name, device="cpu")


def test_a_symlinked_model_folder_pointing_elsewhere_is_rejected(model_copy, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    shutil.copytree(model_copy.root / NAME, outside / NAME)
    (model_copy.root / "tft_20990101_000000").symlink_to(outside / NAME)
    with pytest.raises(ModelLoadError):
        model_copy.info("tft_20990101_000000")
    assert [m.name for m in model_copy.list()] == [NAME]


def test_current_is_replaced_atomically_and_listed(model_copy):
    assert model_copy.current() == NAME
    shutil.copytree(model_copy.root / NAME, model_copy.root / "tft_20250102_000000")
    model_copy.set_current("tft_20250102_000000")
    assert model_copy.current() == "tft_20250102_000000"
    assert [p.name for p in model_copy.root.iterdir() if p.name.startswith(".")] == []
    listed = {m.name: m.is_current for m in model_copy.list()}
    assert listed == {NAME: False, "tft_20250102_000000": True}


def test_set_current_refuses_a_model_that_does_not_verify(model_copy):
    with pytest.raises(ModelLoadError):
        model_copy.set_current("tft_20300101_000000")
    assert model_copy.current() == NAME
