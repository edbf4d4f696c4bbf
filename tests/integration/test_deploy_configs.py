"""deploy/: the Grafana dashboard reads only series Argus exposes; Prometheus, Alertmanager and systemd accept the rest."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from dependency_injector import providers
from prometheus_client.parser import text_string_to_metric_families

from argus.testing import wire_record

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "argus.json"
PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset",
                "bool", "le", "inf", "nan"}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",), "info": ("_info",)}
GRAFANA_VARIABLES = {"$server": "ppdb001", "$horizon": "30m", "$__rate_interval": "5m"}


def _exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def _substituted(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label matchers, groupings, functions and durations removed)."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", _substituted(expr))
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", bare)
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    bare = re.sub(r"\boffset\s+\w+", " ", bare)
    names = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*(?!\s*\()\b(?!\s*\()", bare))
    return {n for n in names if n.lower() not in PROMQL_WORDS}


@pytest.fixture(scope="module")
def exposed(tmp_path_factory, engine_model_dir) -> set[str]:
    """Every sample name /metrics can carry: a real scrape after a tick of the tiny model (with type suffixes)."""
    from falcon import testing

    from argus.entrypoints.container import Container
    from argus.entrypoints.settings import Settings
    from tests.conftest import API_KEY

    tmp = tmp_path_factory.mktemp("exposed")
    shutil.copytree(engine_model_dir, tmp / "models")
    container = Container()
    container.settings.override(providers.Object(Settings(
        api_key=API_KEY, data_dir=tmp, database_url=f"sqlite:///{tmp / 'argus.db'}", model_dir=tmp / "models",
        records_retention_days=36500)))
    try:
        client = testing.TestClient(container.app(), headers={"X-API-Key": API_KEY})
        for step in range(12):
            records = [wire_record(n, step, mem_used_pct=80.0) for n in ("ppdb001", "ppdb003")]
            assert client.simulate_post("/feed/data", json={"records": records}).status_code == 200
        engine = container.engine()
        engine.start()
        engine.tick()
        text = client.simulate_get("/metrics").text
    finally:
        container.shutdown_resources()
    return {f.name + suffix for f in text_string_to_metric_families(text) for suffix in SUFFIXES[f.type]}


def test_the_name_extraction_sees_metrics_and_skips_functions_labels_and_durations():
    expr = ('histogram_quantile(0.99, sum by (le, route) (rate(argus_http_request_duration_seconds_bucket[5m]))) '
            'and on(server) argus_forecast{metric="cpu_pct"} offset 30m')
    assert metric_names(expr) == {"argus_http_request_duration_seconds_bucket", "argus_forecast"}


def test_the_dashboard_is_grafana_json_with_the_promised_panels():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] == "Argus" and isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["server"]["query"]["query"] == "label_values(argus_risk_score, server)"
    assert set(variables["horizon"]["query"].split(",")) == {"30m", "2h", "8h"}
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    kinds = {p["type"] for p in panels}
    assert {"heatmap", "table", "timeseries", "stat", "row"} <= kinds
    bands = [p for p in panels if "$server" in json.dumps(p.get("targets", [])) and p["type"] == "timeseries"]
    assert any("argus_observed" in json.dumps(p) and 'percentile=\\"p90\\"' in json.dumps(p) for p in bands)
    for panel in panels:
        for grid_key in ("x", "y", "w", "h"):
            assert isinstance(panel["gridPos"][grid_key], int)


def test_every_dashboard_query_reads_only_series_argus_exposes(exposed):
    used = set().union(*(metric_names(e) for e in _exprs()))
    assert used - exposed == set()
    assert {"argus_risk_score", "argus_forecast", "argus_observed", "argus_alert_level"} <= used


def test_the_alert_rules_read_only_series_argus_or_prometheus_exposes(exposed):
    rules = yaml.safe_load((DEPLOY / "prometheus" / "argus-rules.yml").read_text())
    used = set().union(*(metric_names(r["expr"]) for g in rules["groups"] for r in g["rules"]))
    assert used - exposed == {"up"}


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (apt-get install {package}); CI installs it")
    return path


def test_promtool_parses_every_dashboard_query(tmp_path):
    promtool = _tool("promtool", "prometheus")
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": _substituted(e)} for i, e in enumerate(_exprs())]}]}
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(rules))
    checked = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_promtool_accepts_the_prometheus_config_and_its_rules():
    promtool = _tool("promtool", "prometheus")
    checked = subprocess.run([promtool, "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout


def test_the_prometheus_config_scrapes_argus_with_the_key_and_writes_node_series_to_it():
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["argus"]["metrics_path"] == "/metrics" and jobs["argus"]["authorization"]["credentials"]
    assert jobs["node"]["static_configs"][0]["targets"] == ["127.0.0.1:9100"]
    (remote,) = config["remote_write"]
    assert remote["url"].endswith("/api/v1/write") and remote["authorization"]["credentials"]
    assert {"source_labels": ["job"], "regex": "node", "action": "keep"} in remote["write_relabel_configs"]


def test_amtool_accepts_the_alertmanager_config():
    amtool = _tool("amtool", "prometheus-alertmanager")
    checked = subprocess.run([amtool, "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml")],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_systemd_unit_runs_argus_serve_hardened():
    unit = (DEPLOY / "systemd" / "argus.service").read_text()
    settings = dict(re.findall(r"^(\w+)=(.*)$", unit, flags=re.MULTILINE))
    assert settings["ExecStart"].split()[1] == "serve" and settings["EnvironmentFile"].startswith("/")
    assert settings["User"] == "argus" and settings["Restart"] == "on-failure"
    assert settings["NoNewPrivileges"] == "true" and settings["ProtectSystem"] == "strict"
    assert settings["ReadWritePaths"] == "/var/lib/argus"
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return
    checked = subprocess.run([analyze, "verify", str(DEPLOY / "systemd" / "argus.service")],
                             capture_output=True, text=True, timeout=60)
    complaints = [line for line in (checked.stdout + checked.stderr).splitlines()
                  if "is not executable" not in line and line.strip()]  # /opt/argus is not installed here
    assert complaints == []
