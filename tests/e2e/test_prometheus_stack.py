"""End to end with the real binaries: node_exporter -> Prometheus -> Argus -> Prometheus and Alertmanager.

`argus serve` (gunicorn and the engine, the tiny TFT, SQLite, a 10-second step) receives
Prometheus' remote_write of a real node_exporter, Prometheus scrapes Argus's /metrics, and
Argus's Alertmanager sink posts to a real Alertmanager. Needs Debian's `prometheus`,
`prometheus-node-exporter` and `prometheus-alertmanager` packages (.ci/run installs them); skips
without them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import sys
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime

import pytest

from argus.domain.rollup import is_real_filesystem
from argus.testing import wire_record
from tests.e2e.prometheus_binaries import (
    Binary,
    free_port,
    get_json,
    missing_binaries,
    prometheus_config,
    promql,
    start_alertmanager,
    start_node_exporter,
    start_prometheus,
    wait_for,
)

KEY = "e2e-key-abcdefghijklmnop"
STEP_S = 10
HOST = "argus-e2e-node"  # node_exporter's instance label (port stripped: Argus's server name)
SEED_STEPS = 24  # more than the tiny TFT's 12-step minimum history


def _skip_reason() -> str | None:
    missing = missing_binaries()
    if missing:
        return (f"{', '.join(missing)} not installed (apt-get install prometheus prometheus-node-exporter "
                "prometheus-alertmanager)")
    with open("/proc/mounts") as mounts:
        if not any(is_real_filesystem(f[2], f[1]) for f in (line.split() for line in mounts) if len(f) > 2):
            return "no real filesystem mounted (overlay root?): node_exporter gives no disk_usage_pct, a required field"
    return None


SKIP_REASON = _skip_reason()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")]


def _meminfo_used_pct() -> float:
    """100 × (MemTotal − MemAvailable) / MemTotal, read as node_exporter reads it."""
    values = {}
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            name, _, rest = line.partition(":")
            values[name] = float(rest.split()[0])
    return 100.0 * (values["MemTotal"] - values["MemAvailable"]) / values["MemTotal"]


def _post_json(port: int, path: str, body: object) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "X-API-Key": KEY})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as ex:
        return ex.code, json.loads(ex.read())


def _records_after(data_dir, ts: int) -> list[sqlite3.Row]:
    with contextlib.closing(sqlite3.connect(data_dir / "argus.db", timeout=5)) as connection:
        connection.row_factory = sqlite3.Row
        return connection.execute("SELECT * FROM records WHERE server_name = ? AND ts > ? ORDER BY ts",
                                  (HOST, ts)).fetchall()


def start_argus(tmp_path, engine_model_dir, alertmanager_port: int) -> tuple[Binary, int]:
    """`argus serve` with one worker, the tiny TFT, SQLite in ``tmp_path`` and the Alertmanager sink."""
    shutil.copytree(engine_model_dir, tmp_path / "models")
    port = free_port()
    env = {**os.environ, "ARGUS_DATA_DIR": str(tmp_path), "TACHYON_API_KEY": KEY, "ARGUS_ENGINE_POLL_S": "0.2",
           "ARGUS_MODEL_DIR": str(tmp_path / "models"), "ARGUS_RECORDS_RETENTION_DAYS": "36500",
           "ARGUS_STEP_SECONDS": str(STEP_S), "ARGUS_LOG_LEVEL": "WARNING",
           "ARGUS_SINK_ALERTMANAGER_URL": f"http://127.0.0.1:{alertmanager_port}",
           "ARGUS_SINK_ALERTMANAGER_BACKOFF_S": "0.2"}
    return Binary("argus serve", ["serve", "--port", str(port), "--workers", "1"], tmp_path,
                  command=[sys.executable, "-m", "argus"], env=env), port


@pytest.fixture
def stack(tmp_path, engine_model_dir):
    """Alertmanager, Argus and node_exporter running; Prometheus is started by the test (``start_prometheus``)."""
    started = []
    try:
        alertmanager, am_port = start_alertmanager(tmp_path)
        started.append(alertmanager)
        argus, argus_port = start_argus(tmp_path, engine_model_dir, am_port)
        started.append(argus)
        node, node_port = start_node_exporter(tmp_path)
        started.append(node)

        def start() -> tuple[int, tuple]:
            config = prometheus_config(node_port, argus_port, KEY, instance=f"{HOST}:9100")
            prometheus, prometheus_port = start_prometheus(tmp_path, config)
            started.append(prometheus)
            wait_for(lambda: prometheus.check_running() or urllib.request.urlopen(
                f"http://127.0.0.1:{prometheus_port}/-/ready", timeout=2).status == 200, 30, "Prometheus ready")
            return prometheus_port, (prometheus, argus)

        wait_for(lambda: alertmanager.check_running() or get_json(f"http://127.0.0.1:{am_port}/api/v2/status"),
                 30, "Alertmanager up")
        wait_for(lambda: node.check_running() or urllib.request.urlopen(
            f"http://127.0.0.1:{node_port}/metrics", timeout=2).status == 200, 30, "node_exporter up")
        wait_for(lambda: argus.check_running() or _status(argus_port)["engine"]["running"]
                 and _status(argus_port)["model_loaded"], 60, "argus serve with its model", logs=(argus,))
        yield tmp_path, argus, argus_port, am_port, start
    finally:
        for process in reversed(started):
            process.stop(timeout_s=30)


def _status(port: int) -> dict:
    return get_json(f"http://127.0.0.1:{port}/status")


def test_node_exporter_through_prometheus_into_argus_and_out_to_prometheus_and_alertmanager(stack):
    data_dir, argus, argus_port, am_port, start_prometheus_now = stack

    # History for the host before Prometheus starts, ending just before now: the tiny TFT needs
    # 12 steps, and a full disk and memory make the host critical on the next tick.
    last_seeded = int(time.time()) // STEP_S * STEP_S - STEP_S
    seed = [wire_record(HOST, 0, mem_used_pct=97.0, disk_usage_pct=99.5, swap_used_pct=80.0,
                        timestamp=datetime.fromtimestamp(last_seeded - STEP_S * k, UTC).replace(tzinfo=None).isoformat())
            for k in range(SEED_STEPS)]
    code, body = _post_json(argus_port, "/feed/data", {"records": seed})
    assert code == 200, body

    # (3) The engine raises the alert, the sink posts it, Alertmanager shows it (`/api/v2/alerts`).
    query = urllib.parse.urlencode({"filter": f'server="{HOST}"'})
    alerts = wait_for(lambda: get_json(f"http://127.0.0.1:{am_port}/api/v2/alerts?{query}"), 30,
                      "the Argus alert in Alertmanager",
                      logs=(argus,))
    labels = alerts[0]["labels"]
    assert labels["alertname"] == "ArgusRisk" and labels["server"] == HOST
    assert labels["level"] in ("warning", "critical") and labels["severity"] == labels["level"]
    assert alerts[0]["status"]["state"] == "active" and int(alerts[0]["annotations"]["risk_score"]) >= 60

    used_pct_seen = [_meminfo_used_pct()]  # /proc/meminfo while node_exporter runs: the records' range
    prometheus_port, logs = start_prometheus_now()

    # (1) node_exporter's samples, remote-written every second, become 10-second records of the host.
    def closed_records() -> list[sqlite3.Row]:
        used_pct_seen.append(_meminfo_used_pct())
        return _records_after(data_dir, last_seeded)

    wait_for(lambda: len(closed_records()) >= 2, 45, f"two records of {HOST} from remote_write",
             logs=logs)
    records = _records_after(data_dir, last_seeded)
    low, high = min(used_pct_seen), max(used_pct_seen)
    for record in records:
        assert record["ts"] % STEP_S == 0 and record["ts"] <= time.time() + 1
        cpu = [record[f"cpu_{mode}_pct"] for mode in ("user", "sys", "iowait", "idle")]
        assert all(0.0 <= value <= 100.0 for value in cpu), dict(record)
        assert 90.0 <= sum(cpu) <= 100.0 + 1e-6, dict(record)  # the rest is steal
        assert low - 3.0 <= record["mem_used_pct"] <= high + 3.0, (dict(record), low, high)
        assert 0.0 <= record["disk_usage_pct"] <= 100.0 and record["load_average"] >= 0.0
        assert record["java_cpu_pct"] is None and record["front_close_wait"] is None  # missing, never invented

    # (2) Prometheus scrapes Argus's /metrics (with the key) and PromQL finds the host's risk.
    risk = wait_for(lambda: promql(prometheus_port, f'argus_risk_score{{server="{HOST}"}}'), 30,
                    "argus_risk_score for the host in Prometheus",
                    logs=logs)
    assert risk[0]["metric"]["job"] == "argus" and 0.0 <= float(risk[0]["value"][1]) <= 100.0  # NaN fails too
    ingested = promql(prometheus_port, 'sum(argus_ingested_samples_total{source="remote_write"})')
    assert ingested and float(ingested[0]["value"][1]) > 0
    assert promql(prometheus_port, 'up{job="argus"}')[0]["value"][1] == "1"
    sent = promql(prometheus_port, 'argus_alert_sink_deliveries_total{sink="alertmanager",outcome="sent"}')
    assert sent and float(sent[0]["value"][1]) >= 1
