"""Synthetic incident scenarios injected onto real training windows (training only; numpy, no torch).

The real trace is mostly quiet, so the network rarely sees leaks, filling disks, runaways or clean cycles.
Each generator takes one window's series (encoder + future, float32 (L+H, 6), natural units, columns in
``TARGETS`` order), the index ``last`` of the last encoder step, a seeded ``np.random.Generator`` and the
epoch seconds of the last encoder step, and returns a modified copy: one change, visible the same way in
encoder and future, clipped to [0, 100] for percentages and >= 0 for load. Amounts are in percentage points
(pt); on load one pt is 1/50 of the window's level at ``last`` (at least 1), as in ``loop.augment``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np

from argus.adapters.tft.features import DAY_S, UPPER_BOUND, WindowSlice
from argus.domain.forecast import TARGETS
from argus.domain.metrics import STEP_SECONDS

ScenarioFn = Callable[[np.ndarray, int, np.random.Generator, int], np.ndarray]

CPU, MEM, SWAP, IOWAIT, DISK, LOAD = (TARGETS.index(t) for t in
                                      ("cpu_pct", "mem_pct", "swap_pct", "iowait_pct", "disk_pct", "load"))
_UPPER = np.array([UPPER_BOUND.get(t, np.inf) for t in TARGETS], dtype=np.float32)
TWO_HOURS = 24  # steps
_CYCLED = (CPU, MEM, LOAD)  # targets that daily and weekly cycles move


def _clip(series: np.ndarray) -> np.ndarray:
    return np.clip(series, 0.0, _UPPER[None, :]).astype(np.float32)


def _pt(series: np.ndarray, last: int, j: int, pts: float) -> float:
    """``pts`` percentage points in target ``j``'s units (load: 50 pt = its level at ``last``, at least 1)."""
    return pts if np.isfinite(_UPPER[j]) else pts * max(float(series[last, j]), 1.0) / 50.0


def _since(n: int, start: int) -> np.ndarray:
    """Steps elapsed since ``start`` (0 before it), float32 (n,)."""
    return np.maximum(np.arange(n, dtype=np.float32) - start, 0.0)


def _early_onset(last: int, rng: np.random.Generator) -> int:
    """An onset anywhere from the start of the encoder to 2 h before its last step."""
    return int(rng.integers(0, max(last - TWO_HOURS, 0) + 1))


def _late_onset(n: int, last: int, rng: np.random.Generator) -> int:
    """An onset inside the encoder's last 2 h or in the first half of the future."""
    return int(rng.integers(max(last - TWO_HOURS + 1, 1), max(last + (n - 1 - last) // 2, last) + 1))


def _epochs(n: int, last: int, last_epoch_s: int) -> np.ndarray:
    return last_epoch_s + (np.arange(n, dtype=np.int64) - last) * STEP_SECONDS


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _linear_rise(series: np.ndarray, last: int, rng: np.random.Generator, j: int, lo: float, hi: float) -> np.ndarray:
    out = series.copy()
    out[:, j] += _log_uniform(rng, lo, hi) * _since(len(out), _early_onset(last, rng))
    return _clip(out)


def mem_leak(series: np.ndarray, last: int, rng: np.random.Generator, last_epoch_s: int = 0) -> np.ndarray:
    """A memory leak: memory rises 0.02..0.3 pt/step (log-uniform) from an onset between the encoder's start
    and 2 h before its last step, on through the future."""
    return _linear_rise(series, last, rng, MEM, 0.02, 0.3)


def disk_fill(series: np.ndarray, last: int, rng: np.random.Generator, last_epoch_s: int = 0) -> np.ndarray:
    """A filling disk (logs, dumps): disk rises 0.005..0.2 pt/step (log-uniform), same onset rule as the leak."""
    return _linear_rise(series, last, rng, DISK, 0.005, 0.2)


def swap_storm(series: np.ndarray, last: int, rng: np.random.Generator, last_epoch_s: int = 0) -> np.ndarray:
    """Memory pressure turning into swapping: memory sits at 88..98 % from a point in the encoder's last 3 h,
    then swap climbs an accelerating ramp (power 1.5..2.5), gaining 20..80 pt in 2..8 h."""
    out, n = series.copy(), len(series)
    high_from = int(rng.integers(max(last - 36, 0), max(last - 5, 1)))
    out[high_from:, MEM] = np.maximum(out[high_from:, MEM], rng.uniform(88, 98) + rng.normal(0, 0.5, n - high_from))
    start = int(rng.integers(high_from, max(last + (n - 1 - last) // 2, high_from) + 1))
    ramp = _since(n, start) / rng.integers(TWO_HOURS, 4 * TWO_HOURS + 1)
    out[:, SWAP] += rng.uniform(20, 80) * ramp ** rng.uniform(1.5, 2.5)
    return _clip(out)


def cpu_runaway(series: np.ndarray, last: int, rng: np.random.Generator, last_epoch_s: int = 0) -> np.ndarray:
    """A runaway process: CPU steps (or ramps over one more step) to 90..100 % within 10 min and stays there,
    load rising with it; the onset lies inside the encoder's last 2 h or in the future."""
    out, n = series.copy(), len(series)
    start = int(rng.integers(max(last - TWO_HOURS + 1, 1), max(n - 1, 2)))
    frac = np.clip((np.arange(n) - start + 1) / rng.integers(1, 3), 0.0, 1.0)
    top = np.clip(rng.uniform(90, 100) + rng.normal(0, 1.0, n), 90, 100)
    out[:, LOAD] += frac * _pt(series, last, LOAD, rng.uniform(20, 60))
    out[:, CPU] += frac * (top - out[:, CPU])
    return _clip(out)


def daily_cycle(series: np.ndarray, last: int, rng: np.random.Generator, last_epoch_s: int = 0) -> np.ndarray:
    """A daily cycle (office hours, nightly batch) on CPU, memory or load: a sine of 5..30 pt amplitude with a
    random phase against the clock; in 30 % of windows shifted so its peak reaches 92..100 %."""
    out, j = series.copy(), int(rng.choice(_CYCLED))
    phase = 2 * np.pi * (_epochs(len(out), last, last_epoch_s) % DAY_S) / DAY_S + rng.uniform(0, 2 * np.pi)
    out[:, j] += _pt(series, last, j, rng.uniform(5, 30)) * np.sin(phase)
    if np.isfinite(_UPPER[j]) and rng.random() < 0.3:
        out[:, j] += rng.uniform(92, 100) - out[:, j].max()
    return _clip(out)


def weekly_cycle(series: np.ndarray, last: int, rng: np.random.Generator, last_epoch_s: int = 0) -> np.ndarray:
    """A weekly shape on CPU, memory or load: weekdays and weekends (UTC, from ``last_epoch_s``) differ by
    5..25 pt, weekdays busier in 80 % of windows; a window crossing a weekend boundary shows the step."""
    out, j = series.copy(), int(rng.choice(_CYCLED))
    weekend = ((_epochs(len(out), last, last_epoch_s) // DAY_S + 3) % 7) >= 5  # 1970-01-01 was a Thursday
    sign = 1.0 if rng.random() < 0.8 else -1.0
    out[:, j] += sign * _pt(series, last, j, rng.uniform(5, 25)) * np.where(weekend, -0.5, 0.5)
    return _clip(out)


def step_change(series: np.ndarray, last: int, rng: np.random.Generator, last_epoch_s: int = 0) -> np.ndarray:
    """A lasting level shift (a deploy, a new tenant, a config change) of a random target by 5..30 pt, up in
    70 % of windows, at a random step of encoder or future."""
    out, j = series.copy(), int(rng.integers(len(TARGETS)))
    start = int(rng.integers(1, len(out)))
    out[start:, j] += (1.0 if rng.random() < 0.7 else -1.0) * _pt(series, last, j, rng.uniform(5, 30))
    return _clip(out)


def restart(series: np.ndarray, last: int, rng: np.random.Generator, last_epoch_s: int = 0) -> np.ndarray:
    """A service restart (a negative: no incident): memory drops to 5..25 % and swap to 0, then both recover
    exponentially (time constant 3..24 h) towards their former course; onset as for a runaway."""
    out, n = series.copy(), len(series)
    start = _late_onset(n, last, rng)
    low = min(rng.uniform(5, 25), float(series[start - 1, MEM]))
    back = 1.0 - np.exp(-_since(n, start) / rng.uniform(3 * 12, 24 * 12))
    after = np.arange(n) >= start
    out[after, MEM] = low + (out[after, MEM] - low) * back[after]
    out[after, SWAP] *= back[after]
    return _clip(out)


def burst(series: np.ndarray, last: int, rng: np.random.Generator, last_epoch_s: int = 0) -> np.ndarray:
    """A short burst (a negative: a cron job, a traffic spike): CPU +20..60 pt and load with it, a half-sine
    that is back to normal within 15..45 min; it starts in the encoder's last 2 h or in the future."""
    out, n = series.copy(), len(series)
    steps = int(rng.integers(3, 10))  # back to normal after 15..45 min
    start = int(rng.integers(max(min(last - TWO_HOURS + 1, n - steps), 0), max(n - steps, 1)))
    k = np.arange(n) - start
    shape = np.where((k > 0) & (k < steps), np.sin(np.pi * k / steps), 0.0)
    height = rng.uniform(20, 60)
    out[:, CPU] += height * shape
    out[:, LOAD] += _pt(series, last, LOAD, height) * shape
    return _clip(out)


SCENARIOS: dict[str, ScenarioFn] = {
    "mem_leak": mem_leak,
    "disk_fill": disk_fill,
    "swap_storm": swap_storm,
    "cpu_runaway": cpu_runaway,
    "daily_cycle": daily_cycle,
    "weekly_cycle": weekly_cycle,
    "step_change": step_change,
    "restart": restart,
    "burst": burst,
}
#: Default weights: incidents about half, cycles and shifts a third, negatives (restart, burst) a quarter.
DEFAULT_MIX: dict[str, float] = {
    "mem_leak": 0.15, "disk_fill": 0.10, "swap_storm": 0.08, "cpu_runaway": 0.10, "daily_cycle": 0.15,
    "weekly_cycle": 0.07, "step_change": 0.10, "restart": 0.10, "burst": 0.15,
}


def resolve_mix(mix: Mapping[str, float] | Iterable[tuple[str, float]] = ()) -> dict[str, float]:
    """The mix to use (empty: ``DEFAULT_MIX``), normalised to sum 1; unknown names or bad weights raise."""
    weights = {str(k): float(v) for k, v in (mix.items() if isinstance(mix, Mapping) else mix)}
    if not weights:
        return dict(DEFAULT_MIX)
    unknown = sorted(set(weights) - set(SCENARIOS))
    if unknown:
        raise ValueError(f"unknown scenarios {unknown}; known: {sorted(SCENARIOS)}")
    total = sum(weights.values())
    if any(w < 0 or not np.isfinite(w) for w in weights.values()) or total <= 0:
        raise ValueError(f"scenario weights must be >= 0 with a positive sum: {weights}")
    return {k: w / total for k, w in weights.items()}


def apply_scenario(window: WindowSlice, rng: np.random.Generator, share: float,
                   mix: Mapping[str, float]) -> tuple[WindowSlice, str | None]:
    """With probability ``share``, apply one scenario drawn by ``mix`` to encoder and future together.

    Returns the new window and the scenario's name (``None``: unchanged). Covariates stay as they are,
    except that a change of cpu_pct shifts the user-CPU covariate (column 0, /100) by the same amount.
    """
    if rng.random() >= share or window.future is None:
        return window, None
    names = list(mix)
    weights = np.array([mix[k] for k in names], dtype=np.float64)
    name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    length = len(window.targets)
    before = np.concatenate([window.targets, window.future]).astype(np.float32)
    after = SCENARIOS[name](before, length - 1, rng, window.last_epoch_s)
    covariates = window.covariates
    cpu_shift = after[:length, CPU] - before[:length, CPU]
    if np.any(cpu_shift != 0):
        covariates = covariates.copy()
        covariates[:, 0] = np.clip(covariates[:, 0] + cpu_shift / 100.0, 0.0, 1.0)
    return WindowSlice(after[:length], covariates, window.last_epoch_s, window.profile_index, after[length:]), name
