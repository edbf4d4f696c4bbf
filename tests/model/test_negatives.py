"""Look-alikes that are not incidents stay below warning through the real pipeline (blend → risk → alerts).

Each negative of the incident bench (docs/bench.md) is put on a calm synthetic server and replayed,
tick by tick, through the Predictor the engine runs, with the tiny TFT served as the blend.
"""

from __future__ import annotations

import numpy as np
import pytest

from argus.adapters.blend import BlendForecaster
from argus.adapters.tft.forecaster import TftForecaster
from argus.adapters.tft.registry import DirectoryModelRegistry
from argus.domain.alerts import AlertLevel
from argus.domain.backtest import replay
from argus.domain.metrics import METRIC_FIELDS, STATUS_VALUES, Record, utc_from_epoch
from argus.domain.profiles import ProfileResolver
from argus.domain.ticks import Predictor
from tests.model.conftest import START_EPOCH_S, STEP, synthetic_values

pytestmark = pytest.mark.slow
COL = {name: i for i, name in enumerate(METRIC_FIELDS)}
DAY = 288


def _set_cpu(values: np.ndarray, rows: slice, busy: float) -> None:
    values[rows, COL["cpu_user_pct"]] = busy * 0.8
    values[rows, COL["cpu_sys_pct"]] = busy * 0.15
    values[rows, COL["cpu_iowait_pct"]] = busy * 0.05
    values[rows, COL["cpu_idle_pct"]] = 100 - busy


def _negatives(days: int = 5) -> dict[str, tuple[np.ndarray, list[str]]]:
    """One calm server per negative kind; the look-alike sits in day 4."""
    n = days * DAY
    out = {}
    for k, kind in enumerate(("burst_return", "restart_drop", "maintenance", "stable_high")):
        values = synthetic_values(n, seed=10 + k, level=25.0, mem=55.0)
        status = ["healthy"] * n
        at = 3 * DAY + 150
        if kind == "burst_return":  # CPU to 85 % for 20 minutes, then back
            _set_cpu(values, slice(at, at + 4), 85.0)
        elif kind == "restart_drop":  # memory drops 30 points at a restart and climbs back over 6 hours
            values[at : at + 72, COL["mem_used_pct"]] -= np.linspace(30, 0, 72)
        elif kind == "maintenance":  # two hours of maintenance records with CPU pegged
            _set_cpu(values, slice(at, at + 24), 100.0)
            status[at : at + 24] = ["maintenance"] * 24
        else:  # memory sits at 88 % (limit 95 % on a generic server) for two days
            values[2 * DAY :, COL["mem_used_pct"]] = 88.0 + 0.3 * np.sin(np.arange(n - 2 * DAY))
        out[f"neg-{kind}"] = (values, status)
    leak = synthetic_values(n, seed=20, level=25.0, mem=55.0)  # the control: a real leak, crossing 95 % in day 5
    leak[3 * DAY :, COL["mem_used_pct"]] = np.minimum(100.0, 55.0 + np.arange(n - 3 * DAY) * 0.12)
    out["pos-memory_leak"] = (leak, ["healthy"] * n)
    return out


def test_the_benchs_negatives_never_raise_a_warning(tiny_model_dir):
    forecaster = BlendForecaster(TftForecaster.load(DirectoryModelRegistry(tiny_model_dir), device="cpu"))
    servers = _negatives()
    records = sorted(
        (Record(utc_from_epoch(START_EPOCH_S + i * STEP), name, status[i], tuple(float(v) for v in values[i]))
         for name, (values, status) in servers.items() for i in range(len(values))),
        key=lambda r: (r.epoch_s, r.server_name),
    )
    assert {r.status for r in records} <= set(STATUS_VALUES)
    run = replay(records, Predictor(forecaster, ProfileResolver()), capacity=2880, tick_steps=6,
                 start_epoch_s=START_EPOCH_S + 2 * DAY * STEP)
    assert run.ticks > 100
    raised = [(r.server_name, r.at) for r in run.raises if r.level >= AlertLevel.WARNING]
    assert [name for name, _ in raised if name.startswith("neg-")] == []
    crossing = START_EPOCH_S + (3 * DAY + int(np.ceil(40 / 0.12))) * STEP  # the control's memory reaches 95 %
    assert any(name == "pos-memory_leak" and at < crossing for name, at in raised)  # the pipeline does warn
    assert len({s.server_name for s in run.samples}) == len(servers)
