"""`argus evaluate`: the served forecaster beside the peers on the same windows (scoring, bootstrap, --start)."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import numpy as np
import pytest

from argus.adapters import structural
from argus.adapters.blend import window_at
from argus.adapters.tft.data import load_series
from argus.adapters.tft.evaluation import (
    BOOTSTRAP_RESAMPLES,
    TFT_ALONE,
    evaluate,
    format_table,
    server_bootstrap_ratio,
)
from argus.adapters.tft.features import FeatureSpec
from argus.domain.forecast import TARGETS, Forecast
from argus.domain.metrics import STEP_SECONDS
from tests.model.conftest import START_EPOCH_S, synthetic_records

DAY_S = 86_400
BUCKET_KEYS = {"30m", "2h", "8h"}


class Oracle:
    """A forecaster that knows the future: every quantile is the actual (plus ``offset``)."""

    quantiles = (0.1, 0.5, 0.9)
    horizon_steps = 24
    history_steps = 2880
    min_history_steps = 12

    def __init__(self, series, offset: float = 0.0, inner=None) -> None:
        self.series, self.offset, self.name = series, offset, "oracle"
        self.spec = FeatureSpec(max_encoder_steps=48, horizon_steps=self.horizon_steps)
        self.manifest: dict = {}
        if inner is not None:
            self.inner = inner

    def forecast(self, windows, profiles):
        out = {}
        for w in windows:
            origin = w.last_epoch_s
            s = self.series[w.server_name]
            _, actual = window_at(s, origin, 1, self.horizon_steps)
            values = np.repeat(np.nan_to_num(actual)[:, :, None], len(self.quantiles), axis=2) + self.offset
            out[w.server_name] = Forecast(w.server_name, origin + STEP_SECONDS * np.arange(1, self.horizon_steps + 1),
                                          self.quantiles, {t: values[:, j] for j, t in enumerate(TARGETS)})
        return out


@pytest.fixture(scope="module")
def fleet():
    return load_series(synthetic_records(servers=3, days=4))


def _oracle(series) -> Oracle:
    return Oracle(series, inner=Oracle(series, offset=1.0))


def test_the_bootstrap_interval_holds_the_point_ratio_and_is_seeded():
    rng = np.random.default_rng(7)
    den = rng.uniform(5, 50, 40)
    num = den * rng.uniform(0.6, 1.2, 40)
    first = server_bootstrap_ratio(num, den, seed=3)
    assert first == server_bootstrap_ratio(num, den, seed=3)
    assert first != server_bootstrap_ratio(num, den, seed=4)
    lo, hi = first["ci90"]
    assert lo < first["ratio"] < hi
    assert first["ratio"] == round(num.sum() / den.sum(), 4)
    # the vectorised resampling is the plain one: the same draws, one resample at a time
    draws = np.random.default_rng(3).integers(0, 40, size=(BOOTSTRAP_RESAMPLES, 40))
    plain = [num[d].sum() / den[d].sum() for d in draws]
    assert [lo, hi] == [round(float(x), 4) for x in np.percentile(plain, [5, 95])]


def test_a_single_server_or_an_exact_peer_gives_a_degenerate_or_no_ratio():
    assert server_bootstrap_ratio(np.array([2.0]), np.array([4.0])) == {"ratio": 0.5, "ci90": [0.5, 0.5]}
    assert server_bootstrap_ratio(np.array([1.0, 2.0]), np.array([0.0, 0.0]))["ratio"] is None


def test_a_perfect_oracle_scores_zero_and_every_peer_ratio_is_zero(fleet):
    report, result = evaluate(_oracle(fleet), fleet, origins=4, start_epoch_s=START_EPOCH_S + DAY_S)
    assert report["windows"] == len(result["rows"]) == 12 and report["n_servers"] == 3
    for target in TARGETS:
        for bucket in BUCKET_KEYS:
            served = report["targets"][target][bucket]
            assert served["mae"] == 0 and served["pinball"] == 0 and served["coverage_80"] == 1
            assert report["peers"][TFT_ALONE][target][bucket]["mae"] == pytest.approx(1.0, abs=1e-3)
            for peer, metrics in report["peers"].items():
                ratio = metrics[target][bucket]["mae_ratio_served_vs_peer"]
                if metrics[target][bucket]["mae"]:
                    assert ratio == {"ratio": 0.0, "ci90": [0.0, 0.0]}, (peer, target, bucket)
    # seasonal naive is its own reference; point peers' pinball is MAE / 2
    sn = report["peers"]["seasonal_naive"]["cpu_pct"]["8h"]
    assert sn["rel_mase"] == 1.0 and sn["pinball"] == pytest.approx(sn["mae"] / 2, abs=1e-4)
    # the peers were scored on the very windows the forecaster saw
    assert result["peers"]["last_value"].shape == result["actual"].shape == result["pred"].shape[:3]
    assert "baselines" not in report


def test_the_peers_report_has_exactly_the_specified_keys(fleet):
    report, _ = evaluate(_oracle(fleet), fleet, origins=2, start_epoch_s=START_EPOCH_S + DAY_S)
    assert set(report["peers"]) == set(structural.PEERS) | {TFT_ALONE}
    for peer, per_target in report["peers"].items():
        assert set(per_target) == set(TARGETS)
        for per_bucket in per_target.values():
            assert set(per_bucket) == BUCKET_KEYS
            for metrics in per_bucket.values():
                expected = {"mae", "rel_mase", "mase", "pinball", "mae_ratio_served_vs_peer"}
                assert set(metrics) == (expected | {"coverage_80"} if peer == TFT_ALONE else expected)
                assert set(metrics["mae_ratio_served_vs_peer"]) == {"ratio", "ci90"}
                assert len(metrics["mae_ratio_served_vs_peer"]["ci90"]) == 2
    for per_bucket in report["targets"].values():
        assert set(per_bucket) == BUCKET_KEYS
        for metrics in per_bucket.values():
            assert set(metrics) >= {"mae", "mase", "rel_mase", "coverage_80", "pinball"}
    assert json.loads(json.dumps(report)) == report
    assert max(len(line) for line in format_table(report).splitlines()) <= 160


def test_a_forecaster_without_inner_has_no_tft_alone_peer(fleet):
    report, result = evaluate(Oracle(fleet), fleet, origins=1, start_epoch_s=START_EPOCH_S + DAY_S)
    assert TFT_ALONE not in report["peers"] and result["tft"] is None
    assert report["forecaster"] == "Oracle"


def test_start_is_honoured_and_origins_never_precede_it(fleet):
    start = START_EPOCH_S + 2 * DAY_S + 3600
    report, result = evaluate(_oracle(fleet), fleet, origins=5, start_epoch_s=start)
    assert report["period_start"] == datetime.fromtimestamp(start, UTC).isoformat(timespec="seconds")
    assert report["period_start_rule"] == "--start"
    origins = [o for _, o in result["rows"]]
    assert min(origins) >= start and len(origins) == 15
    # the MASE scale is the history before the start: a day of it is there
    assert report["targets"]["cpu_pct"]["8h"]["mase"] is not None


def test_the_default_start_is_a_week_into_the_file():
    series = load_series(synthetic_records(servers=2, days=9))
    report, result = evaluate(_oracle(series), series, origins=3)
    assert report["period_start_rule"] == "7 days into the file"
    assert min(o for _, o in result["rows"]) >= START_EPOCH_S + 7 * DAY_S


def test_unmeasured_actuals_are_left_out_not_scored_as_zero(fleet):
    series = dict(fleet)
    s = series["ppdb000"]
    gap = (s.ts > START_EPOCH_S + 2 * DAY_S) & (s.ts % 3600 == 0)  # one missing record an hour
    status = s.status.copy()
    status[gap] = 6  # offline
    series["ppdb000"] = type(s)(s.server_name, s.ts, s.values, status)
    report, result = evaluate(_oracle(series), series, origins=4, start_epoch_s=START_EPOCH_S + DAY_S)
    assert np.isnan(result["actual"]).any()
    assert report["targets"]["cpu_pct"]["8h"]["mae"] == 0


@pytest.mark.slow
def test_the_cli_honours_start_and_reports_peers(tiny_model_dir, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from argus.entrypoints.cli import cli

    path = tmp_path / "records.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        for record in synthetic_records(servers=2, days=3):
            fh.write(json.dumps(record.as_dict()) + "\n")
    monkeypatch.setenv("ARGUS_MODEL_DIR", str(tiny_model_dir))
    out = tmp_path / "report.json"
    result = CliRunner().invoke(cli, ["evaluate", "--data", str(path), "--origins", "2", "--start",
                                      "2025-01-16T12:00:00", "--json", str(out), "--png", str(tmp_path / "e.png")])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["period_start"] == "2025-01-16T12:00:00+00:00" and report["forecaster"] == "blend"
    assert set(report["peers"]) == set(structural.PEERS) | {TFT_ALONE}
    assert "served vs same_time_median_7d" in result.output
    bad = CliRunner().invoke(cli, ["evaluate", "--data", str(path), "--start", "yesterday"])
    assert bad.exit_code != 0 and "ISO 8601" in bad.output


def test_coverage_on_varying_servers_leaves_out_those_a_floor_wide_band_covers_anyway():
    """A constant server inside its band every step and a varying one inside half the time: all-server
    coverage 0.75, varying-server coverage 0.5 (only the varying one's scale is above VARYING_SCALE)."""
    from argus.adapters.tft.evaluation import VARYING_SCALE, score

    n, h, q = 4, 96, (0.1, 0.5, 0.9)
    actual = np.zeros((2 * n, h, len(TARGETS)))
    actual[n:, 1::2] = 10.0  # the varying server's every other step is outside its band
    pred = np.repeat(np.zeros_like(actual)[..., None], 3, axis=-1) + np.array([-0.5, 0.0, 0.5])
    scale = np.array([[0.05] * len(TARGETS), [5.0] * len(TARGETS)])
    assert (scale[0] < np.array(list(VARYING_SCALE.values()))).all()
    result = {"pred": pred, "tft": None, "actual": actual, "server": np.repeat([0, 1], n), "scale": scale,
              "peers": {p: np.zeros_like(actual) for p in ("last_value", "seasonal_naive")}}
    cpu = score(result, q, resamples=10)["targets"]["cpu_pct"]["8h"]
    assert cpu["coverage_80"] == pytest.approx(0.75) and cpu["coverage_80_varying"] == pytest.approx(0.5)
    assert cpu["varying_servers"] == 1
