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
