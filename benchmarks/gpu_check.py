"""GPU check for a lent CUDA machine (finishes in a few minutes): CUDA training steps and fleet inference.

    .venv/bin/python benchmarks/gpu_check.py [--model-dir models] [--json gpu.json]

Runs (1) 30 training steps at full sizes (encoder 288, horizon 96, batch 64) with lightning's "gpu"
accelerator, (2) one fleet forecast for 1,000 and 5,000 servers on cuda (chunk 512) and on cpu for
comparison, and checks that cuda and cpu forecasts agree. Exits non-zero without CUDA.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from inference import bench_training, synthetic_fleet  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=os.environ.get("ARGUS_MODEL_DIR", "models"))
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    import numpy as np
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check", file=sys.stderr)
        return 2
    from argus.adapters.tft.forecaster import TftForecaster
    from argus.adapters.tft.registry import DirectoryModelRegistry

    report = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
    report["training_cuda"] = bench_training(30, "gpu")
    print(json.dumps(report), flush=True)
    registry = DirectoryModelRegistry(args.model_dir)
    cuda = TftForecaster.load(registry, device="cuda", chunk_size=512)
    cpu = TftForecaster.load(registry, device="cpu", chunk_size=128)
    report["inference"] = []
    for n in (1000, 5000):
        windows = synthetic_fleet(n, 288)
        cuda.forecast(windows[:16], {})
        torch.cuda.synchronize()
        start = time.perf_counter()
        on_gpu = cuda.forecast(windows, {})
        torch.cuda.synchronize()
        gpu_s = time.perf_counter() - start
        row = {"servers": n, "cuda_seconds": round(gpu_s, 3),
               "cuda_peak_mem_mb": round(torch.cuda.max_memory_allocated() / 2**20)}
        if n == 1000:
            start = time.perf_counter()
            on_cpu = cpu.forecast(windows, {})
            row["cpu_seconds"] = round(time.perf_counter() - start, 3)
            diff = max(float(np.abs(on_gpu[k].values["cpu_pct"] - on_cpu[k].values["cpu_pct"]).max())
                       for k in on_cpu)
            row["max_abs_diff_cpu_vs_cuda"] = round(diff, 5)
        report["inference"].append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
