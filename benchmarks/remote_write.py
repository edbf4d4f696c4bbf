"""Prometheus remote_write throughput: samples/s per worker for a 1,000-host node_exporter fleet.

    .venv/bin/python benchmarks/remote_write.py [--hosts 1000] [--scrapes 2] [--json out.json]

Builds what Prometheus' shards send for ``--hosts`` node_exporter targets (about 630 series each,
node_exporter 1.5's default collectors on a 4-CPU VM: ~50 of them feed Argus) scraped every 15 s,
cut into WriteRequests of 2,000 samples (a shard's ``max_samples_per_send``), snappy-compressed.
Then, in one thread (one web worker's share of a core), measures:

- decode: snappy + protobuf parsing only;
- extract: decode + picking node_exporter's series out (skipped by name before anything else is read);
- request: POST /api/v1/write through the Falcon app, committing every request's kept samples to
  SQLite (WAL, synchronous=FULL: every 2xx is on disk), as a web worker does.

Target: >= 200,000 samples/s per worker for ``request``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

KEY = "bench-key-0123456789abcdef"
HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
           "X-Prometheus-Remote-Write-Version": "0.1.0", "Authorization": f"Bearer {KEY}"}


def fleet_batches(hosts: int, scrapes: int, start_ms: int) -> list[bytes]:
    from argus.adapters.prometheus.sample_hosts import Host, shard_batches

    fleet = [Host(f"node{i:04d}.example.com:9100") for i in range(hosts)]
    return [body for k in range(scrapes) for body in shard_batches(fleet, start_ms + 15_000 * k)]


def rate(name: str, samples: int, seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    return {"case": name, "requests": len(seconds), "samples_per_s": round(samples / sum(seconds)),
            "p50_ms": round(1000 * statistics.median(ordered), 2),
            "p99_ms": round(1000 * ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))], 2)}


def measure(hosts: int, scrapes: int) -> list[dict]:
    from dependency_injector import providers
    from falcon import testing

    from argus.adapters.prometheus import node_exporter, wire
    from argus.entrypoints.container import Container
    from argus.entrypoints.settings import Settings

    start_ms = (int(time.time()) // 300 - 1) * 300_000
    bodies = fleet_batches(hosts, scrapes, start_ms)
    samples = sum(len(wire.decode(body, 1 << 26).timeseries) for body in bodies)
    print(f"{len(bodies)} requests, {samples} samples ({samples / hosts / scrapes:.0f} series per host), "
          f"{sum(map(len, bodies)) / len(bodies) / 1024:.1f} KiB per request", flush=True)
    results = []
    for name, work in (("decode", lambda b: wire.decode(b, 1 << 26)),
                       ("extract", lambda b: node_exporter.extract(wire.decode(b, 1 << 26), "instance",
                                                                   str.isascii, 0, 1 << 62))):
        seconds = []
        for body in bodies:
            began = time.perf_counter()
            work(body)
            seconds.append(time.perf_counter() - began)
        results.append(rate(name, samples, seconds))
    with tempfile.TemporaryDirectory(prefix="argus-rw-bench-") as tmp:
        container = Container()
        container.settings.override(providers.Object(Settings(
            api_key=KEY, data_dir=Path(tmp), database_url=f"sqlite:///{tmp}/argus.db", model_dir=Path(tmp) / "m",
            rate_limits="remote_write=1000000/minute")))
        client = testing.TestClient(container.app())
        seconds, stored = [], 0
        for body in bodies:
            began = time.perf_counter()
            result = client.simulate_post("/api/v1/write", body=body, headers=HEADERS)
            seconds.append(time.perf_counter() - began)
            if result.status_code != 200:
                raise RuntimeError(f"{result.status_code}: {result.text}")
            stored += result.json["samples_stored"]
        container.shutdown_resources()
    results.append({**rate("request", samples, seconds), "samples_stored": stored})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--scrapes", type=int, default=2, help="scrapes of the whole fleet, 15 s apart")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = measure(args.hosts, args.scrapes)
    for row in results:
        print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    request = next(r for r in results if r["case"] == "request")
    sys.exit(0 if request["samples_per_s"] >= 200_000 else 1)


if __name__ == "__main__":
    main()
