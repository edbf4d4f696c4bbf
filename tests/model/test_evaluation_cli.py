"""`argus train` / `argus evaluate` through click, and the evaluation JSON layout."""

from __future__ import annotations

import gzip
import json

import click
import pytest
from click.testing import CliRunner

from argus.entrypoints import model_cli
from tests.model.conftest import synthetic_records

pytestmark = pytest.mark.slow


def _cli() -> click.Group:
    group = click.Group("argus")
    model_cli.register(group)
    return group


def _train(tmp_path, monkeypatch, data, *options: str):
    """Write 3 synthetic servers x 3 days to ``data`` (gzipped by its name) and train the tiny model on them."""
    with (gzip.open(data, "wt") if data.suffix == ".gz" else open(data, "w")) as fh:
        for record in synthetic_records(servers=3, days=3):
            fh.write(json.dumps(record.as_dict()) + "\n")
    monkeypatch.setenv("ARGUS_MODEL_DIR", str(tmp_path / "models"))
    return CliRunner().invoke(_cli(), [
        "train", "--data", str(data), "--epochs", "1", "--max-samples-per-epoch", "16", "--batch-size", "8",
        "--hidden-size", "4", "--max-encoder-steps", "48", "--val-days", "0.5", "--output", "tft_20250101_120000",
        *options,
    ])


def test_train_then_evaluate_from_a_gzipped_jsonl_file(tmp_path, monkeypatch):
    data = tmp_path / "records.jsonl.gz"
    runner = CliRunner()
    trained = _train(tmp_path, monkeypatch, data, "--horizon-steps", "96", "--holdout-servers", "0.34")
    assert trained.exit_code == 0, trained.output
    assert (tmp_path / "models" / "CURRENT").read_text().strip() == "tft_20250101_120000"
    report_path = tmp_path / "eval.json"
    evaluated = runner.invoke(_cli(), ["evaluate", "--data", str(data), "--origins", "3", "--json", str(report_path),
                                       "--png", str(tmp_path / "eval.png"), "--record"])
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(report_path.read_text())
    assert report["model"] == "tft_20250101_120000"
    for target in ("cpu_pct", "mem_pct", "swap_pct", "iowait_pct", "disk_pct", "load"):
        for bucket in ("30m", "2h", "8h"):
            assert set(report["targets"][target][bucket]) >= {"mae", "mase", "rel_mase", "coverage_80", "pinball"}
    assert 0 <= report["targets"]["cpu_pct"]["8h"]["coverage_80"] <= 1
    assert (tmp_path / "eval.png").stat().st_size > 1000
    manifest = json.loads((tmp_path / "models" / "tft_20250101_120000" / "manifest.json").read_text())
    assert manifest["evaluation"]["all"]["model"] == "tft_20250101_120000"
    assert len(manifest["training"]["data"]["holdout_servers"]) == 1


def test_evaluate_with_incidents_replays_the_alert_pipeline(tiny_model_dir, tmp_path, monkeypatch):
    import gzip
    import json

    from click.testing import CliRunner

    from argus.entrypoints.cli import cli
    from tests.model.conftest import synthetic_records

    records = synthetic_records(servers=2, days=3.0)
    path = tmp_path / "records.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        for record in records:
            fh.write(json.dumps(record.as_dict()) + "\n")
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({
        "windows": [{"server_name": "ppdb000", "start": "2025-01-17T12:00:00", "end": "2025-01-17T13:00:00",
                     "kind": "memory_leak", "class": "gradual", "metric": "mem_pct"}],
        "negatives": [{"server_name": "ppweb001", "start": "2025-01-17T06:00:00", "end": "2025-01-17T07:00:00",
                       "kind": "burst_return"}],
    }))
    monkeypatch.setenv("ARGUS_MODEL_DIR", str(tiny_model_dir))
    out, diagram = tmp_path / "report.json", tmp_path / "reliability.png"
    result = CliRunner().invoke(cli, ["evaluate", "--data", str(path), "--origins", "2", "--json", str(out),
                                      "--labels", str(labels), "--tick-minutes", "60",
                                      "--reliability-png", str(diagram)])
    assert result.exit_code == 0, result.output
    assert "warned before crossing" in result.output
    report = json.loads(out.read_text())["incidents"]
    assert set(report) >= {"precision", "recall", "lead_minutes_median", "brier_30m", "brier_8h",
                           "brier_30m_climatology", "brier_8h_climatology", "warned_before_crossing",
                           "false_alerts_per_server_day", "alerts_on_negatives", "recall_by_class", "lead_minutes",
                           "brier_skill_30m", "brier_skill_8h", "brier_raw_30m", "brier_raw_8h"}
    assert report["incident_source"] == "labels" and report["ticks"] > 0 and report["negatives"] == 1
    assert set(report["lead_minutes"]) == {"all", "memory_leak"}
    assert diagram.stat().st_size > 1000


def test_calibrate_refits_the_blend_of_a_model_trained_without(tmp_path, monkeypatch):
    data = tmp_path / "records.jsonl"
    runner = CliRunner()
    trained = _train(tmp_path, monkeypatch, data, "--horizon-steps", "24", "--no-calibrate", "--guides")
    assert trained.exit_code == 0, trained.output
    manifest_path = tmp_path / "models" / "tft_20250101_120000" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert "blend" not in manifest and manifest["features"]["known_reals"][-1] == "load_trend_z"
    calibrated = runner.invoke(_cli(), ["calibrate", "--data", str(data), "--days", "1", "--origins", "3",
                                        "--no-probabilities"])
    assert calibrated.exit_code == 0, calibrated.output
    assert "band factors" in calibrated.output
    section = json.loads(manifest_path.read_text())["blend"]
    assert section["calibration"]["windows"] > 0 and set(section["band_scale"]) >= {"cpu_pct", "mem_pct"}


def test_calibrate_fits_a_monotone_probability_map_on_an_incident_bench(tmp_path, monkeypatch):
    """argus bench make, then argus calibrate --bench: a stored, monotone map that the blend serves."""
    from argus.adapters.blend import BlendForecaster
    from argus.adapters.tft.registry import DirectoryModelRegistry
    from argus.entrypoints import bench_cli

    data = tmp_path / "records.jsonl"
    trained = _train(tmp_path, monkeypatch, data, "--horizon-steps", "24", "--no-calibrate")
    assert trained.exit_code == 0, trained.output
    background = tmp_path / "background.jsonl"
    with open(background, "w") as fh:
        for record in synthetic_records(servers=4, days=5, seed=3):
            fh.write(json.dumps(record.as_dict()) + "\n")
    group = _cli()
    bench_cli.register(group)
    runner = CliRunner()
    made = runner.invoke(group, ["bench", "make", "--data", str(background), "--out", str(tmp_path / "bench"),
                                 "--seed", "5", "--warmup-days", "1"])
    assert made.exit_code == 0, made.output
    calibrated = runner.invoke(group, ["calibrate", "--data", str(data), "--no-bands", "--bench",
                                       str(tmp_path / "bench")])
    assert calibrated.exit_code == 0, calibrated.output
    section = json.loads((tmp_path / "models" / "tft_20250101_120000" / "manifest.json").read_text())[
        "probability_calibration"]
    assert len(section["30m"]) == len(section["8h"]) == len(section["edges"]) + 1  # one map per stratum
    for horizon in ("30m", "8h"):
        for xs, ys in section[horizon]:
            assert xs[0] == 0.0 and xs[-1] == 1.0
            assert all(b >= a for a, b in zip(ys, ys[1:], strict=False)) and ys[0] >= 0.0 and ys[-1] <= 1.0
    assert section["fitted_on"]["incidents"] > 0
    served = BlendForecaster.load(DirectoryModelRegistry(tmp_path / "models"))
    assert served.probability_calibration is not None
