"""The argus_explainers hook: built-ins first, third-party explainers added, duplicates refused."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

from argus.adapters.explain.service import ExplainService
from argus.domain.metrics import STATUS_CODE, FleetWindows, MetricsWindow
from argus.domain.profiles import ProfileResolver
from argus.domain.ticks import Predictor
from argus.plugins import hookimpl
from argus.plugins.host import PluginHost
from argus.testing import FixedForecaster, make_record


@attrs.define
class UptimeExplainer:
    """A site explainer: reports how long the server has been up (a record field the model never reads)."""

    name: str = "uptime"

    def explain(self, context):
        return {"uptime_days": float(context.window.values[-1, -1]), "profile": context.profile.name}


class SitePlugin:
    @hookimpl
    def argus_explainers(self, settings):
        return [UptimeExplainer()]


@pytest.fixture
def host():
    host = PluginHost.load(entry_points=False)
    host.pm.register(SitePlugin(), name="site")
    yield host
    host.pm.unregister(name="site")


def test_a_site_explainer_is_added_after_the_builtins(host):
    assert [e.name for e in host.explainers({})] == ["shap", "attention", "counterfactuals", "uptime"]


def test_builtin_settings_reach_the_shap_explainer(host):
    shap = host.explainers({"shap_samples": "64", "shap_output": "risk_score"})[0]
    assert (shap.nsamples, shap.output) == (64, "risk_score")


def test_two_explainers_with_the_same_name_fail(host):
    class Clash:
        @hookimpl
        def argus_explainers(self):
            return [UptimeExplainer()]

    host.pm.register(Clash(), name="clash")
    with pytest.raises(ValueError, match="duplicate explainer name"):
        host.explainers({})


def test_a_site_section_appears_in_the_explanation(host):
    records = [make_record("ppdb001", step) for step in range(12)]
    window = MetricsWindow.from_arrays(
        "ppdb001", 100, np.array([r.epoch_s for r in records]), np.array([r.values for r in records], np.float32),
        np.full(12, STATUS_CODE["healthy"], np.int8))
    fleet = FleetWindows(100)
    fleet.put(window)
    predictor = Predictor(FixedForecaster(), ProfileResolver())
    explainers = [e for e in host.explainers({}) if e.name in ("attention", "uptime")]
    service = ExplainService(predictor, explainers)
    service.observe(predictor.tick(fleet, records[-1].timestamp))
    body = service.handle({"server_name": "ppdb001"})
    assert body["uptime"] == {"uptime_days": 45.0, "profile": "database"}
    assert body["shap"] == {} and body["counterfactuals"] == []  # not run here: empty, still in the shape


def test_the_explainer_hook_receives_every_argus_explain_setting():
    """The hookspec promises every ARGUS_EXPLAIN_* setting; the engine used to pass only the SHAP two."""
    import re
    from pathlib import Path

    from argus.domain.explanation import ExplainSettings
    from argus.entrypoints.settings import Settings

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    documented = {m.lower() for m in re.findall(r"`ARGUS_EXPLAIN_([A-Z0-9_]+)`", readme)}
    env = {"ARGUS_EXPLAIN_TIMEOUT_S": "7.5", "ARGUS_EXPLAIN_PRECOMPUTE_MAX": "2",
           "ARGUS_EXPLAIN_SHAP_SAMPLES": "64", "ARGUS_EXPLAIN_SHAP_OUTPUT": "risk_score"}
    assert documented == {name.removeprefix("ARGUS_EXPLAIN_").lower() for name in env}
    received = []

    class Recorder:
        @hookimpl
        def argus_explainers(self, settings):
            received.append(settings)
            return []

    host = PluginHost.load(entry_points=False)
    host.pm.register(Recorder(), name="recorder")
    shap = host.explainers(Settings.from_env(env).explain_settings)[0]
    (settings,) = received
    assert isinstance(settings, ExplainSettings)
    assert (settings.timeout_s, settings.precompute_max, settings.shap_samples, settings.shap_output) == (
        7.5, 2, 64, "risk_score")
    assert dict(settings) == {"timeout_s": "7.5", "precompute_max": "2", "shap_samples": "64",
                              "shap_output": "risk_score"}  # the mapping view: every setting, as strings
    assert set(settings) == documented
    assert (shap.nsamples, shap.output) == (64, "risk_score")
