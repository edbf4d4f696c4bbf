"""The one feature pipeline: raw records -> clean 5-minute segments -> model inputs, for training and serving.

numpy only (no torch, no pandas), so the evaluation, the baselines and the tests can use it cheaply.
Training (``training.py``) and serving (``forecaster.py``) both call ``segments_from_arrays`` and
``encode_windows``; nothing else builds model inputs, so there is no train/serve skew.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np

from argus.domain.forecast import TARGET_FIELDS, TARGETS
from argus.domain.metric_table import METRICS
from argus.domain.metrics import FIELD_INDEX, STATUS_CODE, STEP_SECONDS

OFFLINE = STATUS_CODE["offline"]
MAINTENANCE = STATUS_CODE["maintenance"]
DAY_S = 86_400
WEEK_S = 7 * DAY_S

#: Observed covariates (encoder only), each with its fixed transform: "pct" -> /100, "log" -> log1p.
COVARIATES: tuple[tuple[str, str, str], ...] = (
    ("user_pct_obs", "cpu_user_pct", "pct"),
    ("sys_pct_obs", "cpu_sys_pct", "pct"),
    ("java_pct_obs", "java_cpu_pct", "pct"),
    ("net_in_obs", "net_in_mb_s", "log"),
    ("net_out_obs", "net_out_mb_s", "log"),
    ("back_cw_obs", "back_close_wait", "log"),
    ("front_cw_obs", "front_close_wait", "log"),
)
#: A missing covariate (an optional field its source lacks, NaN in the record) is masked, never a NaN input:
#: each gap takes the server's own last known value of it; before any (or when the source never sends
#: it) the neutral value below, in natural units: what the shipped model's training data held for it
#: (the Bitbrains trace has no system, Java or CLOSE_WAIT signal: constant 0; its network median is
#: under 0.01 MB/s). User CPU is none of these: the training data's user CPU carried the whole busy
#: time, so a missing one is the busy time less I/O wait and system CPU, as it was there.
NEUTRAL_COVARIATE = {"cpu_sys_pct": 0.0, "java_cpu_pct": 0.0, "net_in_mb_s": 0.0, "net_out_mb_s": 0.0,
                     "back_close_wait": 0.0, "front_close_wait": 0.0}
KNOWN_REALS: tuple[str, ...] = ("tod_sin", "tod_cos", "dow_sin", "dow_cos", "rel_time")
#: Known-future guides (models with ``FeatureSpec.guides``): same time yesterday and the recent linear trend,
#: per target, in the window's normalised units, plus an indicator of whether yesterday is in the window.
GUIDE_AVAILABLE = "yday_available"
DAY_STEPS = 288
TREND_STEPS = 72  # least-squares slope over the last 6 h (or the whole encoder when shorter)
GUIDE_CLIP = 10.0  # |z| bound of the guides (short, quiet encoders have tiny scales)
#: Smallest per-window scale of each target (a flat series must not blow up its z-scores), from the metric table.
SCALE_FLOOR = {t: METRICS[t].scale_floor for t in TARGETS}
#: The targets with an upper bound (percentages: 100), which forecasts are clipped to; the others are unbounded.
UPPER_BOUND = {t: bound for t in TARGETS if (bound := METRICS[t].upper_bound) is not None}
#: The targets that fail by sustained drift (leaks, filling disks): training's drift augmentation moves these.
DRIFT_TARGETS: tuple[str, ...] = tuple(t for t in TARGETS if METRICS[t].drifts)


@attrs.frozen
class FeatureSpec:
    """Lengths and vocabularies that fix the network's inputs (stored in the model manifest)."""

    max_encoder_steps: int = 288
    min_encoder_steps: int = 12
    horizon_steps: int = 96
    max_gap_steps: int = 3
    profiles: tuple[str, ...] = ("generic",)  # index 0 of the embedding is "unknown profile"
    #: Known-future guides: same-time-yesterday and trend extrapolation (False: models made before them).
    guides: bool = False

    @property
    def known_reals(self) -> list[str]:
        if not self.guides:
            return list(KNOWN_REALS)
        return [*KNOWN_REALS, GUIDE_AVAILABLE, *(f"{t}_yday_z" for t in TARGETS), *(f"{t}_trend_z" for t in TARGETS)]

    @property
    def static_reals(self) -> list[str]:
        return [f"{t}_{kind}" for t in TARGETS for kind in ("center", "scale")]

    @property
    def unknown_reals(self) -> list[str]:
        return [f"{t}_z" for t in TARGETS] + [name for name, _, _ in COVARIATES]

    @property
    def x_reals(self) -> list[str]:
        return self.static_reals + self.known_reals + self.unknown_reals

    def profile_index(self, profile: str) -> int:
        try:
            return self.profiles.index(profile) + 1
        except ValueError:
            return 0


@attrs.frozen
class Segment:
    """A gap-free stretch of one server on the 5-minute grid."""

    server_name: str
    ts: np.ndarray  # int64 epoch seconds, consecutive steps
    targets: np.ndarray  # (n, len(TARGETS)) float32, natural units
    covariates: np.ndarray  # (n, len(COVARIATES)) float32, transformed

    def __len__(self) -> int:
        return len(self.ts)


_TARGET_COLUMNS = [FIELD_INDEX[TARGET_FIELDS[t]] for t in TARGETS]
_COVARIATE_COLUMNS = [FIELD_INDEX[field] for _, field, _ in COVARIATES]


def targets_from_values(values: np.ndarray) -> np.ndarray:
    """Return the (n, len(TARGETS)) target matrix (cpu_pct = 100 - idle, ...) from rows aligned with METRIC_FIELDS."""
    out = np.stack([METRICS[t].series(values) for t in TARGETS], axis=1)  # in the rows' dtype, as the table reads
    return out.astype(np.float32)


def covariates_from_values(values: np.ndarray) -> np.ndarray:
    """Return the (n, len(COVARIATES)) observed covariates, with their fixed transforms applied.

    ``values`` are one server's rows, oldest first; a missing (non-finite) covariate is masked as
    ``NEUTRAL_COVARIATE`` says, from earlier rows only (no value is taken from the future).
    """
    if np.isfinite(values[:, _COVARIATE_COLUMNS]).all():  # the usual case: nothing to mask
        return _transformed({field: values[:, FIELD_INDEX[field]] for _, field, _ in COVARIATES})
    raw = {field: forward_filled(values[:, FIELD_INDEX[field]]) for _, field, _ in COVARIATES}
    for field, neutral in NEUTRAL_COVARIATE.items():
        raw[field] = np.where(np.isnan(raw[field]), neutral, raw[field])
    user = raw["cpu_user_pct"]
    if np.isnan(user).any():
        idle, iowait = (values[:, FIELD_INDEX[TARGET_FIELDS[t]]].astype(np.float64) for t in ("cpu_pct", "iowait_pct"))
        raw["cpu_user_pct"] = np.where(np.isnan(user), 100.0 - idle - iowait - raw["cpu_sys_pct"], user)
    return np.nan_to_num(_transformed(raw), nan=0.0, posinf=0.0)


def _transformed(raw: dict[str, np.ndarray]) -> np.ndarray:
    cols = []
    for _, field, kind in COVARIATES:
        clipped = np.clip(raw[field].astype(np.float32), 0.0, None)
        cols.append(clipped / 100.0 if kind == "pct" else np.log1p(clipped))
    return np.stack(cols, axis=1).astype(np.float32)


def forward_filled(column: np.ndarray) -> np.ndarray:
    """``column`` (float64) with each NaN or infinity replaced by the last finite value before it (leading ones NaN)."""
    column = np.asarray(column, dtype=np.float64)
    finite = np.isfinite(column)
    if finite.all():
        return column
    idx = np.where(finite, np.arange(len(column)), -1)
    np.maximum.accumulate(idx, out=idx)
    return np.where(idx >= 0, column[np.maximum(idx, 0)], np.nan)


def segments_from_arrays(
    server_name: str, ts: np.ndarray, values: np.ndarray, status: np.ndarray, max_gap_steps: int = 3,
    skip_maintenance: bool = False,
) -> list[Segment]:
    """Put one server's records on the 5-minute grid and split it into gap-free segments.

    ``offline`` rows and rows without every target carry no measurement and are dropped (and
    ``maintenance`` rows when ``skip_maintenance``: training does, so maintenance work is never
    learnt as normal behaviour); a missing covariate keeps its row and is masked (see
    ``covariates_from_values``); gaps of at most ``max_gap_steps``
    missing steps are bridged linearly; longer gaps split the series (no long invented stretches).
    Timestamps are snapped to the nearest grid step; a repeated step keeps its last record.
    """
    keep = (status != OFFLINE) & np.isfinite(values[:, _TARGET_COLUMNS]).all(axis=1)
    if skip_maintenance:
        keep &= status != MAINTENANCE
    ts, values = np.asarray(ts, dtype=np.int64)[keep], values[keep]
    if len(ts) == 0:
        return []
    order = np.argsort(ts, kind="stable")
    steps = np.round(ts[order] / STEP_SECONDS).astype(np.int64)
    values = values[order]
    last = np.append(steps[1:] != steps[:-1], True)
    steps, values = steps[last], values[last]
    feats = np.concatenate([targets_from_values(values), covariates_from_values(values)], axis=1)
    breaks = np.flatnonzero(np.diff(steps) > max_gap_steps + 1) + 1
    segments = []
    for part_steps, part in zip(np.split(steps, breaks), np.split(feats, breaks), strict=True):
        grid = np.arange(part_steps[0], part_steps[-1] + 1, dtype=np.int64)
        if len(grid) != len(part_steps):
            part = np.stack([np.interp(grid, part_steps, part[:, j]) for j in range(part.shape[1])], axis=1)
        part = part.astype(np.float32)
        segments.append(Segment(server_name, grid * STEP_SECONDS, part[:, : len(TARGETS)], part[:, len(TARGETS) :]))
    return segments


@attrs.frozen
class WindowSlice:
    """One model input: the encoder part of a segment (oldest first) and, in training, the future."""

    targets: np.ndarray  # (L, 6)
    covariates: np.ndarray  # (L, k)
    last_epoch_s: int
    profile_index: int
    future: np.ndarray | None = None  # (H, 6), training and evaluation only


def target_scales(targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return per-target (center, scale) of one encoder window: its own last value and floored std.

    Centering on the last value makes "no change" the network's zero, which is hard to beat
    over the first hours on real fleets (measured: last value beat the window mean by far at 30 min).
    """
    center = targets[-1]
    floor = np.array([SCALE_FLOOR[t] for t in TARGETS], dtype=np.float32)
    scale = np.maximum(targets.std(axis=0), floor)
    return center.astype(np.float32), scale.astype(np.float32)


def _scale_features(center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Static reals telling the network the absolute level: /100 for percentages, log1p for load."""
    out = np.empty(2 * len(TARGETS), dtype=np.float32)
    for i, name in enumerate(TARGETS):
        if name in UPPER_BOUND:
            out[2 * i], out[2 * i + 1] = center[i] / 100.0, scale[i] / 100.0
        else:
            out[2 * i], out[2 * i + 1] = np.log1p(max(center[i], 0.0)), np.log1p(scale[i])
    return out


def time_features(epoch_s: np.ndarray) -> np.ndarray:
    """Return (n, 4): time of day and day of week (Monday = 0) as sine/cosine, in UTC."""
    tod = 2 * np.pi * (epoch_s % DAY_S) / DAY_S
    dow = 2 * np.pi * ((epoch_s + 3 * DAY_S) % WEEK_S) / WEEK_S
    return np.stack([np.sin(tod), np.cos(tod), np.sin(dow), np.cos(dow)], axis=1).astype(np.float32)


def _smooth(z: np.ndarray, width: int = 5) -> np.ndarray:
    """Centred moving average along axis 0 (fewer points at the edges): a less noisy yesterday."""
    csum = np.concatenate([np.zeros((1, z.shape[1]), dtype=np.float64), np.cumsum(z, axis=0, dtype=np.float64)])
    idx = np.arange(len(z))
    lo, hi = np.maximum(idx - width // 2, 0), np.minimum(idx + width // 2 + 1, len(z))
    return ((csum[hi] - csum[lo]) / (hi - lo)[:, None]).astype(np.float32)


def guide_features(z: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Known-future guides of one window from its normalised encoder targets ``z`` (L, 6).

    Returns (encoder part (L, 13), decoder part (H, 13)): the yesterday indicator, same time yesterday
    (5-step smoothed; 0 = last value where the encoder does not reach back a day) and the least-squares
    line of the last ``TREND_STEPS`` extrapolated to each step (0 in the encoder, which has the values).
    """
    length, n_tgt = z.shape
    n_guides = 1 + 2 * n_tgt
    enc, dec = np.zeros((length, n_guides), np.float32), np.zeros((horizon, n_guides), np.float32)
    # same time yesterday of decoder step h (1-based) sits at encoder position length - 1 + h - DAY_STEPS
    pos = length - 1 + np.arange(1, horizon + 1) - DAY_STEPS
    ok = pos >= 0
    if ok.any():
        dec[ok, 0] = 1.0
        dec[ok, 1 : 1 + n_tgt] = _smooth(z)[pos[ok]]
    fit = z[-min(TREND_STEPS, length) :].astype(np.float64)
    if len(fit) >= 2:
        k = np.arange(len(fit), dtype=np.float64) - (len(fit) - 1)
        kc = k - k.mean()
        slope = (kc[:, None] * (fit - fit.mean(axis=0))).sum(axis=0) / (kc**2).sum()
        dec[:, 1 + n_tgt :] = np.arange(1, horizon + 1)[:, None] * slope[None, :]
    np.clip(dec, -GUIDE_CLIP, GUIDE_CLIP, out=dec)
    return enc, dec


def encode_windows(windows: Sequence[WindowSlice], spec: FeatureSpec) -> dict[str, np.ndarray]:
    """Build the TFT's input arrays for a batch (encoders right-padded, as pytorch-forecasting expects).

    Returns numpy arrays keyed like the network's ``x`` plus ``center``/``scale`` (B, 6) and, when
    every window has a future, ``future_z`` (B, H, 6): the normalised targets for the loss.
    """
    n, enc_max, horizon = len(windows), max(len(w.targets) for w in windows), spec.horizon_steps
    n_reals, n_static, n_tgt = len(spec.x_reals), len(spec.static_reals), len(TARGETS)
    n_known = len(spec.known_reals)
    enc = np.zeros((n, enc_max, n_reals), dtype=np.float32)
    dec = np.zeros((n, horizon, n_reals), dtype=np.float32)
    centers = np.empty((n, n_tgt), dtype=np.float32)
    scales = np.empty((n, n_tgt), dtype=np.float32)
    lengths = np.array([len(w.targets) for w in windows], dtype=np.int64)
    steps_ahead = np.arange(1, horizon + 1, dtype=np.int64) * STEP_SECONDS
    for i, w in enumerate(windows):
        length = lengths[i]
        center, scale = target_scales(w.targets)
        centers[i], scales[i] = center, scale
        static = _scale_features(center, scale)
        enc[i, :length, :n_static] = static
        dec[i, :, :n_static] = static
        enc_ts = w.last_epoch_s - np.arange(length - 1, -1, -1, dtype=np.int64) * STEP_SECONDS
        enc[i, :length, n_static : n_static + 4] = time_features(enc_ts)
        dec[i, :, n_static : n_static + 4] = time_features(w.last_epoch_s + steps_ahead)
        enc[i, :length, n_static + 4] = (np.arange(length) - length) / spec.max_encoder_steps
        dec[i, :, n_static + 4] = np.arange(horizon) / spec.max_encoder_steps
        unknown = n_static + n_known
        z = (w.targets - center) / scale
        enc[i, :length, unknown : unknown + n_tgt] = z
        if spec.guides:
            g0 = n_static + len(KNOWN_REALS)
            enc[i, :length, g0:unknown], dec[i, :, g0:unknown] = guide_features(z, horizon)
        enc[i, :length, unknown + n_tgt :] = w.covariates
    profile = np.array([w.profile_index for w in windows], dtype=np.int64)
    out = {
        "encoder_cont": enc,
        "decoder_cont": dec,
        "encoder_cat": np.repeat(profile[:, None, None], enc_max, axis=1),
        "decoder_cat": np.repeat(profile[:, None, None], horizon, axis=1),
        "encoder_lengths": lengths,
        "decoder_lengths": np.full(n, horizon, dtype=np.int64),
        "center": centers,
        "scale": scales,
    }
    if all(w.future is not None for w in windows):
        future = np.stack([w.future for w in windows])  # type: ignore[misc]
        out["future_z"] = ((future - centers[:, None, :]) / scales[:, None, :]).astype(np.float32)
    return out


def denormalize(z: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Turn network output (B, H, 6, Q) back into natural units: bounded, quantiles sorted."""
    out = z * scale[:, None, :, None] + center[:, None, :, None]
    upper = np.array([UPPER_BOUND.get(t, np.inf) for t in TARGETS], dtype=np.float32)
    out = np.clip(out, 0.0, upper[None, None, :, None])
    return np.sort(out, axis=-1)


def window_from_segment(segment: Segment, end: int, spec: FeatureSpec, profile_index: int,
                        encoder_steps: int | None = None, with_future: bool = False) -> WindowSlice:
    """Cut the window whose last observation is ``segment[end - 1]`` (and its future when asked)."""
    length = min(encoder_steps or spec.max_encoder_steps, end)
    start = end - length
    future = segment.targets[end : end + spec.horizon_steps] if with_future else None
    return WindowSlice(segment.targets[start:end], segment.covariates[start:end],
                       int(segment.ts[end - 1]), profile_index, future)
