"""Ingestion throughput and latency through the full HTTP path, with durable commits.

    .venv/bin/python benchmarks/ingest.py [--requests 40] [--json out.json]

Measures POST /feed/data (a) in-process through the Falcon app and (b) through `argus serve`
(gunicorn, 1 worker, plus the engine following the writes) on loopback, for 45- and 1,000-record
batches, with 45 and with 1,000 servers already tracked. SQLite in WAL mode, synchronous=FULL: every
200 is on disk. Targets (2-core machine): >= 10,000 records/s per worker for 1,000-record batches
and p99 < 50 ms for a 45-record batch, both with 1,000 servers tracked.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

KEY = "bench-key-0123456789abcdef"
T0 = datetime(2025, 1, 1, tzinfo=UTC)
TEMPLATE = {
    "status": "healthy", "cpu_user_pct": 25.3, "cpu_sys_pct": 8.2, "cpu_iowait_pct": 2.1, "cpu_idle_pct": 64.4,
    "java_cpu_pct": 15.5, "mem_used_pct": 72.1, "swap_used_pct": 5.2, "disk_usage_pct": 45.8, "net_in_mb_s": 12.5,
    "net_out_mb_s": 8.3, "back_close_wait": 5, "front_close_wait": 3, "load_average": 2.4, "uptime_days": 45,
}


def payloads(servers: int, batch: int, count: int, first_step: int) -> list[bytes]:
    """``count`` request bodies of ``batch`` records cycling over ``servers`` servers, time moving forward."""
    bodies, i = [], 0
    for _ in range(count):
        records = []
        for _ in range(batch):
            step, server = first_step + i // servers, i % servers
            stamp = (T0 + timedelta(minutes=5 * step)).isoformat(timespec="seconds").replace("+00:00", "")
            records.append({"timestamp": stamp, "server_name": f"srv{server:05d}", **TEMPLATE})
            i += 1
        bodies.append(orjson.dumps({"records": records}))
    return bodies


def summarize(name: str, batch: int, latencies: list[float]) -> dict:
    latencies = sorted(latencies)
    p99 = latencies[min(len(latencies) - 1, int(round(0.99 * (len(latencies) - 1))))]
    return {
        "case": name, "batch": batch, "requests": len(latencies),
        "records_per_s": round(batch * len(latencies) / sum(latencies)),
        "p50_ms": round(1000 * statistics.median(latencies), 1), "p99_ms": round(1000 * p99, 1),
    }


def bench_in_process(data_dir: Path, servers: int, batch: int, requests: int, first_step: int) -> dict:
    from dependency_injector import providers
    from falcon import testing

    from argus.entrypoints.container import Container
    from argus.entrypoints.settings import Settings

    settings = Settings.from_env({"ARGUS_DATA_DIR": str(data_dir), "TACHYON_API_KEY": KEY,
                                  "ARGUS_RATE_LIMITS": "feed=1000000/minute", "ARGUS_RECORDS_RETENTION_DAYS": "36500"})
    container = Container()
    container.settings.override(providers.Object(settings))
    client = testing.TestClient(container.app())
    headers = {"X-API-Key": KEY, "Content-Type": "application/json"}
    latencies = []
    for body in payloads(servers, batch, requests, first_step):
        start = time.perf_counter()
        result = client.simulate_post("/feed/data", body=body, headers=headers)
        latencies.append(time.perf_counter() - start)
        assert result.status_code == 200, result.text
    container.shutdown_resources()
    return summarize(f"in-process, {servers} servers tracked", batch, latencies)


def seed(data_dir: Path, servers: int) -> None:
    """Track ``servers`` servers with 12 records each (one hour) before measuring."""
    bench_in_process(data_dir, servers, servers, 12, first_step=0)


def bench_gunicorn(data_dir: Path, servers: int, batch: int, requests: int, first_step: int) -> dict:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "ARGUS_DATA_DIR": str(data_dir), "TACHYON_API_KEY": KEY, "ARGUS_LOG_LEVEL": "WARNING",
           "ARGUS_RATE_LIMITS": "feed=1000000/minute", "ARGUS_RECORDS_RETENTION_DAYS": "36500"}  # records of 2025
    server = subprocess.Popen([sys.executable, "-m", "argus", "serve", "--port", str(port), "--workers", "1"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(port)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"X-API-Key": KEY, "Content-Type": "application/json"}
        latencies = []
        for body in payloads(servers, batch, requests, first_step):
            start = time.perf_counter()
            connection.request("POST", "/feed/data", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            latencies.append(time.perf_counter() - start)
            assert response.status == 200, response.status
        connection.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    return summarize(f"gunicorn, {servers} servers tracked", batch, latencies)


def _wait_ready(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("argus serve did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=40, help="requests per case")
    parser.add_argument("--json", type=Path, help="write results here")
    args = parser.parse_args()
    results = []
    for servers in (45, 1000):
        with tempfile.TemporaryDirectory(prefix="argus-bench-") as tmp:
            data_dir = Path(tmp)
            seed(data_dir, servers)
            step = 100
            for batch in (45, 1000):
                for runner in (bench_in_process, bench_gunicorn):
                    result = runner(data_dir, servers, batch, args.requests, first_step=step)
                    step += (batch * args.requests) // servers + 2
                    results.append(result)
                    print(f"{result['case']:<34} batch {batch:>5}: {result['records_per_s']:>8} records/s  "
                          f"p50 {result['p50_ms']:>6} ms  p99 {result['p99_ms']:>6} ms", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"measured_at": datetime.now(UTC).isoformat(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
