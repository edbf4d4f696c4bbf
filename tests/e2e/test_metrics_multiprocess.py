"""End to end: `argus serve` with 2 gunicorn workers and the engine; /metrics counts each process once."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from argus.testing import wire_record

pytestmark = pytest.mark.slow
KEY = "e2e-key-abcdefghijklmnop"
STALE_COUNTS = """
from argus.adapters import telemetry
telemetry.count_ingested("feed", records=1000)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as ex:
        return ex.code, ex.read()


def _feed(port: int, records: list[dict]) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/feed/data", data=orjson.dumps({"records": records}),
                                     headers={"Content-Type": "application/json", "X-API-Key": KEY})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def _scrape(port: int) -> dict[tuple[str, frozenset], float]:
    status, body = _get(port, "/metrics", {"Authorization": f"Bearer {KEY}"})
    assert status == 200, body
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(body.decode()) for s in f.samples}


def _wait_for(predicate, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if value := predicate():
                return value
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def _health_served_by_pid(metrics_dir) -> dict[int, float]:
    """Each process's own count of GET /health answers, read from its counter file alone."""
    counts = {}
    for path in metrics_dir.glob("counter_*.db"):
        alone = metrics_dir.parent / f"alone-{path.name}"
        alone.mkdir(exist_ok=True)
        shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, str(alone))
        served = sum(s.value for f in registry.collect() for s in f.samples
                     if s.name == "argus_http_responses_total" and s.labels.get("route") == "/health")
        shutil.rmtree(alone)
        counts[int(path.stem.rsplit("_", 1)[1])] = served
    return counts


def test_every_worker_and_the_engine_are_counted_once(tmp_path, engine_model_dir):
    shutil.copytree(engine_model_dir, tmp_path / "models")
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    subprocess.run([sys.executable, "-c", STALE_COUNTS], env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
                   check=True, timeout=60)  # a previous run's counts: `argus serve` must start from zero
    port = _free_port()
    env = {**os.environ, "ARGUS_DATA_DIR": str(tmp_path), "TACHYON_API_KEY": KEY, "ARGUS_ENGINE_POLL_S": "0.2",
           "ARGUS_MODEL_DIR": str(tmp_path / "models"), "ARGUS_RECORDS_RETENTION_DAYS": "36500",
           "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115
    served = subprocess.Popen([sys.executable, "-m", "argus", "serve", "--port", str(port), "--workers", "2"],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: _get(port, "/health")[0] == 200)
        servers, steps = [f"ppdb{i:03d}" for i in range(8)], 14
        with ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(lambda step: _feed(port, [wire_record(s, step) for s in servers]), range(steps)))
        assert codes == [200] * steps
        health_sent = 1  # the wait for start-up
        for _ in range(30):  # until both workers have answered some (the kernel picks who accepts)
            with ThreadPoolExecutor(8) as pool:
                assert set(pool.map(lambda _: _get(port, "/health")[0], range(16))) == {200}
            health_sent += 16
            if sum(1 for n in _health_served_by_pid(metrics_dir).values() if n > 0) >= 2:
                break
        else:
            pytest.fail("one worker answered every request")
        # The engine's tick is counted in its own process and summed with the workers'.
        _wait_for(lambda: _scrape(port).get(("argus_tick_duration_seconds_count", frozenset()), 0) >= 1)
        records = ("argus_ingested_records_total", frozenset({("source", "feed")}))
        health = ("argus_http_responses_total", frozenset({("route", "/health"), ("code", "200")}))
        for _ in range(6):  # whichever worker answers, the same sums
            samples = _scrape(port)
            assert samples[records] == len(servers) * steps
            assert samples[health] == health_sent
        assert _wait_for(lambda: ("argus_risk_score", frozenset({("server", "ppdb000"), ("profile", "Database")}))
                         in _scrape(port))

        worker = next(pid for pid, n in _health_served_by_pid(metrics_dir).items() if n > 0)
        os.kill(worker, signal.SIGTERM)  # gunicorn starts another; the dead one's counts stay in the sums
        _wait_for(lambda: not _pid_alive(worker), timeout_s=30)
        _wait_for(lambda: _get(port, "/health")[0] == 200)
        samples = _scrape(port)
        assert samples[records] == len(servers) * steps and samples[health] == health_sent + 1
    finally:
        served.send_signal(signal.SIGTERM)
        try:
            assert served.wait(30) == 0
        finally:
            if served.poll() is None:
                served.kill()
            log.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
