"""The served forecaster: the TFT and the structural forecasts, combined per server by recent skill.

Why (docs/model.md, "The served forecast"): on servers it never saw, the TFT alone was no better
than the last value, while a 7-day same-time median, a trend line or damped-trend smoothing each won
on the servers whose structure they match (cycles, leaks, filling disks). The blend keeps every one
of them and lets each server's own recent history decide:

1. **Components** (``structural.COMPONENTS`` plus the TFT) forecast from the current origin and from
   ``skill_origins`` past origins, every ``skill_stride`` steps back (the last 24 h by default).
2. **Skill**: each component's mean absolute error against what was measured after each past origin,
   per horizon bin (``BINS``), on this server and target.
3. **Weights**: ``prior * exp(-beta * shrink * (error / best error - 1))``: the best component leads,
   one twice as bad weighs e^-3 as much; ``shrink`` = n / (n + 2) for n scored origins, so a server
   with little history leans on the prior (fitted by ``calibrate`` over many servers). Weights are
   interpolated between bins in log-horizon. The served median is the weighted middle of the components
   (``combine``: a weighted median, smoothed), not their weighted mean.
4. **Band**: the server's own past errors of the combined forecast give an (asymmetric) spread per
   bin (their 10th and 90th percentiles); mixed with the TFT's quantile offsets where the past is
   short, scaled by a per target and bin factor ``band_scale`` that ``calibrate`` fits so that p10-p90
   covers 81 % of held-back actuals.

One batched call per tick: components are vectorised over servers (chunks of ``chunk`` servers), the
TFT runs once for the fleet plus, for past origins, only on origins it has not forecast before (a
cache keyed by server and origin time; origins sit on a per-server phase of the stride so a fleet's
new origins are spread over ticks).
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence

import attrs
import numpy as np

from argus.adapters import structural
from argus.adapters.tft.features import WindowSlice
from argus.adapters.tft.forecaster import TftForecaster, latest_window
from argus.domain.forecast import TARGETS, Forecast
from argus.domain.metrics import STEP_SECONDS, MetricsWindow
from argus.domain.probability import ProbabilityCalibration
from argus.domain.ticks import takes_between_chunks

#: Horizon bins (first and last step, inclusive) in which skill is measured and the band scaled.
BINS: tuple[tuple[int, int], ...] = ((1, 3), (4, 6), (7, 12), (13, 24), (25, 48), (49, 96))
TFT = "tft"
#: Smallest spread (one standard deviation) of any target: no band is ever zero-wide.
SIGMA_FLOOR = np.array([0.05 if t == "load" else 0.25 for t in TARGETS])
#: A target "varies" on a server whose seasonal MASE scale is above twice the band floor: only there does a
#: band's coverage say anything about its calibration (a constant sits inside the floor's band whatever it is).
VARYING_SCALE = 2 * SIGMA_FLOOR
_Z = {0.02: -2.054, 0.1: -1.2816, 0.25: -0.6745, 0.5: 0.0, 0.75: 0.6745, 0.9: 1.2816, 0.98: 2.054}


@attrs.frozen
class BlendConfig:
    """How the blend weighs and spreads; stored in the model manifest under ``"blend"``."""

    skill_origins: int = 8
    skill_stride: int = 24  # steps between past origins (2 h): the last 16 h
    beta: float = 3.0
    shrink_origins: float = 2.0
    skill_refresh_steps: int = 6  # skill is re-measured every 6 steps (30 min) per server, staggered
    recency_half_life_steps: float = 72.0  # past origins weigh 0.5 ** (age / this) in the skill (0: all alike)
    history_steps: int = 2880  # 10 days: the 7-day profile and a day of past origins
    #: target -> per-bin factor on the band (1.0 until ``calibrate`` fits it)
    band_scale: Mapping[str, tuple[float, ...]] = attrs.field(factory=dict)
    #: target -> component -> per-bin prior weight (uniform until ``calibrate`` fits it)
    prior: Mapping[str, Mapping[str, tuple[float, ...]]] = attrs.field(factory=dict)
    calibration: Mapping[str, object] = attrs.field(factory=dict)  # what it was fitted on, for the record

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, object]) -> BlendConfig:
        """The manifest's ``blend`` section, or the defaults for models made before it."""
        raw = manifest.get("blend")
        if not isinstance(raw, Mapping):
            return cls()
        fields = {f.name for f in attrs.fields(cls)}
        known = {k: v for k, v in raw.items() if k in fields}
        known["band_scale"] = {t: tuple(v) for t, v in dict(known.get("band_scale", {})).items()}
        known["prior"] = {t: {c: tuple(v) for c, v in dict(p).items()} for t, p in dict(known.get("prior", {})).items()}
        return cls(**known)

    def as_manifest(self) -> dict:
        return {**attrs.asdict(self, recurse=False), "band_scale": {t: list(v) for t, v in self.band_scale.items()},
                "prior": {t: {c: list(v) for c, v in p.items()} for t, p in self.prior.items()}}


def _bin_interpolation(horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per step: (lower bin, upper bin, fraction towards upper) in log-horizon."""
    used = [b for b in BINS if b[0] <= horizon]
    centers = np.array([math.log(math.sqrt(lo * min(hi, horizon))) for lo, hi in used])
    logs = np.log(np.arange(1, horizon + 1))
    if len(used) == 1:
        zero = np.zeros(horizon, dtype=np.int64)
        return zero, zero, np.zeros(horizon)
    hi = np.clip(np.searchsorted(centers, logs), 1, len(used) - 1)
    lo = hi - 1
    frac = np.clip((logs - centers[lo]) / (centers[hi] - centers[lo]), 0.0, 1.0)
    return lo, hi, frac


def _per_step(per_bin: np.ndarray, interp) -> np.ndarray:
    """(..., nbins, T) -> (..., H, T), interpolated in log-horizon."""
    lo, hi, frac = interp
    return per_bin[..., lo, :] * (1 - frac[:, None]) + per_bin[..., hi, :] * frac[:, None]


def skill_steps(horizon: int) -> np.ndarray:
    """The steps at which past origins are scored: every step of the first hour, then sparser (34 of 96:
    skill costs a third of scoring every step, and every bin keeps several points)."""
    steps = [*range(1, 13), *range(14, 25, 2), *range(27, 49, 3), *range(54, 97, 6)]
    return np.array([h for h in steps if h <= horizon] or [horizon])


def _bin_mean(x: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., S, T) at ``steps`` -> NaN-mean per bin (..., nbins, T) and the count of finite values."""
    means, counts = [], []
    for lo, hi in BINS:
        part = x[..., (steps >= lo) & (steps <= hi), :]
        n = np.isfinite(part).sum(axis=-2)
        with np.errstate(invalid="ignore", divide="ignore"):
            means.append(np.where(n > 0, np.nansum(part, axis=-2) / n, np.nan))
        counts.append(n)
    return np.stack(means, axis=-2), np.stack(counts, axis=-2)


def _network(count: int) -> list[tuple[int, int]]:
    """Compare-exchange pairs that sort ``count`` values (Batcher's odd-even merge sort; 19 pairs for 8)."""
    pairs: list[tuple[int, int]] = []
    p = 1
    while p < count:
        k = p
        while k >= 1:
            for j in range(k % p, count - k, 2 * k):
                for i in range(min(k, count - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


def combine(values: np.ndarray, weights: np.ndarray, axis: int) -> np.ndarray:
    """Weighted middle of the components along ``axis``: the mean of their weighted 40th, 50th, 60th percentiles.

    Not the weighted mean: a server that flips between 1 % and 92 % CPU gets either, never 46 % (the
    absolute error, which is what is scored, is minimised by a median); the 40-60 average keeps the path
    smooth where components disagree only slightly. Components that are NaN are left out. The few
    components are sorted by a compare-exchange network over whole arrays (argsort over millions of rows
    of 8 is ten times slower).
    """
    count = values.shape[axis]
    v = [np.take(values, i, axis=axis).astype(np.float32) for i in range(count)]
    w = [np.broadcast_to(np.take(weights, i, axis=axis), v[0].shape).astype(np.float32) for i in range(count)]
    for i in range(count):
        missing = ~np.isfinite(v[i])
        if missing.any():
            v[i][missing], w[i][missing] = np.inf, 0.0
    for a, b in _network(count):
        swap = (v[a] > v[b]).astype(np.float32)
        v[a], v[b] = np.minimum(v[a], v[b]), np.maximum(v[a], v[b])
        moved = (w[b] - w[a]) * swap
        w[a], w[b] = w[a] + moved, w[b] - moved
    cdf = np.cumsum(np.stack(w), axis=0)
    total = np.maximum(cdf[-1], 1e-12)
    stacked = np.stack(v)
    out = np.zeros(v[0].shape, dtype=np.float64)
    for p in (0.4, 0.5, 0.6):  # the first component (in value order) whose cumulative weight reaches p
        idx = np.minimum((cdf < p * total - 1e-6).sum(axis=0), count - 1)
        out += np.take_along_axis(stacked, idx[None], axis=0)[0]
    return out / 3


def smooth_path(median: np.ndarray) -> np.ndarray:
    """(H, T) path averaged over +-1 step beyond 30 minutes and +-2 beyond 2 hours (the first half hour as is).

    The weighted middle can hop between components from one step to the next; a crossing time should not.
    """
    out = median.copy()
    for lo, width in ((6, 1), (24, 2)):
        if len(median) <= lo:
            break
        padded = np.pad(median, ((width, width), (0, 0)), mode="edge")
        avg = np.mean([padded[i : i + len(median)] for i in range(2 * width + 1)], axis=0)
        out[lo:] = avg[lo:]
    return out


@attrs.frozen(eq=False)
class BlendState:
    """What one server's blend decided at one tick (compact: per bin), for explanations and frozen re-runs."""

    components: tuple[str, ...]
    origin_epoch_s: int  # the last observation it was computed at
    refresh_at_epoch_s: int  # from this observation on, the skill is measured again
    weights: np.ndarray  # (C, nbins, T)
    sigma_up: np.ndarray  # (nbins, T)
    sigma_down: np.ndarray  # (nbins, T)
    trust: np.ndarray  # (nbins, T): weight of the server's own errors vs the TFT's band
    scored_origins: int

    def component_shares(self, target: str, step: int) -> dict[str, float]:
        """Each component's weight at ``step`` (1-based) for ``target``, rounded."""
        j = next((i for i, (lo, hi) in enumerate(BINS) if lo <= step <= hi), len(BINS) - 1)
        t = TARGETS.index(target)
        return {c: round(float(w), 3) for c, w in zip(self.components, self.weights[:, j, t], strict=True)}


class BlendForecaster:
    """The ``Forecaster`` the engine serves: a TftForecaster plus structural components, see the module doc."""

    def __init__(self, inner: TftForecaster, config: BlendConfig | None = None, chunk: int = 256,
                 max_new_past_per_tick: int | None = None, past_budget_share: float | None = None) -> None:
        self.inner = inner
        self.config = config or BlendConfig.from_manifest(inner.manifest)
        self.chunk = chunk
        self.max_new_past_per_tick = max_new_past_per_tick
        #: engine: new past-origin TFT forecasts per tick at most this share of the ready servers (+32), so
        #: a restart's empty cache costs a few ticks a little more instead of one tick 13 times as much
        self.past_budget_share = past_budget_share
        self.band_floor = True  # calibration turns it off to see the bands the factor acts on
        self.name = inner.name
        self.spec = inner.spec
        self.manifest = inner.manifest
        #: the manifest's map from raw to calibrated P(incident) (None: serve the raw probabilities)
        self.probability_calibration = ProbabilityCalibration.from_manifest(
            inner.manifest.get("probability_calibration"))  # type: ignore[arg-type]
        self.device = inner.device
        self.quantiles = inner.quantiles
        self.min_history_steps = inner.min_history_steps
        self.horizon_steps = inner.horizon_steps
        self.history_steps = self.config.history_steps
        self.components = (*structural.COMPONENTS, TFT)
        self._interp = _bin_interpolation(self.horizon_steps)
        self._skill_steps = skill_steps(self.horizon_steps)
        self._tft_past: dict[str, dict[int, np.ndarray]] = {}
        self.states: dict[str, BlendState] = {}

    @classmethod
    def load(cls, registry, name: str | None = None, device: str = "auto", threads: int = 1,
             past_budget_share: float | None = None) -> BlendForecaster:
        """Load a TFT from ``registry`` (default: CURRENT) and serve it blended."""
        return cls(TftForecaster.load(registry, name, device=device, threads=threads),
                   past_budget_share=past_budget_share)

    # ------------------------------------------------------------------ serving

    def forecast(self, windows: Sequence[MetricsWindow], profiles: Mapping[str, str],
                 between_chunks: Callable[[], object] | None = None) -> dict[str, Forecast]:
        """Forecast every ready server (the TFT's readiness rule); see ``argus.ports.forecasting.Forecaster``.

        ``between_chunks`` is called after the TFT and between blend chunks (the engine answers
        explanations there, from the previous tick); it must not change this forecaster's state.
        """
        tft = (self.inner.forecast(windows, profiles, between_chunks=between_chunks)
               if between_chunks is not None and takes_between_chunks(self.inner.forecast)
               else self.inner.forecast(windows, profiles))
        ready = [w for w in windows if w.server_name in tft]
        budget = [self.max_new_past_per_tick if self.max_new_past_per_tick is not None else 1 << 62]
        if self.past_budget_share is not None:
            budget[0] = min(budget[0], int(self.past_budget_share * len(ready)) + 32)
        out: dict[str, Forecast] = {}
        for lo in range(0, len(ready), self.chunk):
            if between_chunks is not None:
                between_chunks()
            out.update(self._blend_chunk(ready[lo : lo + self.chunk], tft, profiles, budget))
        live = {w.server_name for w in windows}
        self._tft_past = {s: v for s, v in self._tft_past.items() if s in live or s in out}
        if len(self.states) > 2 * len(live) + 64:  # servers that left the fleet
            self.states = {s: v for s, v in self.states.items() if s in live}
        return out

    def frozen(self, forecast: Forecast) -> FrozenBlend:
        """A forecaster that re-runs this server's blend with the weights and spread of ``forecast``'s tick."""
        return FrozenBlend(self, self.states.get(forecast.server_name))

    def _origins(self, hist: structural.Histories) -> np.ndarray:
        """(B, 1 + K) grid indices: the current origin, then past ones on each server's phase of the stride."""
        c = self.config
        length = hist.y.shape[1]
        step_no = hist.last_epoch_s // STEP_SECONDS
        phase = np.array([zlib.crc32(n.encode()) % c.skill_stride for n in hist.names])
        first = (step_no - phase - 1) % c.skill_stride + 1  # 1..stride steps back
        back = first[:, None] + c.skill_stride * np.arange(c.skill_origins)[None, :]
        origins = np.concatenate([np.full((len(step_no), 1), length - 1), length - 1 - back], axis=1)
        measured = np.isfinite(structural._gather(hist.y, origins)).all(axis=-1)
        # a past origin needs the TFT's minimum history before it
        enough = origins - self.min_history_steps + 1 >= 0
        origins = np.where(measured & enough, origins, -1)
        origins[:, 0] = length - 1
        return origins

    def _past_tft(self, windows: Sequence[MetricsWindow], hist: structural.Histories, origins: np.ndarray,
                  profiles: Mapping[str, str], budget: list[int]) -> np.ndarray:
        """(B, K, S, T) TFT medians from the past origins at the skill steps (cached by server and origin time;
        NaN where over budget)."""
        b_count, k_count = origins.shape[0], origins.shape[1] - 1
        out = np.full((b_count, k_count, len(self._skill_steps), len(TARGETS)), np.nan, dtype=np.float64)
        epochs = hist.epoch_of(origins[:, 1:])
        todo: list[tuple[int, int, int]] = []
        for b, window in enumerate(windows):
            name = window.server_name
            cached = self._tft_past.get(name, {}) if "\x00" not in name else {}
            keep: dict[int, np.ndarray] = {}
            for k in range(k_count):
                if origins[b, k + 1] < 0:
                    continue
                e = int(epochs[b, k])
                if e in cached:
                    out[b, k] = keep[e] = cached[e]
                else:
                    todo.append((b, k, e))
            if "\x00" not in name:
                self._tft_past[name] = keep
        todo = todo[: max(0, budget[0])]
        budget[0] -= len(todo)
        mid = list(self.quantiles).index(0.5)
        for lo in range(0, len(todo), self.inner.chunk_size):  # inputs cut per chunk: bounded memory
            slices, where = [], []
            for b, k, e in todo[lo : lo + self.inner.chunk_size]:
                cut = _slice_at(windows[b], e, self.inner, profiles.get(windows[b].server_name, "generic"))
                if cut is not None:
                    slices.append(cut)
                    where.append((b, k, e))
            if not slices:
                continue
            values, _ = self.inner.predict_slices(slices)
            for (b, k, e), v in zip(where, values, strict=True):
                median = v[self._skill_steps - 1, :, mid].astype(np.float32)
                out[b, k] = median
                if "\x00" not in windows[b].server_name:
                    self._tft_past[windows[b].server_name][e] = median
        return out

    def _blend_chunk(self, windows: Sequence[MetricsWindow], tft: Mapping[str, Forecast],
                     profiles: Mapping[str, str], budget: list[int]) -> dict[str, Forecast]:
        hist = structural.histories(windows, self.history_steps)
        origins = self._origins(hist)
        mid = list(self.quantiles).index(0.5)
        states = [self._reusable(w.server_name, int(e)) for w, e in zip(windows, hist.last_epoch_s, strict=True)]
        stale = np.array([state is None for state in states])
        origins[~stale, 1:] = -1  # servers whose skill is fresh need only the current origin
        now = structural.run(structural.COMPONENTS, hist.y, origins[:, :1], self.horizon_steps, chunk=len(windows))
        tft_now = np.stack([tft[w.server_name].values_array() for w in windows]).astype(np.float64)  # (B,H,T,Q)
        stack_now = np.stack([now[c][:, 0] for c in structural.COMPONENTS] + [tft_now[..., mid]], axis=1)  # (B,C,H,T)
        if stale.any():
            idx = np.flatnonzero(stale)
            fresh = self._measure_skill([windows[i] for i in idx], hist, idx, origins[idx], profiles, budget)
            for i, state in zip(idx, fresh, strict=True):
                states[i] = state
        weights = _per_step(np.stack([state.weights for state in states]).astype(np.float64), self._interp)
        medians = self._medians(stack_now, weights)
        out = {}
        for b, window in enumerate(windows):
            if "\x00" not in window.server_name:
                self.states[window.server_name] = states[b]
            out[window.server_name] = self._assemble(tft[window.server_name], medians[b], tft_now[b], states[b])
        return out

    def _reusable(self, name: str, last_epoch_s: int) -> BlendState | None:
        """This server's state when its skill is still fresh at ``last_epoch_s`` (else None: measure again)."""
        state = self.states.get(name) if "\x00" not in name else None
        if state is None or not state.origin_epoch_s <= last_epoch_s < state.refresh_at_epoch_s:
            return None
        return state

    def _measure_skill(self, windows: Sequence[MetricsWindow], hist: structural.Histories, rows: np.ndarray,
                       origins: np.ndarray, profiles: Mapping[str, str], budget: list[int]) -> list[BlendState]:
        """Score every component from the past ``origins`` of ``windows`` (rows ``rows`` of ``hist``)."""
        steps = self._skill_steps
        y = hist.y[rows]
        sub = structural.Histories(tuple(w.server_name for w in windows), y, hist.last_epoch_s[rows])
        past = structural.run(structural.COMPONENTS, y, origins[:, 1:], self.horizon_steps, chunk=len(windows),
                              steps=steps)
        stack_past = np.stack([past[c] for c in structural.COMPONENTS]
                              + [self._past_tft(windows, sub, origins, profiles, budget)], axis=1)  # (B,C,K,S,T)
        actual = structural._gather(y, origins[:, 1:, None] + steps[None, None])
        actual = np.where((origins[:, 1:] >= 0)[:, :, None, None], actual, np.nan)  # (B, K, S, T)
        weights_bin, scored = self._weights(stack_past, actual)
        weights = _per_step(weights_bin, self._interp)  # (B, C, H, T)
        sigma_up, sigma_dn, trust = self._spread(stack_past, weights[:, :, steps - 1], actual)
        every = self.config.skill_refresh_steps
        out = []
        for b, window in enumerate(windows):
            last = int(sub.last_epoch_s[b])
            step_no = last // STEP_SECONDS
            phase = zlib.crc32(window.server_name.encode()) % every
            wait = (phase - step_no) % every or every  # the next step on this server's phase
            out.append(BlendState(self.components, last, last + wait * STEP_SECONDS,
                                  weights_bin[b].astype(np.float32), sigma_up[b], sigma_dn[b], trust[b],
                                  int(scored[b])))
        return out

    @staticmethod
    def _medians(components: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """(B, H, T) served medians from the components' (B, C, H, T) forecasts and weights."""
        return np.stack([smooth_path(m) for m in combine(components, weights, axis=1)])

    def _weights(self, past: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, C, nbins, T) weights per bin from the past origins' errors, and the scored origin count."""
        c = self.config
        err = np.abs(past - actual[:, None])  # (B, C, K, H, T)
        per_origin, _ = _bin_mean(err, self._skill_steps)  # (B, C, K, nbins, T)
        scored_k = np.isfinite(per_origin).any(axis=1)  # (B, K, nbins, T)
        n = scored_k.sum(axis=1).astype(np.float64)  # (B, nbins, T)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an unscored bin is NaN on purpose
            if c.recency_half_life_steps > 0:  # recent origins count more: the server as it is now
                k = np.arange(per_origin.shape[2])
                r = (0.5 ** (k * c.skill_stride / c.recency_half_life_steps))[None, None, :, None, None]
                ok = np.isfinite(per_origin)
                loss = (np.where(ok, per_origin, 0.0) * r).sum(axis=2) / (ok * r).sum(axis=2)
            else:
                loss = np.nanmean(per_origin, axis=2)  # (B, C, nbins, T)
        best = np.nanmin(np.where(np.isfinite(loss), loss, np.inf), axis=1)
        floor = SIGMA_FLOOR[None, None, None, :] * 0.2
        rel = (loss + floor) / (best[:, None] + floor)
        shrink = n / (n + c.shrink_origins)
        for j in range(1, len(BINS)):  # a horizon not yet scored: the skill of the longest one that is, half-trusted
            unscored = n[:, j] == 0
            rel[:, :, j] = np.where(unscored[:, None], rel[:, :, j - 1], rel[:, :, j])
            shrink[:, j] = np.where(unscored, 0.5 * shrink[:, j - 1], shrink[:, j])
            n[:, j] = np.where(unscored, n[:, j - 1], n[:, j])
        prior = self._prior()  # (C, nbins, T)
        logw = np.log(prior)[None] - c.beta * shrink[:, None] * (rel - 1.0)
        # unscored everywhere: the prior; a component without a score where others have one: left out
        logw = np.where(n[:, None] == 0, np.log(prior)[None], np.where(np.isfinite(rel), logw, -np.inf))
        logw -= logw.max(axis=1, keepdims=True)
        w = np.exp(logw)
        w /= w.sum(axis=1, keepdims=True)
        return w, scored_k.any(axis=(2, 3)).sum(axis=1)

    def _prior(self) -> np.ndarray:
        prior = np.full((len(self.components), len(BINS), len(TARGETS)), 1.0)
        for t, target in enumerate(TARGETS):
            for ci, comp in enumerate(self.components):
                values = self.config.prior.get(target, {}).get(comp)
                if values is not None and len(values) == len(BINS):
                    prior[ci, :, t] = np.maximum(np.asarray(values, dtype=np.float64), 1e-3)
        return prior / prior.sum(axis=0, keepdims=True)

    def _spread(self, past: np.ndarray, weights: np.ndarray, actual: np.ndarray):
        """Per bin: the down and up spread of the combined forecast's past errors, and how much to trust them.

        The spreads are the 10th and 90th percentiles of the server's own errors in the bin (over origins and
        steps), divided by the normal 90th percentile: whatever the shape of its errors (mostly nothing and
        now and then a jump, or steady noise), p10-p90 covers about 80 % of that server's past.
        """
        combined = combine(past, np.broadcast_to(weights[:, :, None], past.shape), axis=1)
        err = actual - combined  # (B, K, S, T)
        steps = self._skill_steps
        lo_q, hi_q = [], []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a bin without errors yet is NaN on purpose
            for lo, hi in BINS:
                part = err[:, :, (steps >= lo) & (steps <= hi)]
                part = part.reshape(part.shape[0], -1, part.shape[-1])  # (B, K * steps, T)
                empty = np.full((2, part.shape[0], part.shape[-1]), np.nan)
                q = np.nanquantile(part, [0.1, 0.9], axis=1) if part.shape[1] else empty
                lo_q.append(q[0])
                hi_q.append(q[1])
        down = -np.stack(lo_q, axis=1) / _Z[0.9]  # (B, nbins, T)
        up = np.stack(hi_q, axis=1) / _Z[0.9]
        per_origin, _ = _bin_mean(err, steps)
        n = np.isfinite(per_origin).sum(axis=1)
        trust = n / (n + self.config.shrink_origins)
        sigma_up = np.maximum(np.nan_to_num(up), 0.0)  # the floor comes last, in _assemble
        sigma_dn = np.maximum(np.nan_to_num(down), 0.0)
        return sigma_up.astype(np.float32), sigma_dn.astype(np.float32), trust.astype(np.float32)

    def _band_scale(self) -> np.ndarray:
        scale = np.ones((len(BINS), len(TARGETS)))
        for t, target in enumerate(TARGETS):
            values = self.config.band_scale.get(target)
            if values is not None and len(values) == len(BINS):
                scale[:, t] = values
        return scale

    def _assemble(self, tft: Forecast, median: np.ndarray, tft_q: np.ndarray, state: BlendState) -> Forecast:
        """One server's Forecast from its served median (H, T), the TFT's quantiles and its blend state."""
        q = np.asarray(self.quantiles)
        z = np.array([_Z.get(round(float(x), 4), 0.0) for x in q])
        up, down, trust = (_per_step(x.astype(np.float64), self._interp)[:, :, None]  # smooth between bins
                           for x in (state.sigma_up, state.sigma_down, state.trust))
        sigma = np.where(z[None, None, :] >= 0, up, down)
        mid = list(self.quantiles).index(0.5)
        tft_off = tft_q - tft_q[..., mid : mid + 1]
        offsets = trust * z[None, None, :] * sigma + (1 - trust) * tft_off
        offsets *= _per_step(self._band_scale(), self._interp)[:, :, None]
        if self.band_floor:  # after the factor: a quiet server's band is the floor whatever the factor says
            floor_off = z[None, None, :] * SIGMA_FLOOR[None, :, None]
            offsets = np.where(z >= 0, np.maximum(offsets, floor_off), np.minimum(offsets, floor_off))
        values = np.clip(median[..., None] + offsets, 0.0, structural.UPPER[None, :, None])
        values = np.sort(values, axis=-1).astype(np.float32)
        return attrs.evolve(tft, values={t: values[:, j, :] for j, t in enumerate(TARGETS)})


class FrozenBlend:
    """Re-runs one server's blend on changed copies of its window with the weights and spread of one tick.

    Explanations use it: how the inputs drive the served forecast, given the skill the server has shown
    (re-measuring skill on invented histories would explain the skill estimate, not the forecast).
    """

    def __init__(self, blend: BlendForecaster, state: BlendState | None) -> None:
        self.blend, self.state = blend, state
        self.name, self.quantiles = blend.name, blend.quantiles
        self.min_history_steps, self.horizon_steps = blend.min_history_steps, blend.horizon_steps
        self.history_steps = blend.history_steps
        self.spec, self.manifest = blend.spec, blend.manifest
        self.probability_calibration = blend.probability_calibration

    def forecast(self, windows: Sequence[MetricsWindow], profiles: Mapping[str, str]) -> dict[str, Forecast]:
        if self.state is None:
            return self.blend.forecast(windows, profiles)
        tft = self.blend.inner.forecast(windows, profiles)
        ready = [w for w in windows if w.server_name in tft]
        out = {}
        for lo in range(0, len(ready), self.blend.chunk):
            part = ready[lo : lo + self.blend.chunk]
            hist = structural.histories(part, self.history_steps)
            origins = np.full((len(part), 1), hist.y.shape[1] - 1)
            comps = structural.run(structural.COMPONENTS, hist.y, origins, self.horizon_steps, chunk=len(part))
            mid = list(self.quantiles).index(0.5)
            tft_q = np.stack([tft[w.server_name].values_array() for w in part]).astype(np.float64)
            now = np.stack([comps[c][:, 0] for c in structural.COMPONENTS] + [tft_q[..., mid]], axis=1)
            weights = _per_step(self.state.weights.astype(np.float64), self.blend._interp)[None]
            medians = self.blend._medians(now, np.broadcast_to(weights, now.shape))
            for b, w in enumerate(part):
                out[w.server_name] = self.blend._assemble(tft[w.server_name], medians[b], tft_q[b], self.state)
        return out


def _slice_at(window: MetricsWindow, epoch_s: int, tft: TftForecaster, profile: str) -> WindowSlice | None:
    """The TFT's input as it was at ``epoch_s`` (``latest_window`` on the rows up to then), if it ends there."""
    cut = latest_window(window, tft.spec, tft.spec.profile_index(profile), until_epoch_s=epoch_s)
    return cut if cut is not None and cut.last_epoch_s == epoch_s else None


def window_at(series, origin_epoch_s: int, history_steps: int, horizon: int) -> tuple[MetricsWindow, np.ndarray]:
    """A server's rolling window as the engine held it at ``origin_epoch_s``, and what was measured after.

    ``series`` is a ``ServerSeries`` (sorted by time). Returns the window (its last ``history_steps`` rows
    up to the origin) and the (horizon, T) actual targets on the grid after it (NaN where not measured).
    """
    ts = series.ts
    hi = int(np.searchsorted(ts, origin_epoch_s, side="right"))
    lo = int(np.searchsorted(ts, origin_epoch_s - history_steps * STEP_SECONDS, side="right"))
    window = MetricsWindow.from_arrays(series.server_name, history_steps, ts[lo:hi], series.values[lo:hi],
                                       series.status[lo:hi])
    end = int(np.searchsorted(ts, origin_epoch_s + horizon * STEP_SECONDS, side="right"))
    actual = np.full((horizon, len(TARGETS)), np.nan)
    after_ts, after_values, after_status = ts[hi:end], series.values[hi:end], series.status[hi:end]
    keep = (after_status != structural.STATUS_CODE["offline"]) & np.isfinite(after_values).all(axis=1)
    step = np.round((after_ts[keep] - origin_epoch_s) / STEP_SECONDS).astype(np.int64)
    ok = (step >= 1) & (step <= horizon)
    actual[step[ok] - 1] = structural.targets_of(after_values[keep][ok])
    return window, actual
