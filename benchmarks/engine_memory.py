"""Engine memory over many ticks, in-process: does the engine's resident set level off?

    .venv/bin/python benchmarks/engine_memory.py [--servers 150] [--ticks 80] [--steps-per-tick 14] [--json out.json]

Builds the real engine through the container (SQLite in a temporary folder, the shipped model,
``--window`` steps per window), seeds one day of records per server, then before each tick writes
``--steps-per-tick`` new 5-minute steps for every server (14: the pace of ``benchmarks/load.py``,
a step every 5 s and a tick about every 70 s) and runs one tick, trimming as the engine process does.
After each tick it records the resident set, malloc's in-use bytes (``memory_report``) and the
size of the blend's past-origin cache. ``--explain N`` asks the engine for N explanations of random
servers after each tick, as the soak's clients do (about 35 per tick at 30 a minute). ``--trace`` adds
tracemalloc and prints the allocations that grew most between a third of the way and the end (slow: ~3x the tick time).

Reports the per-tick series and the slope in MB per tick over the last half of the ticks (target:
about 0; the first ticks fill bounded structures: anomaly bands, the past-origin cache, window slack).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import predictions  # noqa: E402 - the seeding of benchmarks/predictions.py

REPORT = re.compile(r"rss ([\d,]+) MB, malloc in use ([\d,]+) MB")


def _feed(store, names: list[str], step: int, rng: np.random.Generator) -> None:
    from argus.domain.metrics import FIELD_INDEX, METRIC_FIELDS, Record, utc_from_epoch

    records = []
    for s, name in enumerate(names):
        values = np.zeros(len(METRIC_FIELDS))
        cpu = 35 + 20 * np.sin(2 * np.pi * step / 288 + s) + rng.normal(0, 4)
        values[FIELD_INDEX["cpu_user_pct"]], values[FIELD_INDEX["cpu_sys_pct"]] = cpu * 0.8, cpu * 0.2
        values[FIELD_INDEX["cpu_idle_pct"]] = 100 - cpu
        values[FIELD_INDEX["mem_used_pct"]] = 55 + rng.normal(0, 1)
        values[FIELD_INDEX["disk_usage_pct"]] = 40 + s % 40
        values[FIELD_INDEX["load_average"]], values[FIELD_INDEX["uptime_days"]] = cpu / 20, 30
        records.append(Record(utc_from_epoch(predictions.START + 300 * step), name, "healthy",
                              tuple(float(v) for v in values)))
    store.write_batch(records)


def _slope(values: list[float]) -> float:
    """Least-squares slope per tick."""
    x = list(range(len(values)))
    x_mean, y_mean = statistics.fmean(x), statistics.fmean(values)
    return sum((a - x_mean) * (b - y_mean) for a, b in zip(x, values, strict=True)) / sum((a - x_mean) ** 2 for a in x)


def run(args: argparse.Namespace) -> dict:
    import gc

    from argus.adapters.sql.database import create_db_engine
    from argus.adapters.sql.store import SqlMetricsStore
    from argus.entrypoints.malloc import memory_report, release_free_memory

    data_dir = Path(tempfile.mkdtemp(prefix="argus-engine-memory-"))
    predictions.seed(data_dir, args.servers)
    container, engine = predictions.started_engine(data_dir, args.model_dir.resolve(),
                                                   ARGUS_ROLLING_WINDOW_SIZE=str(args.window))
    store = SqlMetricsStore(create_db_engine(f"sqlite:///{data_dir / 'argus.db'}"))
    names = sorted(w.server_name for w in engine.keeper.windows)
    forecaster = engine.predictor.forecaster
    explain = container.explain_service()
    rng, step, series, snapshots = np.random.default_rng(1), predictions.HISTORY_STEPS, [], {}
    if args.trace:
        tracemalloc.start(25)
    for tick in range(args.ticks):
        for _ in range(args.steps_per_tick):
            _feed(store, names, step, rng)
            step += 1
        engine.keeper.poll()
        started = time.perf_counter()
        engine.tick()
        for name in rng.choice(names, size=min(args.explain, len(names)), replace=False):
            explain.handle({"server_name": str(name)})
        gc.collect()
        release_free_memory()
        found = REPORT.search(memory_report() or "")
        if found is None:
            raise SystemExit("no /proc/self/statm or glibc mallinfo2 here: nothing to measure")
        past = sum(len(v) for v in getattr(forecaster, "_tft_past", {}).values())
        series.append({"tick": tick, "tick_s": round(time.perf_counter() - started, 2),
                       "rss_mb": float(found[1].replace(",", "")),
                       "malloc_in_use_mb": float(found[2].replace(",", "")), "past_origin_forecasts": past})
        print(json.dumps(series[-1]), flush=True)
        if args.trace and tick in (args.ticks // 3, args.ticks - 1):
            snapshots[tick] = tracemalloc.take_snapshot()
    container.shutdown_resources()
    half = series[len(series) // 2:]
    out = {"servers": args.servers, "ticks": args.ticks, "steps_per_tick": args.steps_per_tick, "window": args.window,
           "explanations_per_tick": args.explain,
           "rss_mb_first_last": [series[0]["rss_mb"], series[-1]["rss_mb"]],
           "last_half_rss_mb_per_tick": round(_slope([p["rss_mb"] for p in half]), 3),
           "last_half_malloc_in_use_mb_per_tick": round(_slope([p["malloc_in_use_mb"] for p in half]), 3),
           "series": series}
    if len(snapshots) == 2:
        first, last = (snapshots[k] for k in sorted(snapshots))
        out["grew_most"] = [{"mb": round(stat.size_diff / 2**20, 3), "blocks": stat.count_diff,
                             "where": stat.traceback.format()[-4:]}
                            for stat in last.compare_to(first, "traceback")[:8]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=150)
    parser.add_argument("--ticks", type=int, default=80)
    parser.add_argument("--steps-per-tick", type=int, default=14)
    parser.add_argument("--window", type=int, default=288, help="rolling window size in steps (full from the start)")
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument("--explain", type=int, default=0, help="explanations of random servers after each tick")
    parser.add_argument("--trace", action="store_true", help="tracemalloc: where memory grew (slow)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(args)
    summary = {k: v for k, v in result.items() if k != "series"}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
