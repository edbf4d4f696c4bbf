"""Servers whose source lacks Java CPU and the CLOSE_WAIT counts (Prometheus without node_exporter's tcpstat
collector) through the whole engine: SQL store, the real (tiny) TFT in the served blend, risk, explanations,
the published /predictions/current."""

from __future__ import annotations

import json
import math

import attrs
import numpy as np
import pytest
from dependency_injector import providers

from argus.adapters.tft.forecaster import TftForecaster
from argus.adapters.tft.registry import DirectoryModelRegistry
from argus.domain.metrics import FIELD_INDEX, Record
from argus.entrypoints.container import Container
from tests.model.conftest import synthetic_values, window_of

pytestmark = pytest.mark.slow  # trains the session's tiny TFT when no other test did

LACKING = ["java_cpu_pct", "back_close_wait", "front_close_wait"]
PROMETHEUS_FED = ("ppweb001", "ppdb002")


def _fleet() -> list[Record]:
    """Four servers over a day; two of them lack LACKING, and one of those has a memory leak."""
    from tests.model.conftest import synthetic_records

    out = []
    for record in synthetic_records(servers=4, days=1.0):
        values = list(record.values)
        if record.server_name in PROMETHEUS_FED:
            for field in LACKING:
                values[FIELD_INDEX[field]] = math.nan
        out.append(attrs.evolve(record, values=tuple(values)))
    leak = [r for r in out if r.server_name == "ppweb001"]
    for i, record in enumerate(leak):
        values = list(record.values)
        values[FIELD_INDEX["mem_used_pct"]] = 55.0 + 36.0 * i / len(leak)  # up to 91 %, the web limit is 92
        out[out.index(record)] = attrs.evolve(record, values=tuple(values))
    return out


@pytest.fixture
def engine_container(settings, engine_model_dir):
    container = Container()
    container.settings.override(providers.Object(attrs.evolve(settings, model_dir=engine_model_dir)))
    yield container
    container.shutdown_resources()


def _floats(body) -> list[float]:
    if isinstance(body, dict):
        return [x for v in body.values() for x in _floats(v)]
    if isinstance(body, list):
        return [x for v in body for x in _floats(v)]
    return [body] if isinstance(body, float) else []


def test_servers_lacking_fields_are_forecast_scored_explained_and_say_what_they_lack(engine_container):
    store = engine_container.store()
    store.write_batch(_fleet())
    engine = engine_container.engine()
    engine.start()
    result = engine.tick()

    assert set(result.forecasts) == {"ppdb000", "ppweb001", "ppdb002", "ppweb003"}  # none lost a row
    for forecast in result.forecasts.values():
        assert all(np.isfinite(v).all() for v in forecast.values.values())
    for assessment in result.assessments:
        assert math.isfinite(assessment.score) and "close_wait" not in (assessment.driver.metric, None)
    scored = {a.server_name: set(a.metrics) for a in result.assessments}
    assert "close_wait" in scored["ppweb003"] and "close_wait" not in scored["ppweb001"]  # both web: limit 200

    body = json.loads(store.read_published("predictions").body)["predictions"]
    for name, server in body.items():
        assert server["missing_fields"] == (LACKING if name in PROMETHEUS_FED else [])
        assert server["forecast"]["cpu_pct"] and all(v is not None for v in server["forecast"]["mem_pct"])
    assert body["ppweb001"]["risk_score"] >= 50 and body["ppweb001"]["driver"] == "mem_pct"

    explained = engine_container.explain_service().handle({"server_name": "ppweb001"})
    shap = explained["shap"]
    assert shap["missing_features"] == LACKING and shap["players"] == 13 - len(LACKING)
    assert not {f["feature"] for f in shap["top_features"]} & set(LACKING)
    assert shap["top_features"][0]["feature"] == "mem_pct"
    assert "Close stale connections" not in {c["scenario"] for c in explained["counterfactuals"]}
    assert explained["attention"]["feature"] not in LACKING
    assert explained["missing_fields"] == LACKING
    assert all(math.isfinite(x) for x in _floats(explained))

    complete = engine_container.explain_service().handle({"server_name": "ppdb000"})
    assert complete["missing_fields"] == [] and complete["shap"]["players"] == 13


def test_the_tft_reads_a_missing_covariate_as_its_neutral_value(engine_model_dir):
    """Masked, never NaN: lacking Java CPU and CLOSE_WAIT forecasts exactly as sending 0 for them (what the
    training data held), and a gap in a covariate forecasts as its last known value carried forward."""
    forecaster = TftForecaster.load(DirectoryModelRegistry(engine_model_dir), device="cpu")
    values = synthetic_values(48, seed=3)
    lacking, zeros, gap, carried = (values.copy() for _ in range(4))
    for field in LACKING:
        lacking[:, FIELD_INDEX[field]] = np.nan
        zeros[:, FIELD_INDEX[field]] = 0.0
    net = FIELD_INDEX["net_in_mb_s"]
    gap[30:, net] = np.nan
    carried[30:, net] = values[29, net]
    windows = [window_of(name, v) for name, v in
               (("lacking", lacking), ("zeros", zeros), ("gap", gap), ("carried", carried))]
    out = forecaster.forecast(windows, {})
    assert set(out) == {"lacking", "zeros", "gap", "carried"}
    for a, b in (("lacking", "zeros"), ("gap", "carried")):
        for target, path in out[a].values.items():
            assert np.isfinite(path).all()
            np.testing.assert_allclose(path, out[b].values[target], rtol=1e-5, atol=1e-4)
