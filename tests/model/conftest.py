"""Synthetic fleets and the tiny TFT (real training code, tiny sizes, seconds on CPU).

The session's tiny model is ``tiny_model_dir`` in tests/conftest.py (e2e tests copy it too). Other
test folders can train their own with ``from tests.model.conftest import build_tiny_model``
or by calling ``argus.adapters.tft.training.train_model`` with ``TINY_CONFIG`` on ``synthetic_records()``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from argus.domain.metrics import METRIC_FIELDS, STATUS_CODE, MetricsWindow, Record, utc_from_epoch

START_EPOCH_S = 1_736_899_200  # 2025-01-15T00:00:00Z
STEP = 300


def synthetic_values(n: int, seed: int, level: float = 30.0, mem: float = 60.0) -> np.ndarray:
    """Return (n, len(METRIC_FIELDS)) daily-seasonal metrics for one server."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    daily = np.sin(2 * np.pi * t / 288 + seed)
    cpu = np.clip(level + 15 * daily + rng.normal(0, 3, n), 0, 100)
    out = np.zeros((n, len(METRIC_FIELDS)), dtype=np.float32)
    col = {name: i for i, name in enumerate(METRIC_FIELDS)}
    out[:, col["cpu_user_pct"]] = cpu * 0.8
    out[:, col["cpu_sys_pct"]] = cpu * 0.15
    out[:, col["cpu_iowait_pct"]] = cpu * 0.05
    out[:, col["cpu_idle_pct"]] = 100 - cpu
    out[:, col["mem_used_pct"]] = np.clip(mem + 5 * daily + rng.normal(0, 1, n), 0, 100)
    out[:, col["swap_used_pct"]] = 2.0
    out[:, col["disk_usage_pct"]] = 40 + t / n
    out[:, col["net_in_mb_s"]] = np.abs(5 + 4 * daily)
    out[:, col["net_out_mb_s"]] = np.abs(3 + 2 * daily)
    out[:, col["load_average"]] = cpu / 25
    out[:, col["uptime_days"]] = 10
    return out


def synthetic_records(servers: int = 4, days: float = 3.0, seed: int = 0) -> list[Record]:
    """Return records of ``servers`` synthetic servers over ``days`` at 5-minute steps."""
    n = int(days * 288)
    records = []
    for s in range(servers):
        values = synthetic_values(n, seed + s, level=20 + 10 * s, mem=40 + 10 * s)
        name = f"ppweb{s:03d}" if s % 2 else f"ppdb{s:03d}"
        for i in range(n):
            records.append(Record(utc_from_epoch(START_EPOCH_S + i * STEP), name, "healthy", tuple(values[i])))
    return records


def window_of(name: str, values: np.ndarray, end_epoch_s: int = START_EPOCH_S + 3 * 86400,
              capacity: int = 2880) -> MetricsWindow:
    """Return a MetricsWindow whose last record is at ``end_epoch_s``."""
    n = len(values)
    ts = end_epoch_s - np.arange(n - 1, -1, -1, dtype=np.int64) * STEP
    status = np.full(n, STATUS_CODE["healthy"], dtype=np.int8)
    return MetricsWindow.from_arrays(name, capacity, ts, values.astype(np.float32), status)


def tiny_config(**overrides):
    from argus.adapters.tft.training import TrainingConfig

    base = dict(epochs=1, max_samples_per_epoch=16, batch_size=8, val_days=0.75, val_samples=16,
                hidden_size=4, attention_head_size=1, hidden_continuous_size=4, accelerator="cpu",
                max_encoder_steps=48, min_encoder_steps=12, horizon_steps=24)
    base.update(overrides)
    return TrainingConfig(**base)


def build_tiny_model(model_dir: Path, name: str = "tft_20250101_000000", **overrides):
    """Train the tiny model into ``model_dir`` with the real training code and mark it CURRENT."""
    from argus.adapters.tft.training import train_model

    def profile_for(server: str) -> str:
        return "database" if server.startswith("ppdb") else "web_api"

    return train_model(synthetic_records(), model_dir, tiny_config(**overrides), output_name=name,
                       profile_for=profile_for, activate=True)


@pytest.fixture(scope="session")
def tiny_forecaster(tiny_model_dir):
    from argus.adapters.tft.forecaster import TftForecaster
    from argus.adapters.tft.registry import DirectoryModelRegistry

    return TftForecaster.load(DirectoryModelRegistry(tiny_model_dir), device="cpu")
