"""Rolling-origin backtest of a TFT against seasonal naive and last value on the same origins."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from argus.adapters.tft.data import ServerSeries, load_series
from argus.adapters.tft.features import FeatureSpec, Segment, WindowSlice, segments_from_arrays
from argus.domain.forecast import TARGETS

DAY_STEPS = 288
BUCKETS = {"30m": 6, "2h": 24, "8h": None}  # first N steps; None = the whole horizon


def _iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds")


def season_scale(segments: list[Segment], before: int) -> np.ndarray:
    """Per-target MAE of same-time-yesterday on the history before ``before`` (the MASE denominator)."""
    total, count = np.zeros(len(TARGETS)), 0
    for seg in segments:
        y = seg.targets[seg.ts < before]
        if len(y) > DAY_STEPS:
            total += np.abs(y[DAY_STEPS:] - y[:-DAY_STEPS]).sum(axis=0)
            count += len(y) - DAY_STEPS
    return total / count if count else np.full(len(TARGETS), np.nan)


def pick_origins(segments: list[Segment], spec: FeatureSpec, start: int, k: int) -> list[tuple[int, int]]:
    """Return up to ``k`` (segment, end) pairs spread evenly over origins at or after ``start``.

    An origin needs a day of history in its segment (for seasonal naive) and a full horizon after.
    """
    candidates = []
    for i, seg in enumerate(segments):
        first = max(DAY_STEPS, spec.max_encoder_steps)
        for end in range(first, len(seg) - spec.horizon_steps + 1):
            if seg.ts[end - 1] >= start:
                candidates.append((i, end))
    if len(candidates) <= k:
        return candidates
    picks = np.linspace(0, len(candidates) - 1, k).round().astype(int)
    return [candidates[p] for p in picks]


def backtest(forecaster, series: Mapping[str, ServerSeries], start: int, origins: int,
             profiles: Mapping[str, str]) -> dict[str, np.ndarray]:
    """Forecast every origin; return stacked arrays (windows, H, 6[, Q]) plus server ids and scales."""
    spec: FeatureSpec = forecaster.spec
    rows, slices, actual, snaive, last, servers, scales = [], [], [], [], [], [], []
    for name in sorted(series):
        s = series[name]
        segments = segments_from_arrays(name, s.ts, s.values, s.status, spec.max_gap_steps)
        chosen = pick_origins(segments, spec, start, origins)
        if not chosen:
            continue
        scales.append(season_scale(segments, start))
        profile_index = spec.profile_index(profiles.get(name, "generic"))
        for seg_i, end in chosen:
            seg = segments[seg_i]
            n = min(end, spec.max_encoder_steps)
            slices.append(WindowSlice(seg.targets[end - n : end], seg.covariates[end - n : end],
                                      int(seg.ts[end - 1]), profile_index))
            actual.append(seg.targets[end : end + spec.horizon_steps])
            snaive.append(seg.targets[end - DAY_STEPS : end - DAY_STEPS + spec.horizon_steps])
            last.append(np.repeat(seg.targets[end - 1][None, :], spec.horizon_steps, axis=0))
            servers.append(len(scales) - 1)
            rows.append((name, int(seg.ts[end - 1])))
    if not slices:
        raise ValueError("no forecast origin has a day of history and a full horizon in the evaluation period")
    preds = [forecaster.predict_slices(slices[i : i + 128])[0] for i in range(0, len(slices), 128)]
    return {"pred": np.concatenate(preds), "actual": np.stack(actual), "snaive": np.stack(snaive),
            "last": np.stack(last), "server": np.asarray(servers), "scale": np.stack(scales), "rows": rows}


def _geo_mean(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x) & (x > 0)]
    return float(np.exp(np.log(x).mean())) if len(x) else None


def _point_metrics(err: np.ndarray, ref_err: np.ndarray, server: np.ndarray, scale: np.ndarray) -> dict:
    """MAE pooled; MASE = mean over servers of MAE / scale; rel MASE = geometric mean of MAE / reference MAE."""
    n_srv = scale.shape[0]
    mae_srv = np.array([err[server == s].mean() for s in range(n_srv)])
    ref_srv = np.array([ref_err[server == s].mean() for s in range(n_srv)])
    with np.errstate(divide="ignore", invalid="ignore"):
        mase = mae_srv / scale
        rel = mae_srv / ref_srv
    mase = mase[np.isfinite(mase)]
    return {"mae": round(float(err.mean()), 4), "mase": round(float(mase.mean()), 4) if len(mase) else None,
            "rel_mase": None if (g := _geo_mean(rel)) is None else round(g, 4),
            "servers_with_scale": int(len(mase))}


def score(result: Mapping[str, np.ndarray], quantiles: tuple[float, ...]) -> dict:
    """Metrics per target and horizon bucket for the model and both baselines."""
    q = np.asarray(quantiles)
    lo, mid, hi = list(quantiles).index(0.1), list(quantiles).index(0.5), list(quantiles).index(0.9)
    pred, actual, server = result["pred"], result["actual"], result["server"]
    model: dict = {}
    baselines: dict = {"seasonal_naive": {}, "last_value": {}}
    for j, target in enumerate(TARGETS):
        model[target], scale = {}, result["scale"][:, j]
        for b in baselines:
            baselines[b][target] = {}
        for bucket, steps in BUCKETS.items():
            sl = slice(0, steps)
            y, p = actual[:, sl, j], pred[:, sl, j, :]
            ref_err = np.abs(result["snaive"][:, sl, j] - y).mean(axis=1)
            err = np.abs(p[..., mid] - y).mean(axis=1)
            diff = y[..., None] - p
            pinball = np.maximum(q * diff, (q - 1) * diff).mean()
            model[target][bucket] = {
                **_point_metrics(err, ref_err, server, scale),
                "coverage_80": round(float(((y >= p[..., lo]) & (y <= p[..., hi])).mean()), 4),
                "pinball": round(float(pinball), 4),
            }
            baselines["seasonal_naive"][target][bucket] = _point_metrics(ref_err, ref_err, server, scale)
            last_err = np.abs(result["last"][:, sl, j] - y).mean(axis=1)
            baselines["last_value"][target][bucket] = _point_metrics(last_err, ref_err, server, scale)
    return {"targets": model, "baselines": baselines}


def evaluate(forecaster, source: str | Path | Mapping[str, ServerSeries], origins: int = 8,
             servers: str = "all", start_epoch_s: int | None = None, eval_days: float = 7.0,
             profiles: Mapping[str, str] | None = None) -> dict:
    """Backtest ``forecaster`` (a TftForecaster) on ``source``; return the JSON-ready report.

    Origins start where the model's training data ended (``trained_before`` in its manifest) when the
    file reaches past it, else ``eval_days`` before the end. ``servers``: all, unseen (held out of
    training) or seen.
    """
    series = dict(source) if isinstance(source, Mapping) else load_series(source)
    data = forecaster.manifest.get("training", {}).get("data", {})
    if servers != "all":
        trained = set(data.get("server_names", []))
        series = {n: s for n, s in series.items() if (n in trained) == (servers == "seen")}
    if not series:
        raise ValueError(f"no {servers} servers in the data")
    end = max(int(s.ts.max()) for s in series.values())
    if start_epoch_s is None:
        trained_before = data.get("trained_before")
        cut = int(datetime.fromisoformat(trained_before).timestamp()) if trained_before else end + 1
        start_epoch_s = cut if cut <= end - 86_400 else end - int(eval_days * 86_400)
    result = backtest(forecaster, series, start_epoch_s, origins, profiles or {})
    report = {
        "model": forecaster.name,
        "servers": servers,
        "n_servers": int(result["scale"].shape[0]),
        "windows": int(len(result["rows"])),
        "origins_per_server": origins,
        "period_start": _iso(start_epoch_s),
        "period_end": _iso(end),
        "horizon_steps": forecaster.horizon_steps,
        "quantiles": list(forecaster.quantiles),
        "notes": "MASE scale: same-time-yesterday MAE on each server's history before period_start; "
                 "rel_mase: geometric mean over servers of MAE / seasonal-naive MAE on the same origins.",
        **score(result, forecaster.quantiles),
    }
    return report, result


def format_table(report: Mapping) -> str:
    """Render the headline numbers as a text table."""
    lines = [f"model {report['model']}: {report['n_servers']} servers ({report['servers']}), "
             f"{report['windows']} origins, {report['period_start']} .. {report['period_end']}",
             f"{'target':<11}{'bucket':<7}{'MAE':>8}{'MASE':>8}{'relMASE':>9}{'cov80':>7}{'pinball':>9}"
             f"{'sn MAE':>8}{'lv MAE':>8}{'lv rel':>8}"]
    for target, buckets in report["targets"].items():
        for bucket, m in buckets.items():
            sn = report["baselines"]["seasonal_naive"][target][bucket]
            lv = report["baselines"]["last_value"][target][bucket]

            def f(v, w=8):
                return f"{'-':>{w}}" if v is None else f"{v:>{w}.3f}"

            lines.append(f"{target:<11}{bucket:<7}{f(m['mae'])}{f(m['mase'])}{f(m['rel_mase'], 9)}"
                         f"{f(m['coverage_80'], 7)}{f(m['pinball'], 9)}{f(sn['mae'])}{f(lv['mae'])}"
                         f"{f(lv['rel_mase'])}")
    return "\n".join(lines)


def plot_examples(result: Mapping, quantiles: tuple[float, ...], path: str | Path, count: int = 4) -> None:
    """Save a PNG of a few forecasts (p10-p90 band, median, seasonal naive) against actuals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo, mid, hi = list(quantiles).index(0.1), list(quantiles).index(0.5), list(quantiles).index(0.9)
    picks = np.linspace(0, len(result["rows"]) - 1, count).round().astype(int)
    fig, axes = plt.subplots(count, 2, figsize=(12, 2.6 * count), squeeze=False)
    for r, i in enumerate(picks):
        name, origin = result["rows"][i]
        for c, j in enumerate((TARGETS.index("cpu_pct"), TARGETS.index("mem_pct"))):
            ax, h = axes[r, c], np.arange(1, result["actual"].shape[1] + 1) * 5 / 60
            ax.fill_between(h, result["pred"][i, :, j, lo], result["pred"][i, :, j, hi], alpha=0.3,
                            label="TFT p10-p90")
            ax.plot(h, result["pred"][i, :, j, mid], label="TFT p50")
            ax.plot(h, result["snaive"][i, :, j], ":", label="seasonal naive")
            ax.plot(h, result["actual"][i, :, j], "k", lw=1, label="actual")
            ax.set_title(f"{name} {TARGETS[j]} from {_iso(origin)}", fontsize=8)
            ax.set_xlabel("hours ahead", fontsize=7)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def trend_check(forecaster, origin_epoch_s: int = 1_736_899_200 + 3 * 86_400, seed: int = 0) -> dict:
    """Does the median follow a sustained trend and repeat a daily cycle? Synthetic windows, natural units.

    - ``mem_leak``: memory rising 0.1 pt/step from 60 % over the last 24 h (ends near 89 %); the median
      should keep rising (ideal: +2.4 pt at 2 h, +9.6 pt at 8 h, capped at 100).
    - ``disk_fill``: disk rising 0.05 pt/step from 50 % (ideal: +1.2 at 2 h, +4.8 at 8 h).
    - ``cpu_daily``: CPU 40 + 20 sin(day) with noise; the median's MAE against the true cycle over 8 h,
      next to a flat forecast's (last value) MAE.
    """
    spec = forecaster.spec
    enc, horizon = spec.max_encoder_steps, spec.horizon_steps
    rng = np.random.default_rng(seed)
    t = np.arange(-(enc - 1), horizon + 1, dtype=np.float64)  # 0 = last encoder step
    ts = origin_epoch_s + t * 300

    def base() -> np.ndarray:
        out = np.zeros((len(t), len(TARGETS)), dtype=np.float64)
        out[:, TARGETS.index("cpu_pct")] = 20 + rng.normal(0, 2, len(t))
        out[:, TARGETS.index("mem_pct")] = 50 + rng.normal(0, 0.3, len(t))
        out[:, TARGETS.index("disk_pct")] = 50.0
        out[:, TARGETS.index("load")] = 0.8 + rng.normal(0, 0.05, len(t))
        return out

    cases = {}
    leak = base()
    leak[:, TARGETS.index("mem_pct")] = np.clip(60 + 0.1 * (t + enc - 1) + rng.normal(0, 0.3, len(t)), 0, 100)
    cases["mem_leak"] = (leak, "mem_pct")
    disk = base()
    disk[:, TARGETS.index("disk_pct")] = 50 + 0.05 * (t + enc - 1)
    cases["disk_fill"] = (disk, "disk_pct")
    daily = base()
    cycle = 40 + 20 * np.sin(2 * np.pi * ts / 86_400)
    daily[:, TARGETS.index("cpu_pct")] = cycle + rng.normal(0, 2, len(t))
    cases["cpu_daily"] = (daily, "cpu_pct")

    slices = []
    for series, _ in cases.values():
        targets = np.clip(series[:enc], 0, None).astype(np.float32)
        cov = np.zeros((enc, 7), dtype=np.float32)
        cov[:, 0] = targets[:, TARGETS.index("cpu_pct")] * 0.8 / 100
        slices.append(WindowSlice(targets, cov, int(ts[enc - 1]), 0))
    pred, _ = forecaster.predict_slices(slices)
    mid = list(forecaster.quantiles).index(0.5)
    out = {}
    for i, (case, (series, target)) in enumerate(cases.items()):
        j = TARGETS.index(target)
        last = float(series[enc - 1, j])
        median = pred[i, :, j, mid]
        truth = series[enc:, j] if case != "cpu_daily" else cycle[enc:]
        out[case] = {
            "target": target, "last": round(last, 2),
            "median_2h_minus_last": round(float(median[23] - last), 2),
            "median_8h_minus_last": round(float(median[-1] - last), 2),
            "ideal_2h_minus_last": round(float(truth[23] - last), 2),
            "ideal_8h_minus_last": round(float(truth[-1] - last), 2),
            "mae_vs_truth": round(float(np.abs(median - truth).mean()), 2),
            "mae_flat_vs_truth": round(float(np.abs(last - truth).mean()), 2),
        }
    return out
