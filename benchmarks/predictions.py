"""Tick duration and GET /predictions/current latency for 45 and 1,000 servers.

    .venv/bin/python benchmarks/predictions.py [--servers 45 1000] [--requests 200] [--json out.json]

For each fleet size: seeds an SQLite database with 24 hours of synthetic 5-minute history per
server, times full engine ticks in-process (forecast with the served model, risk, alerts, render,
record), then starts `argus serve` (gunicorn, 1 worker) and measures GET /predictions/current on
loopback with keep-alive. Uses the model in ARGUS_MODEL_DIR (default ./models, the shipped one).
Target: p50 under 5 ms at 1,000 servers through gunicorn. GETs are measured as clients normally
send them (Accept-Encoding: gzip) and without compression.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

KEY = "bench-key-0123456789abcdef"
HISTORY_STEPS = 288
START = 1_736_899_200  # 2025-01-15T00:00:00Z


def seed(data_dir: Path, servers: int) -> None:
    """Write 24 h of daily-seasonal synthetic records for ``servers`` servers."""
    from argus.adapters.sql.database import create_db_engine, migrate
    from argus.adapters.sql.store import SqlMetricsStore
    from argus.domain.metrics import FIELD_INDEX, METRIC_FIELDS, Record, utc_from_epoch

    engine = create_db_engine(f"sqlite:///{data_dir / 'argus.db'}")
    migrate(engine)
    store = SqlMetricsStore(engine)
    rng = np.random.default_rng(0)
    prefixes = ("ppdb", "ppweb", "ppml", "ppetl", "ppapi", "pprisk", "ppcon")
    t = np.arange(HISTORY_STEPS)
    for s in range(servers):
        daily = np.sin(2 * np.pi * t / 288 + s)
        cpu = np.clip(35 + 20 * daily + rng.normal(0, 4, HISTORY_STEPS), 0, 100)
        values = np.zeros((HISTORY_STEPS, len(METRIC_FIELDS)))
        values[:, FIELD_INDEX["cpu_user_pct"]] = cpu * 0.8
        values[:, FIELD_INDEX["cpu_sys_pct"]] = cpu * 0.2
        values[:, FIELD_INDEX["cpu_idle_pct"]] = 100 - cpu
        mem = 55 + 10 * daily + 0.02 * t * (s % 5) + rng.normal(0, 1, HISTORY_STEPS)
        values[:, FIELD_INDEX["mem_used_pct"]] = np.clip(mem, 0, 100)
        values[:, FIELD_INDEX["disk_usage_pct"]] = 40 + (s % 40)
        values[:, FIELD_INDEX["net_in_mb_s"]] = 5 + 3 * np.abs(daily)
        values[:, FIELD_INDEX["net_out_mb_s"]] = 3 + 2 * np.abs(daily)
        values[:, FIELD_INDEX["load_average"]] = cpu / 20
        values[:, FIELD_INDEX["uptime_days"]] = 30
        name = f"{prefixes[s % len(prefixes)]}{s:04d}"
        store.write_batch([
            Record(utc_from_epoch(START + 300 * i), name, "healthy", tuple(float(v) for v in values[i]))
            for i in range(HISTORY_STEPS)
        ])
    engine.dispose()


def started_engine(data_dir: Path, model_dir: Path, **env: str):
    """The container's engine on ``data_dir`` (as ``seed`` left it) with the model in ``model_dir``, started
    (windows rebuilt); returns ``(container, engine)``. ``env``: more ``ARGUS_*`` settings."""
    from dependency_injector import providers

    from argus.entrypoints.container import Container
    from argus.entrypoints.settings import Settings

    settings = Settings.from_env({"ARGUS_DATA_DIR": str(data_dir), "TACHYON_API_KEY": KEY,
                                  "ARGUS_MODEL_DIR": str(model_dir),
                                  "ARGUS_RECORDS_RETENTION_DAYS": "36500", **env})  # the records are dated 2025
    container = Container()
    container.settings.override(providers.Object(settings))
    engine = container.engine()
    if engine.predictor is None:
        raise SystemExit(f"no model could be loaded from {model_dir}")
    engine.start()
    return container, engine


def bench_ticks(data_dir: Path, model_dir: Path, repeats: int) -> dict:
    container, engine = started_engine(data_dir, model_dir)
    warm = {}
    forecaster = engine.predictor.forecaster
    if hasattr(forecaster, "past_budget_share"):
        # the blend: one unbudgeted tick fills its cache of past-origin TFT forecasts (a restart spreads this
        # over several ticks); the timed ticks are then the steady state
        share, forecaster.past_budget_share = forecaster.past_budget_share, None
        started = time.perf_counter()
        engine.tick()
        warm = {"cache_fill_tick_s": round(time.perf_counter() - started, 3)}
        forecaster.past_budget_share = share
    durations, forecast_s = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        result = engine.tick()
        durations.append(time.perf_counter() - started)
        forecast_s.append(result.duration_s)
    body = container.store().read_published("predictions").body
    container.shutdown_resources()
    return {"tick_s_median": round(statistics.median(durations), 3),
            "forecast_and_score_s_median": round(statistics.median(forecast_s), 3),
            "snapshot_bytes": len(body), "model": result.model_name, "servers_scored": len(result.assessments),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), **warm}


def bench_gets(data_dir: Path, model_dir: Path, requests: int) -> dict:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "ARGUS_DATA_DIR": str(data_dir), "TACHYON_API_KEY": KEY, "ARGUS_LOG_LEVEL": "WARNING",
           "ARGUS_MODEL_DIR": str(model_dir), "ARGUS_RATE_LIMITS": "predictions=1000000/minute",
           "ARGUS_RECORDS_RETENTION_DAYS": "36500"}  # the records are dated 2025
    server = subprocess.Popen([sys.executable, "-m", "argus", "serve", "--port", str(port), "--workers", "1"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        connection = _connect(port)
        out = {}
        for label, headers in (("get", {"X-API-Key": KEY, "Accept-Encoding": "gzip"}),
                               ("get_uncompressed", {"X-API-Key": KEY})):
            latencies, size = [], 0
            for _ in range(requests):
                started = time.perf_counter()
                connection.request("GET", "/predictions/current", headers=headers)
                response = connection.getresponse()
                size = len(response.read())
                latencies.append(time.perf_counter() - started)
                assert response.status == 200, response.status
            latencies.sort()
            out.update({f"{label}_p50_ms": round(1000 * statistics.median(latencies), 2),
                        f"{label}_p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 2),
                        f"{label}_bytes": size})
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    return out


def _connect(port: int, timeout_s: float = 120.0) -> http.client.HTTPConnection:
    """Wait until the served snapshot holds predictions, then return a keep-alive connection."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", "/predictions/current", headers={"X-API-Key": KEY})
            response = connection.getresponse()
            if response.status == 200 and json.loads(response.read()).get("predictions"):
                return connection
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("no predictions were served in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, nargs="+", default=[45, 1000])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--ticks", type=int, default=3)
    parser.add_argument("--model-dir", type=Path, default=Path(os.environ.get("ARGUS_MODEL_DIR", "models")))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = []
    for servers in args.servers:
        with tempfile.TemporaryDirectory(prefix="argus-bench-") as tmp:
            data_dir = Path(tmp)
            seed(data_dir, servers)
            result = {"servers": servers, **bench_ticks(data_dir, args.model_dir.resolve(), args.ticks),
                      **bench_gets(data_dir, args.model_dir.resolve(), args.requests)}
            results.append(result)
            print(json.dumps(result), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"measured_at": datetime.now(UTC).isoformat(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
