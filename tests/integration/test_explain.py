"""Explanations computed from the real (tiny) TFT: SHAP, attention and counterfactuals, cached per tick."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np
import pytest

from argus.adapters.explain.service import ExplainService
from argus.adapters.tft.forecaster import TftForecaster
from argus.adapters.tft.registry import DirectoryModelRegistry
from argus.domain.errors import ModelNotLoadedError, UnknownServerError
from argus.domain.explanation import ServerNotReadyError, forecast_peak
from argus.domain.metrics import FIELD_INDEX, FleetWindows
from argus.domain.profiles import ProfileResolver
from argus.domain.risk import assess, current_values, recent_means
from argus.domain.ticks import Predictor
from argus.plugins.host import PluginHost
from tests.model.conftest import synthetic_values, window_of

pytestmark = pytest.mark.slow  # trains the session's tiny TFT when no other test did

AT = datetime(2025, 1, 18, tzinfo=UTC)


def _leaking_memory(n: int = 288) -> np.ndarray:
    """A web server whose memory ramps from 55% to 91% (limit 92%): everything else calm and seasonal."""
    values = synthetic_values(n, seed=3, level=30, mem=60)
    noise = np.random.default_rng(1).normal(0, 0.3, n)
    values[:, FIELD_INDEX["mem_used_pct"]] = np.linspace(55.0, 91.0, n) + noise
    return values


@pytest.fixture(scope="module")
def forecaster(engine_model_dir):
    return TftForecaster.load(DirectoryModelRegistry(engine_model_dir), device="cpu")


@pytest.fixture
def fleet():
    windows = FleetWindows(2880)
    windows.put(window_of("ppweb001", _leaking_memory()))
    windows.put(window_of("ppweb002", synthetic_values(288, seed=4)))
    windows.put(window_of("ppweb003", synthetic_values(5, seed=5)))  # warming up
    return windows


@pytest.fixture
def service(forecaster):
    predictor = Predictor(forecaster, ProfileResolver())
    explainers = PluginHost.load(entry_points=False).explainers({})
    return ExplainService(predictor, explainers, known=lambda name: name.startswith("ppweb"))


def test_a_memory_leak_is_explained_by_memory_and_fixed_by_the_memory_scenario(service, fleet):
    result = service.predictor.tick(fleet, AT)
    service.observe(result)
    body = service.handle({"server_name": "ppweb001"})

    assert body["prediction"]["risk_score"] >= 50.0 and body["prediction"]["driver"] == "mem_pct"
    shap = body["shap"]
    assert shap["top_features"][0]["feature"] == "mem_pct"
    assert shap["explained_metric"] == "mem_pct" and shap["evaluations"] >= shap["nsamples"]
    # The all-players coalition is the real window: SHAP's output is the tick's own forecast peak.
    assert shap["output_value"] == pytest.approx(forecast_peak(result.forecasts["ppweb001"], "mem_pct"), abs=1e-2)
    memory = next(c for c in body["counterfactuals"] if c["scenario"] == "Reduce memory by 15%")
    assert memory["risk_before"] == body["prediction"]["risk_score"]
    assert memory["risk_after"] < memory["risk_before"]
    assert memory["impact"] == f"Risk drops from {memory['risk_before']:.1f} to {memory['risk_after']:.1f}"
    drops = [c["risk_after"] - c["risk_before"] for c in body["counterfactuals"]]
    assert drops == sorted(drops)  # the most effective first
    assert {c["scenario"] for c in body["counterfactuals"]} <= {"Reduce memory by 15%", "Restart the service"}


def test_importances_are_normalised_sorted_and_starred(service, fleet):
    service.observe(service.predictor.tick(fleet, AT))
    features = service.handle({"server_name": "ppweb002"})["shap"]["top_features"]
    importances = [f["importance"] for f in features]
    assert importances[0] == 1.0 and importances == sorted(importances, reverse=True)
    assert all(0.0 <= i <= 1.0 for i in importances)
    assert all(len(f["stars"]) == 5 for f in features) and features[0]["stars"] == "★★★★★"


def test_attention_focus_periods_lie_inside_the_encoder_window(service, fleet):
    result = service.predictor.tick(fleet, AT)
    service.observe(result)
    attention = service.handle({"server_name": "ppweb001"})["attention"]
    encoder = result.forecasts["ppweb001"].encoder_timestamps
    first, last = (datetime.fromtimestamp(int(t), tz=UTC).replace(tzinfo=None).isoformat() for t in encoder[[0, -1]])
    assert 1 <= len(attention["focus_periods"]) <= 3
    assert [p["phrase"] for p in attention["periods"]] == attention["focus_periods"]
    assert all(first <= p["start"] <= p["end"] <= last for p in attention["periods"])
    assert attention["analysis"].startswith("Model focused on ") and "memory" in attention["analysis"]


def test_the_second_call_on_the_same_tick_is_served_from_the_cache(service, fleet):
    service.observe(service.predictor.tick(fleet, AT))
    first = service.handle({"server_name": "ppweb002"})
    started = time.perf_counter()
    second = service.handle({"server_name": "ppweb002"})
    assert time.perf_counter() - started < 0.01
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["shap"] == first["shap"] and second["counterfactuals"] == first["counterfactuals"]


def test_each_tick_precomputes_servers_at_warning_or_above_only(service, fleet):
    bodies = service.observe(service.predictor.tick(fleet, AT))
    levels = {a.server_name: a.level.value for a in service.latest.assessments}
    assert set(bodies) == {f"explain:{name}" for name, level in levels.items() if level in ("warning", "critical")}
    service.precompute_max = 0
    assert service.observe(service.predictor.tick(fleet, AT)) == {}


def test_servers_not_ready_unknown_or_without_a_model_are_refused(service, fleet):
    service.observe(service.predictor.tick(fleet, AT))
    with pytest.raises(ServerNotReadyError):
        service.handle({"server_name": "ppweb003"})
    with pytest.raises(UnknownServerError):
        service.handle({"server_name": "ppdb404"})
    service.predictor.forecaster = None
    with pytest.raises(ModelNotLoadedError):
        service.handle({"server_name": "ppweb001"})


def test_the_risk_score_can_be_explained_instead_but_its_plateaus_attribute_nothing(forecaster, fleet):
    """Why the default explains the driver's forecast: the score is capped at 55 when memory is elevated,
    and masking any series (even memory, whose 4-hour median is still 95% of its limit) leaves it there."""
    from argus.adapters.explain.shap_explainer import ShapExplainer

    predictor = Predictor(forecaster, ProfileResolver())
    service = ExplainService(predictor, [ShapExplainer(nsamples=64, output="risk_score")])
    result = predictor.tick(fleet, AT)
    service.observe(result)
    shap = service.handle({"server_name": "ppweb001"})["shap"]
    assessment = next(a for a in result.assessments if a.server_name == "ppweb001")
    assert shap["explained_output"] == "risk_score"
    assert shap["output_value"] == pytest.approx(assessment.score, abs=0.05)
    assert shap["base_value"] == pytest.approx(shap["output_value"], abs=0.05)
    assert all(f["importance"] == 0.0 for f in shap["top_features"])


def _high_but_normal_memory(n: int = 3 * 288) -> np.ndarray:
    """A web server whose memory has sat at 73–83% for days (limit 92%): its own normal, not a risk."""
    return synthetic_values(n, seed=6, level=30, mem=78)


def test_an_explanation_carries_its_ticks_risk_even_where_the_server_learned_its_normal(service):
    windows = FleetWindows(2880)
    windows.put(window_of("ppweb004", _high_but_normal_memory()))
    windows.put(window_of("ppweb001", _leaking_memory(3 * 288)))
    result = service.predictor.tick(windows, AT)
    service.observe(result)
    for name in ("ppweb004", "ppweb001"):
        assessment = next(a for a in result.assessments if a.server_name == name)
        body = service.handle({"server_name": name})
        assert body["tick_at"] == "2025-01-18T00:00:00"
        assert body["forecast_origin"] == datetime.fromtimestamp(
            int(result.windows[name].timestamps[-1]), tz=UTC).replace(tzinfo=None).isoformat()
        assert (body["prediction"]["risk_score"], body["prediction"]["alert_level"]) == (
            assessment.score, assessment.level.value)
        assert body["counterfactuals"], name
        # the unchanged window, re-run and re-scored, is the tick's own score (with the tick's limits and normals)
        assert {c["risk_before"] for c in body["counterfactuals"]} == {assessment.score}
    # ... which the profile's limits alone would not give: the learned normal lowers the elevation part
    calm = next(a for a in result.assessments if a.server_name == "ppweb004")
    window = result.windows["ppweb004"]
    absolute = assess("ppweb004", calm.profile, service.predictor.profiles.profile_for("ppweb004").limits,
                      current_values(window), recent_means(window), result.forecasts["ppweb004"])
    assert absolute.score > calm.score + 5


def test_a_tick_drops_the_cached_explanations_whose_window_moved_on(service, fleet):
    # Kept until asked again, every server's last body stayed: ~1,000 stale ones in a 1,000-server soak.
    service.observe(service.predictor.tick(fleet, AT))
    service.handle({"server_name": "ppweb001"})
    service.handle({"server_name": "ppweb002"})
    moved = fleet.get("ppweb002")
    moved.add(int(moved.timestamps[-1]) + 300, moved.values[-1], "healthy")

    service.observe(service.predictor.tick(fleet, AT))

    assert set(service._cache) == {"ppweb001"}  # its window is the same: its body can still serve
    assert service.handle({"server_name": "ppweb001"})["cached"] is True
    assert service.handle({"server_name": "ppweb002"})["cached"] is False
