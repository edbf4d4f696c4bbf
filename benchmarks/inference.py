"""Benchmark: one fleet forecast for 45 / 1,000 / 5,000 servers, peak memory, training time per epoch.

    .venv/bin/python benchmarks/inference.py [--model-dir models] [--device cpu] [--sizes 45,1000,5000]
        [--train-batches 20] [--json OUT]

Uses the CURRENT model of --model-dir on synthetic 5-minute windows (one day of history each).
Target (issue 3): 1,000 servers in under 5 s on the 2-core CPU machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from argus.domain.metrics import METRIC_FIELDS, STATUS_CODE, MetricsWindow  # noqa: E402

STEP = 300
END = 1_736_899_200


def rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_fleet(n: int, steps: int, seed: int = 0) -> list[MetricsWindow]:
    """Return ``n`` windows of ``steps`` records with daily cycles and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    ts = END - (steps - 1 - t).astype(np.int64) * STEP
    col = {name: i for i, name in enumerate(METRIC_FIELDS)}
    status = np.full(steps, STATUS_CODE["healthy"], dtype=np.int8)
    windows = []
    for i in range(n):
        daily = np.sin(2 * np.pi * t / 288 + rng.uniform(0, 6))
        cpu = np.clip(rng.uniform(5, 60) + 15 * daily + rng.normal(0, 3, steps), 0, 100)
        v = np.zeros((steps, len(METRIC_FIELDS)), dtype=np.float32)
        v[:, col["cpu_user_pct"]], v[:, col["cpu_idle_pct"]] = cpu, 100 - cpu
        v[:, col["mem_used_pct"]] = np.clip(rng.uniform(20, 80) + 3 * daily, 0, 100)
        v[:, col["disk_usage_pct"]], v[:, col["load_average"]] = 50, cpu / 25
        windows.append(MetricsWindow.from_arrays(f"srv{i:05d}", 2880, ts, v, status))
    return windows


def bench_inference(forecaster, sizes: list[int], steps: int, repeats: int) -> list[dict]:
    out = []
    for n in sizes:
        windows = synthetic_fleet(n, steps)
        forecaster.forecast(windows[: min(n, 8)], {})  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            result = forecaster.forecast(windows, {})
            times.append(time.perf_counter() - start)
        assert len(result) == n
        out.append({"servers": n, "seconds_best": round(min(times), 3), "seconds_all": [round(x, 3) for x in times],
                    "peak_rss_mb_so_far": round(rss_peak_mb())})
        print(f"{n:>6} servers: {min(times):7.3f} s  (peak RSS {rss_peak_mb():.0f} MB)", flush=True)
    return out


def bench_training(batches: int, accelerator: str, batch_size: int = 64) -> dict:
    """Time ``batches`` real training steps (full sizes) on a synthetic fleet; extrapolate to an epoch."""
    import tempfile

    from argus.adapters.tft.data import ServerSeries
    from argus.adapters.tft.training import TrainingConfig, train_model

    steps = 4 * 288
    fleet = {w.server_name: ServerSeries(w.server_name, np.asarray(w.timestamps), np.asarray(w.values),
                                         np.asarray(w.statuses)) for w in synthetic_fleet(20, steps)}
    config = TrainingConfig(epochs=1, max_samples_per_epoch=batches * batch_size, batch_size=batch_size,
                            val_days=1.0, val_samples=256, accelerator=accelerator)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = train_model(fleet, tmp, config, output_name="tft_bench")
        total = time.perf_counter() - start
    per_epoch = result.manifest["training"]["seconds_per_epoch"]
    return {"batches": batches, "batch_size": batch_size, "device": result.manifest["training"]["device"],
            "train_seconds": per_epoch, "seconds_per_batch": round(per_epoch / batches, 3),
            "seconds_per_200_batch_epoch": round(per_epoch / batches * 200, 1),
            "total_with_val_and_save": round(total, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=os.environ.get("ARGUS_MODEL_DIR", "models"))
    parser.add_argument("--model", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sizes", default="45,1000,5000")
    parser.add_argument("--history-steps", type=int, default=288)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=128)
    parser.add_argument("--train-batches", type=int, default=20, help="0 skips the training benchmark")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from argus.adapters.tft.forecaster import TftForecaster
    from argus.adapters.tft.registry import DirectoryModelRegistry

    start = time.perf_counter()
    forecaster = TftForecaster.load(DirectoryModelRegistry(args.model_dir), args.model, device=args.device,
                                    threads=args.threads, chunk_size=args.chunk_size)
    report = {"model": forecaster.name, "device": forecaster.device, "threads": args.threads,
              "chunk_size": args.chunk_size, "load_seconds_incl_imports": round(time.perf_counter() - start, 2),
              "rss_after_load_mb": round(rss_peak_mb())}
    print(json.dumps(report), flush=True)
    report["inference"] = bench_inference(forecaster, [int(s) for s in args.sizes.split(",")],
                                          args.history_steps, args.repeats)
    if args.train_batches:
        accel = "gpu" if args.device.startswith("cuda") else "cpu"
        report["training"] = bench_training(args.train_batches, accel)
        print(json.dumps(report["training"]), flush=True)
    report["peak_rss_mb"] = round(rss_peak_mb())
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
