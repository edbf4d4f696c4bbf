"""Structural forecasts, vectorised over servers and origins (numpy only).

The same functions are the simple peers every evaluation reports (``PEERS``) and the components the
served blend combines with the TFT (``COMPONENTS``). Every function takes:

* ``y`` (B, L, T) float64: each server's targets on the 5-minute grid, NaN where nothing was measured,
  aligned so that ``y[:, -1]`` is the server's last measured step;
* ``origins`` (B, K) int: grid indices of the forecast origins (the last step each forecast may see);
  an index < 0 marks "no origin" and yields NaN;

and returns (B, K, H, T) point forecasts for steps 1..H after each origin, clipped to the targets'
ranges. Nothing here reads a value after its origin.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property

import attrs
import numpy as np

from argus.adapters.tft.features import targets_from_values
from argus.domain.forecast import TARGET_FIELDS, TARGETS
from argus.domain.metrics import FIELD_INDEX, STATUS_CODE, STEP_SECONDS, MetricsWindow

DAY_STEPS = 288
WEEK_DAYS = 7
UPPER = np.array([np.inf if t == "load" else 100.0 for t in TARGETS])
#: Holt's damped trend: every (alpha, beta, phi) here runs at once; each series keeps the one with the
#: smallest one-step squared error up to its origin.
DAMPED_GRID = tuple((a, 0.05, p) for a in (0.1, 0.3, 0.7) for p in (0.99, 0.998))
DAMPED_WARMUP = 144  # steps each series runs before its earliest origin
DAMPED_INIT_STEPS = 12  # its level and trend start from the line through its first hour
PROFILE_SMOOTH = 2  # profile_level averages the 7-day profile over +-2 steps
PROFILE_LEVEL_DECAY = 0.97  # per step: the gap between the last value and the profile halves in ~2 h
GAP_STEPS = 6  # profile_level measures today's offset from the profile over the last 30 minutes



@attrs.frozen(eq=False)
class Histories:
    """Aligned target histories of several servers (see the module docstring)."""

    names: tuple[str, ...]
    y: np.ndarray  # (B, L, T) float32, NaN = not measured
    last_epoch_s: np.ndarray  # (B,) int64: epoch seconds of y[:, -1]

    def epoch_of(self, index: np.ndarray) -> np.ndarray:
        """Epoch seconds of grid indices (any shape)."""
        steps_back = self.y.shape[1] - 1 - np.asarray(index)
        return self.last_epoch_s.reshape((-1,) + (1,) * (np.ndim(index) - 1)) - steps_back * STEP_SECONDS


_TARGET_COLUMNS = [FIELD_INDEX[TARGET_FIELDS[t]] for t in TARGETS]  # cpu_pct is read from the idle share


def targets_of(values: np.ndarray) -> np.ndarray:
    """The (n, T) target matrix (cpu_pct = 100 - idle, ...) of record rows aligned with METRIC_FIELDS."""
    return targets_from_values(values).astype(np.float64)


def histories(windows: Sequence[MetricsWindow], steps: int) -> Histories:
    """Put each window's measured records (not ``offline``, every target finite) on a grid of ``steps`` steps.

    Only the targets are read: a missing covariate (an optional field, NaN) does not drop its row.

    Windows without a measured record get an all-NaN row and ``last_epoch_s`` 0.
    """
    y = np.full((len(windows), steps, len(TARGETS)), np.nan, dtype=np.float32)
    last = np.zeros(len(windows), dtype=np.int64)
    offline = STATUS_CODE["offline"]
    for b, window in enumerate(windows):
        values = window.values[-steps:]
        keep = (window.statuses[-steps:] != offline) & np.isfinite(values[:, _TARGET_COLUMNS]).all(axis=1)
        if not keep.any():
            continue
        grid = (window.timestamps[-steps:][keep] + STEP_SECONDS // 2) // STEP_SECONDS
        idx = grid - grid[-1] + steps - 1
        ok = idx >= 0
        rows = values[keep][ok][:, _TARGET_COLUMNS]
        rows[:, 0] = 100.0 - rows[:, 0]
        y[b, idx[ok]] = rows
        last[b] = grid[-1] * STEP_SECONDS
    return Histories(tuple(w.server_name for w in windows), y, last)


def forward_filled(y: np.ndarray) -> np.ndarray:
    """``y`` with each NaN replaced by the last finite value before it (leading NaNs stay NaN)."""
    finite = np.isfinite(y)
    idx = np.where(finite, np.arange(y.shape[1])[None, :, None], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    return np.take_along_axis(y, idx, axis=1)


def _gather(y: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``y[b, index[b, ...], :]`` with NaN where the index is outside [0, L)."""
    b, length = y.shape[0], y.shape[1]
    ok = (index >= 0) & (index < length)
    flat = np.where(ok, index, 0).reshape(b, -1)
    out = np.take_along_axis(y, flat[:, :, None], axis=1).reshape(*index.shape, y.shape[2])
    out[~ok] = np.nan
    return out


def _clip(forecast: np.ndarray) -> np.ndarray:
    return np.clip(forecast, 0.0, UPPER)



class Context:
    """One batch of histories and origins; pieces several components share are computed once.

    ``steps`` (default 1..``horizon``) are the steps after each origin to forecast: the blend scores
    past origins on a subset of steps only.
    """

    def __init__(self, y: np.ndarray, origins: np.ndarray, horizon: int, steps: np.ndarray | None = None,
                 damped: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> None:
        self.y, self.origins = y, np.asarray(origins, dtype=np.int64)
        self.damped = damped  # ``damped_states`` at these origins, when a caller computed them already
        self.steps = np.arange(1, horizon + 1) if steps is None else np.asarray(steps, dtype=np.int64)
        self.horizon = int(self.steps.max())
        self.valid = self.origins >= 0
        #: Only the part of the grid an origin can reach back to is ever read (besides the profile's days).
        self.first = int(self.origins[self.valid].min()) if self.valid.any() else y.shape[1] - 1
        #: the profile is computed from here: ``GAP_STEPS`` before the first origin (profile_level's offset)
        self.profile_start = max(0, self.first - GAP_STEPS + 1)

    @cached_property
    def level(self) -> np.ndarray:
        """(B, K, T): the last measured value at or before each origin."""
        lo = max(0, self.first - DAY_STEPS)  # a server silent for a day before its origin has no level
        return _gather(forward_filled(self.y[:, lo:]), np.where(self.valid, self.origins - lo, -1))

    @cached_property
    def flat(self) -> np.ndarray:
        return np.repeat(self.level[:, :, None, :], len(self.steps), axis=2)

    @cached_property
    def _median_by_position(self) -> np.ndarray:
        """(B, P, T): median at the same time of day over the previous <= 7 days, for grid positions from ``first``.

        The median at grid position p reads p - 288 d (d = 1..7), all before any origin that forecasts
        p (H < 288), so it is computed once per position and shared by every origin.
        """
        positions = np.arange(self.profile_start, self.y.shape[1] + self.horizon)
        back = DAY_STEPS * np.arange(1, WEEK_DAYS + 1)
        index = np.broadcast_to(positions[:, None] - back[None, :], (self.y.shape[0], len(positions), len(back)))
        median, _ = _nan_median(_gather(self.y, index), axis=2)
        return median

    def _at_steps(self, by_position: np.ndarray) -> np.ndarray:
        """(B, K, 1 + len(steps), T): ``by_position`` at each origin (step 0) and at each of ``steps``."""
        rel = self.origins[:, :, None] + np.concatenate([[0], self.steps])[None, None, :] - self.profile_start
        return _gather(by_position, np.where(self.valid[:, :, None], rel, -1))

    @cached_property
    def profile(self) -> np.ndarray:
        """(B, K, 1 + len(steps), T): the 7-day same-time median at the origin and at each step; NaN if none."""
        return self._at_steps(self._median_by_position)

    @cached_property
    def smooth_profile(self) -> np.ndarray:
        """``profile`` averaged over +-``PROFILE_SMOOTH`` grid steps: a calmer shape (one noisy day does not
        pull a crossing early); positions without a profile stay NaN."""
        return self._at_steps(self._smooth_by_position)

    @cached_property
    def profile_gap(self) -> np.ndarray:
        """(B, K, T): today's offset from the smoothed profile, the mean of (measured - profile) over the last
        ``GAP_STEPS`` steps up to each origin (one noisy step does not move the anchor); NaN where none."""
        back = self.origins[:, :, None] - np.arange(GAP_STEPS)[None, None, :]
        back = np.where(self.valid[:, :, None], back, -1)
        measured = _gather(self.y, back)
        profile = _gather(self._smooth_by_position, np.where(back >= self.profile_start, back - self.profile_start, -1))
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # no overlap: NaN on purpose
            return np.nanmean(measured - profile, axis=2)

    @cached_property
    def _smooth_by_position(self) -> np.ndarray:
        p, w = self._median_by_position, PROFILE_SMOOTH
        ok = np.isfinite(p)
        pad = ((0, 0), (w + 1, w), (0, 0))
        csum = np.cumsum(np.pad(np.where(ok, p, 0.0), pad), axis=1)
        ccount = np.cumsum(np.pad(ok.astype(np.float64), pad), axis=1)
        n = p.shape[1]
        total = csum[:, 2 * w + 1 : 2 * w + 1 + n] - csum[:, :n]
        seen = ccount[:, 2 * w + 1 : 2 * w + 1 + n] - ccount[:, :n]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(ok & (seen > 0), total / seen, np.nan)

    def fallback(self, forecast: np.ndarray) -> np.ndarray:
        """Clip to the targets' ranges; the last value wherever ``forecast`` is not finite."""
        return _clip(np.where(np.isfinite(forecast), forecast, self.flat))


def _nan_median(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Median along ``axis`` ignoring NaNs (one sort), and how many values it saw."""
    x = np.sort(x, axis=axis)  # NaNs sort last
    n = np.isfinite(x).sum(axis=axis, keepdims=True)
    lo = np.take_along_axis(x, np.maximum((n - 1) // 2, 0), axis=axis)
    hi = np.take_along_axis(x, np.maximum(n // 2, 0), axis=axis)
    return np.squeeze((lo + hi) / 2, axis=axis), np.squeeze(n, axis=axis)


def last_value(ctx: Context) -> np.ndarray:
    """The last measured value at or before the origin, held flat."""
    return ctx.flat


def seasonal_naive(ctx: Context) -> np.ndarray:
    """The value at the same time yesterday (the last value where yesterday was not measured)."""
    return ctx.fallback(_gather(ctx.y, ctx.origins[:, :, None] + ctx.steps[None, None, :] - DAY_STEPS))


def same_time_median_7d(ctx: Context) -> np.ndarray:
    """Median at the same time of day over the previous <= 7 days (the last value where none was measured)."""
    return ctx.fallback(ctx.profile[:, :, 1:])


def profile_median(ctx: Context) -> np.ndarray:
    """``same_time_median_7d`` averaged over +-2 steps: the blend's profile (one noisy day does not move a crossing)."""
    return ctx.fallback(ctx.smooth_profile[:, :, 1:])


def profile_level(ctx: Context) -> np.ndarray:
    """The 7-day profile (smoothed over 25 min) anchored to the current level: profile + (last - profile now) * decay^h.

    Short horizons follow the level (a server running above its usual), long ones the daily shape.
    """
    profile = ctx.smooth_profile
    gap = ctx.profile_gap
    decay = PROFILE_LEVEL_DECAY ** ctx.steps
    gap = np.where(np.isfinite(gap), gap, 0.0)
    return ctx.fallback(profile[:, :, 1:] + gap[:, :, None, :] * decay[None, None, :, None])


def predict_linear(ctx: Context, window_steps: int) -> np.ndarray:
    """Prometheus' ``predict_linear``: the least-squares line over the last ``window_steps``, extrapolated.

    Running sums over the grid give every origin's fit at once; the line's value at the origin is the
    starting point. Fewer than 3 measured points in the window: the last value.
    """
    at_origin, slope = _line_fit(ctx, window_steps)
    line = at_origin[:, :, None, :] + slope[:, :, None, :] * ctx.steps[None, None, :, None]
    return ctx.fallback(line)


def _line_fit(ctx: Context, window_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(B, K, T) value at the origin and slope per step of the least-squares line over the last
    ``window_steps`` before each origin; NaN where fewer than 3 points were measured."""
    y = ctx.y
    lo = max(0, ctx.first - window_steps)
    part = y[:, lo:]
    ok = np.isfinite(part)
    i = np.arange(part.shape[1], dtype=np.float64)[None, :, None]
    v = np.where(ok, part, 0.0)
    xi = np.where(ok, i, 0.0)
    sums = [np.concatenate([np.zeros_like(a[:, :1]), np.cumsum(a, axis=1)], axis=1)
            for a in (ok.astype(np.float64), xi, xi * i, v, xi * v)]
    end = np.where(ctx.valid, ctx.origins - lo + 1, 0)  # exclusive end in ``part``
    start = np.maximum(end - window_steps, 0)
    n, si, sii, sv, siv = (_gather(c, end) - _gather(c, start) for c in sums)
    with np.errstate(invalid="ignore", divide="ignore"):
        den = n * sii - si * si
        slope = np.where(den > 0, (n * siv - si * sv) / den, 0.0)
        at_origin = (sv - slope * si) / n + slope * (end - 1)[:, :, None]
    enough = n >= 3
    return np.where(enough, at_origin, np.nan), np.where(enough, slope, np.nan)


def predict_linear_1h(ctx: Context) -> np.ndarray:
    """``predict_linear`` over the last hour."""
    return predict_linear(ctx, 12)


def predict_linear_6h(ctx: Context) -> np.ndarray:
    """``predict_linear`` over the last 6 hours."""
    return predict_linear(ctx, 72)


def damped_states(y: np.ndarray, origins: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Holt's damped-trend state at each origin: (level, trend, phi), each (B, K, T); NaN where origin < 0.

    Every ``DAMPED_GRID`` parameter set runs in one pass; each series starts ``DAMPED_WARMUP`` steps before
    its own earliest origin (so an origin gets the same state in any batch); at each origin the set with
    the lowest one-step squared error so far is kept. A missing step takes the one-step forecast (no error
    counted).
    """
    origins = np.asarray(origins, dtype=np.int64)
    valid = origins >= 0
    grid = np.array(DAMPED_GRID)
    alpha, beta, phi = grid[:, 0], grid[:, 1], grid[:, 2]
    shape = (y.shape[0], y.shape[2], len(grid))
    level, trend, sse = np.full(shape, np.nan), np.zeros(shape), np.zeros(shape)
    snap = np.full((*origins.shape, 3, y.shape[2], len(grid)), np.nan)  # level, trend, sse at each origin
    at: dict[int, list[tuple[int, int]]] = {}
    for bi, ki in zip(*np.nonzero(valid), strict=True):
        at.setdefault(int(origins[bi, ki]), []).append((int(bi), int(ki)))
    row_first = np.where(valid, origins, np.iinfo(np.int64).max).min(axis=1)
    row_start = np.maximum(np.minimum(row_first, y.shape[1] - 1) - DAMPED_WARMUP, 0)  # (B,)
    # each series starts from the least-squares line of its first hour (a trend already there is not
    # learnt from zero at the smoothing's slow trend rate)
    first_hour = Context(y, (row_start + DAMPED_INIT_STEPS - 1)[:, None], 1)
    init_level, init_trend = _line_fit(first_hour, DAMPED_INIT_STEPS)
    init_level = (init_level - init_trend * (DAMPED_INIT_STEPS - 1))[:, 0, :, None]  # the line at row_start
    init_trend = init_trend[:, 0, :, None]
    starts: dict[int, np.ndarray] = {}
    for b, s0 in enumerate(row_start):
        starts.setdefault(int(s0), []).append(b)
    row_start = row_start[:, None, None]
    start = int(row_start.min()) if valid.any() else 0
    for s in range(start, int(origins.max()) + 1 if valid.any() else start):
        if s in starts:
            rows = np.asarray(starts[s])
            known = np.isfinite(init_level[rows])
            level[rows] = np.where(known, init_level[rows], np.nan)
            trend[rows] = np.where(known & np.isfinite(init_trend[rows]), init_trend[rows], 0.0)
        obs = np.where(s >= row_start, y[:, s, :, None], np.nan)
        seen = np.isfinite(obs)
        fresh = seen & ~np.isfinite(level)
        level = np.where(fresh, obs, level)
        pred = level + phi * trend
        err = np.where(seen & ~fresh, obs - pred, 0.0)
        sse += err * err
        level = pred + alpha * err
        trend = np.where(fresh, 0.0, phi * trend + alpha * beta * err)
        if s in at:
            bi, ki = np.array(at[s]).T
            snap[bi, ki, 0], snap[bi, ki, 1], snap[bi, ki, 2] = level[bi], trend[bi], sse[bi]
    best = np.argmin(np.where(np.isfinite(snap[:, :, 2]), snap[:, :, 2], np.inf), axis=-1)  # (B, K, T)
    lv = np.take_along_axis(snap[:, :, 0], best[..., None], axis=-1)[..., 0]
    tr = np.take_along_axis(snap[:, :, 1], best[..., None], axis=-1)[..., 0]
    return lv, tr, phi[best]


def damped_trend(ctx: Context) -> np.ndarray:
    """Additive damped-trend exponential smoothing (Holt with Gardner-McKenzie damping), fitted per series:
    level + trend * (phi + ... + phi^h), from ``damped_states`` (given to the Context when shared)."""
    lv, tr, ph = ctx.damped if ctx.damped is not None else damped_states(ctx.y, ctx.origins)
    ph = ph[:, :, None, :]
    h = ctx.steps[None, None, :, None]
    return ctx.fallback(lv[:, :, None, :] + tr[:, :, None, :] * ph * (1 - ph**h) / (1 - ph))


Component = Callable[[Context], np.ndarray]
#: The simple peers every ``argus evaluate`` report scores on the served model's windows.
PEERS: Mapping[str, Component] = {
    "last_value": last_value,
    "seasonal_naive": seasonal_naive,
    "same_time_median_7d": same_time_median_7d,
    "predict_linear_1h": predict_linear_1h,
    "predict_linear_6h": predict_linear_6h,
    "damped_trend": damped_trend,
}
#: The structural components of the served blend (the TFT is the other one): the peers, with the 7-day profile
#: smoothed, and the profile anchored to the current level.
COMPONENTS: Mapping[str, Component] = {
    "last_value": last_value,
    "seasonal_naive": seasonal_naive,
    "profile_median": profile_median,
    "profile_level": profile_level,
    "predict_linear_1h": predict_linear_1h,
    "predict_linear_6h": predict_linear_6h,
    "damped_trend": damped_trend,
}


def run(components: Mapping[str, Component], y: np.ndarray, origins: np.ndarray, horizon: int,
        chunk: int = 256, steps: np.ndarray | None = None,
        damped: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Every component's (B, K, len(steps), T) forecasts (steps default 1..horizon), in chunks of servers
    (bounded memory); NaN where origin < 0."""
    n_steps = horizon if steps is None else len(steps)
    out = {name: np.empty((*np.shape(origins), n_steps, y.shape[2])) for name in components}
    for lo in range(0, y.shape[0], chunk):
        part = slice(lo, lo + chunk)
        ctx = Context(y[part], origins[part], horizon, steps,
                      None if damped is None else tuple(d[part] for d in damped))
        for name, fn in components.items():
            out[name][part] = fn(ctx)
    invalid = np.asarray(origins) < 0
    for forecast in out.values():
        forecast[invalid] = np.nan
    return out
