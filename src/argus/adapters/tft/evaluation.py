"""Rolling-origin backtest of the served forecaster beside simple peers on the same windows; a trend check.

Every origin is replayed as the engine would have seen it: ``blend.window_at`` cuts the server's window
at the origin (``history_steps`` rows up to it) and what was measured after it; the served forecaster
(``BlendForecaster``, or any ``Forecaster``) forecasts those windows in batches, and on exactly the same
windows every ``structural.PEERS`` entry and the TFT alone (the blend's ``inner``) are scored. The
served/peer MAE ratio carries a server-bootstrap 90 % interval (servers resampled with replacement).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import attrs
import numpy as np

from argus.adapters import blend, structural
from argus.adapters.blend import window_at
from argus.adapters.tft.data import ServerSeries, load_series
from argus.adapters.tft.features import Segment, segments_from_arrays
from argus.domain.forecast import TARGETS
from argus.domain.metrics import FIELD_INDEX, METRIC_FIELDS, STATUS_CODE, STEP_SECONDS, MetricsWindow

DAY_STEPS = 288
DAY_S = 86_400
BUCKETS = {"30m": 6, "2h": 24, "8h": None}  # first N steps; None = the whole horizon
TFT_ALONE = "tft_alone"
WINDOWS_PER_CALL = 64  # windows per forecast call (one origin per server in a call)
DEFAULT_HISTORY_STEPS = 2880  # for forecasters that do not say how much history they want
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
BOOTSTRAP_LEVEL = 0.9
#: A server "varies" on a target when its MASE scale (same-time-yesterday MAE before the period) is above twice
#: the served band's floor (blend.SIGMA_FLOOR): below it the floor alone covers every point, so coverage there
#: says nothing about calibration (a band cannot be both never zero-wide and 80 % on a constant).
VARYING_SCALE = {t: float(v) for t, v in zip(TARGETS, blend.VARYING_SCALE, strict=True)}
#: Peers shown in the text table (every peer is in the JSON).
TABLE_PEERS = ("last_value", "seasonal_naive", "same_time_median_7d", "predict_linear_1h", "predict_linear_6h",
               "damped_trend", TFT_ALONE)


def _iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds")


def _sorted(series: ServerSeries) -> ServerSeries:
    """The same series sorted by time (stable: a repeated timestamp keeps its file order)."""
    order = np.argsort(series.ts, kind="stable")
    return attrs.evolve(series, ts=series.ts[order], values=series.values[order], status=series.status[order])


def season_scale(segments: list[Segment], before: int) -> np.ndarray:
    """Per-target MAE of same-time-yesterday on the history before ``before`` (the MASE denominator)."""
    total, count = np.zeros(len(TARGETS)), 0
    for seg in segments:
        y = seg.targets[seg.ts < before]
        if len(y) > DAY_STEPS:
            total += np.abs(y[DAY_STEPS:] - y[:-DAY_STEPS]).sum(axis=0)
            count += len(y) - DAY_STEPS
    return total / count if count else np.full(len(TARGETS), np.nan)


def pick_origins(segments: list[Segment], spec, start: int, k: int,
                 measured: np.ndarray | None = None) -> list[tuple[int, int]]:
    """Return up to ``k`` (segment, end) pairs spread evenly over origins at or after ``start``.

    An origin (``segment.ts[end - 1]``) needs a day of history in its segment (for seasonal naive) and
    a full horizon after it. ``measured``: grid epochs of measured records; origins on a step the
    segment only bridged (interpolated) are skipped, so the forecast starts where the window ends.
    """
    candidates: list[tuple[int, int]] = []
    first = max(DAY_STEPS, spec.max_encoder_steps)
    for i, seg in enumerate(segments):
        ends = np.arange(first, len(seg) - spec.horizon_steps + 1)
        if len(ends) == 0:
            continue
        at = seg.ts[ends - 1]
        ok = at >= start
        if measured is not None:
            ok &= np.isin(at, measured)
        candidates.extend((i, int(e)) for e in ends[ok])
    if len(candidates) <= k:
        return candidates
    picks = np.linspace(0, len(candidates) - 1, k).round().astype(int)
    return [candidates[p] for p in picks]


def _measured_grid(series: ServerSeries) -> tuple[np.ndarray, np.ndarray]:
    """(grid epochs, raw epochs) of the measured records of a sorted series."""
    keep = (series.status != STATUS_CODE["offline"]) & np.isfinite(series.values).all(axis=1)
    raw = series.ts[keep]
    return np.round(raw / STEP_SECONDS).astype(np.int64) * STEP_SECONDS, raw


def plan_origins(forecaster, series: Mapping[str, ServerSeries], start: int,
                 origins: int) -> tuple[dict[str, ServerSeries], dict[str, list[int]], dict[str, np.ndarray]]:
    """Sorted series, up to ``origins`` origin epochs per server (at or after ``start``), MASE scales."""
    spec = forecaster.spec
    ordered, plan, scales = {}, {}, {}
    for name in sorted(series):
        s = _sorted(series[name])
        grid, raw = _measured_grid(s)
        segments = segments_from_arrays(name, s.ts, s.values, s.status, spec.max_gap_steps)
        chosen = pick_origins(segments, spec, start, origins, measured=grid)
        if not chosen:
            continue
        at = np.searchsorted(grid, [int(segments[i].ts[end - 1]) for i, end in chosen])
        ordered[name], plan[name] = s, [int(raw[a]) for a in at]
        scales[name] = season_scale(segments, start)
    return ordered, plan, scales


def backtest(forecaster, series: Mapping[str, ServerSeries], start: int, origins: int,
             profiles: Mapping[str, str], batch: int = WINDOWS_PER_CALL) -> dict:
    """Forecast every origin with the served forecaster, its TFT alone and every peer, on the same windows.

    Returns ``pred`` (N, H, T, Q) served quantiles, ``tft`` (N, H, T, Q) or None (no ``inner``),
    ``peers`` {name: (N, H, T)}, ``actual`` (N, H, T) NaN where not measured, ``server`` (N,) indices
    into ``names``, ``scale`` (S, T) MASE scales and ``rows`` [(server, origin epoch)]. A call never
    holds the same server twice (forecasts are keyed by server name).
    """
    horizon = forecaster.horizon_steps
    steps = int(getattr(forecaster, "history_steps", DEFAULT_HISTORY_STEPS))
    inner = getattr(forecaster, "inner", None)
    ordered, plan, scales = plan_origins(forecaster, series, start, origins)
    if not plan:
        raise ValueError("no forecast origin has a day of history and a full horizon in the evaluation period")
    names = list(plan)
    index = {n: i for i, n in enumerate(names)}
    pred, tft_pred, actual, server, rows = [], [], [], [], []
    peers: dict[str, list[np.ndarray]] = {p: [] for p in structural.PEERS}
    for k in range(max(len(v) for v in plan.values())):
        todo = [(n, plan[n][k]) for n in names if k < len(plan[n])]
        for lo in range(0, len(todo), batch):
            part = todo[lo : lo + batch]
            cut = [window_at(ordered[n], o, steps, horizon) for n, o in part]
            windows = [w for w, _ in cut]
            served = forecaster.forecast(windows, profiles)
            alone = inner.forecast(windows, profiles) if inner is not None else None
            hist = structural.histories(windows, steps)
            simple = structural.run(structural.PEERS, hist.y, np.full((len(windows), 1), steps - 1), horizon,
                                    chunk=len(windows))
            for b, ((name, origin), (_, future)) in enumerate(zip(part, cut, strict=True)):
                snapped = round(origin / STEP_SECONDS) * STEP_SECONDS
                f = served.get(name)
                t = alone.get(name) if alone is not None else None
                if (f is None or f.last_observation_epoch_s != snapped or int(hist.last_epoch_s[b]) != snapped
                        or (alone is not None and (t is None or t.last_observation_epoch_s != snapped))
                        or not np.isfinite(future).any()):
                    continue
                pred.append(f.values_array())
                if t is not None:
                    tft_pred.append(t.values_array())
                for p in peers:
                    peers[p].append(simple[p][b, 0])
                actual.append(future)
                server.append(index[name])
                rows.append((name, origin))
    if not rows:
        raise ValueError("no forecast origin could be forecast and scored in the evaluation period")
    return {"pred": np.stack(pred).astype(np.float64),
            "tft": np.stack(tft_pred).astype(np.float64) if inner is not None else None,
            "peers": {p: np.stack(v) for p, v in peers.items()}, "actual": np.stack(actual),
            "server": np.asarray(server), "names": names, "scale": np.stack([scales[n] for n in names]),
            "rows": rows}


def _geo_mean(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x) & (x > 0)]
    return float(np.exp(np.log(x).mean())) if len(x) else None


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


def server_bootstrap_ratio(num: np.ndarray, den: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES,
                           seed: int = BOOTSTRAP_SEED, level: float = BOOTSTRAP_LEVEL) -> dict:
    """Pooled ratio sum(num) / sum(den) and its server-bootstrap interval.

    ``num``/``den``: per-server sums of absolute errors of two forecasters over the same points (so
    the ratio of sums is the ratio of MAEs). Servers are resampled with replacement ``resamples`` times
    (seeded); each resample's ratio is that of its resampled sums; the interval is the central
    ``level`` share of those ratios.
    """
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    n = len(num)
    if n == 0 or den.sum() <= 0:
        return {"ratio": None, "ci90": [None, None]}
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(resamples, n))
    weights = np.bincount((np.arange(resamples)[:, None] * n + draws).ravel(),
                          minlength=resamples * n).reshape(resamples, n).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = (weights @ num) / (weights @ den)
    ratios = ratios[np.isfinite(ratios)]
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(ratios, [tail, 100 - tail]) if len(ratios) else (np.nan, np.nan)
    return {"ratio": _round(num.sum() / den.sum()), "ci90": [_round(lo), _round(hi)]}


def _pinball(y: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Mean pinball loss over quantiles: (..., Q) forecasts, (...) actuals -> (...)."""
    diff = y[..., None] - p
    return np.maximum(q * diff, (q - 1) * diff).mean(axis=-1)


def score(result: Mapping, quantiles: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES,
          seed: int = BOOTSTRAP_SEED) -> dict:
    """Metrics per target and bucket: the served forecaster under ``targets``, every peer under ``peers``.

    All are scored on the same points: a (window, step) counts where the actual was measured and every
    forecaster gave a finite value. MAE is pooled over those points.
    """
    q = np.asarray(quantiles, dtype=np.float64)
    lo, mid, hi = (list(quantiles).index(x) for x in (0.1, 0.5, 0.9))
    pred, tft, actual, server = result["pred"], result["tft"], result["actual"], result["server"]
    n_srv = result["scale"].shape[0]
    names = [*result["peers"], *([TFT_ALONE] if tft is not None else [])]
    served: dict = {}
    peers: dict = {name: {} for name in names}
    for j, target in enumerate(TARGETS):
        served[target] = {}
        for name in names:
            peers[name][target] = {}
        scale = result["scale"][:, j]
        for bucket, steps in BUCKETS.items():
            sl = slice(0, steps)
            y = actual[:, sl, j]
            points = {name: result["peers"][name][:, sl, j] for name in result["peers"]}
            if tft is not None:
                points[TFT_ALONE] = tft[:, sl, j, mid]
            p_served = pred[:, sl, j, :]
            mask = np.isfinite(y) & np.isfinite(p_served).all(axis=-1)
            for p in points.values():
                mask &= np.isfinite(p)
            yz = np.where(mask, y, 0.0)

            def per_server(values: np.ndarray, mask=mask) -> np.ndarray:
                return np.bincount(server, weights=np.where(mask, values, 0.0).sum(axis=1), minlength=n_srv)

            count = per_server(np.ones_like(y))
            active = count > 0
            total = count.sum()
            abs_err = {name: np.abs(np.where(mask, p, 0.0) - yz) for name, p in points.items()}
            sums = {name: per_server(e) for name, e in abs_err.items()}
            served_sum = per_server(np.abs(np.where(mask, p_served[..., mid], 0.0) - yz))
            ref = sums["seasonal_naive"]

            def point_metrics(err_sum: np.ndarray, ref=ref, active=active, count=count, scale=scale,
                              total=total) -> dict:
                with np.errstate(divide="ignore", invalid="ignore"):
                    mae_srv = err_sum[active] / count[active]
                    mase = mae_srv / scale[active]
                    rel = mae_srv / (ref[active] / count[active])
                mase = mase[np.isfinite(mase)]
                return {"mae": _round(err_sum.sum() / total) if total else None,
                        "mase": _round(mase.mean()) if len(mase) else None,
                        "rel_mase": _round(_geo_mean(rel)),
                        "servers_with_scale": int(len(mase))}

            qz = np.where(mask[..., None], p_served, 0.0)
            inside = (yz >= qz[..., lo]) & (yz <= qz[..., hi]) & mask
            varying = active & (scale > VARYING_SCALE[target])
            varying_total = count[varying].sum()
            varying_inside = per_server(inside.astype(np.float64))[varying].sum()
            served[target][bucket] = {
                **point_metrics(served_sum),
                "coverage_80": _round(inside.sum() / total) if total else None,
                "coverage_80_varying": _round(varying_inside / varying_total) if varying_total else None,
                "varying_servers": int(varying.sum()),
                "pinball": _round(np.where(mask, _pinball(yz, qz, q), 0.0).sum() / total) if total else None,
            }
            for name in names:
                m = point_metrics(sums[name])
                entry = {"mae": m["mae"], "rel_mase": m["rel_mase"], "mase": m["mase"]}
                if name == TFT_ALONE:
                    tq = np.where(mask[..., None], tft[:, sl, j, :], 0.0)
                    inside_t = (yz >= tq[..., lo]) & (yz <= tq[..., hi]) & mask
                    entry["coverage_80"] = _round(inside_t.sum() / total) if total else None
                    entry["pinball"] = (_round(np.where(mask, _pinball(yz, tq, q), 0.0).sum() / total)
                                        if total else None)
                else:
                    entry["pinball"] = _round(sums[name].sum() / total / 2) if total else None
                entry["mae_ratio_served_vs_peer"] = server_bootstrap_ratio(
                    served_sum[active], sums[name][active], resamples=resamples, seed=seed)
                peers[name][target][bucket] = entry
    return {"targets": served, "peers": peers}


def default_start(forecaster, series: Mapping[str, ServerSeries]) -> tuple[int, str]:
    """Where origins begin unless ``--start`` says: (epoch seconds, the rule that chose it).

    The model's ``trained_before`` when the data reaches more than a day past it; else 7 days into the
    file (a week of history for MASE scales and the 7-day median); a file shorter than 8 days: a day in.
    """
    first = min(int(s.ts.min()) for s in series.values())
    end = max(int(s.ts.max()) for s in series.values())
    trained_before = forecaster.manifest.get("training", {}).get("data", {}).get("trained_before")
    if trained_before:
        cut = datetime.fromisoformat(trained_before)
        cut = int((cut if cut.tzinfo else cut.replace(tzinfo=UTC)).timestamp())
        if cut <= end - DAY_S:
            return cut, "trained_before"
    if first + 7 * DAY_S <= end - DAY_S:
        return first + 7 * DAY_S, "7 days into the file"
    return first + DAY_S, "1 day into the file (shorter than 8 days)"


def evaluate(forecaster, source: str | Path | Mapping[str, ServerSeries], origins: int = 8,
             servers: str = "all", start_epoch_s: int | None = None,
             profiles: Mapping[str, str] | None = None, resamples: int = BOOTSTRAP_RESAMPLES,
             seed: int = BOOTSTRAP_SEED) -> tuple[dict, dict]:
    """Backtest ``forecaster`` (the served BlendForecaster, or a TftForecaster) on ``source``.

    Returns the JSON-ready report and the stacked arrays (``backtest``). ``servers``: all, unseen (held
    out of training) or seen. ``start_epoch_s``: where origins begin (default: ``default_start``).
    """
    series = dict(source) if isinstance(source, Mapping) else load_series(source)
    data = forecaster.manifest.get("training", {}).get("data", {})
    if servers != "all":
        trained = set(data.get("server_names", []))
        series = {n: s for n, s in series.items() if (n in trained) == (servers == "seen")}
    series = {n: s for n, s in series.items() if len(s)}
    if not series:
        raise ValueError(f"no {servers} servers in the data")
    end = max(int(s.ts.max()) for s in series.values())
    rule = "--start"
    if start_epoch_s is None:
        start_epoch_s, rule = default_start(forecaster, series)
    result = backtest(forecaster, series, start_epoch_s, origins, profiles or {})
    report = {
        "model": forecaster.name,
        "forecaster": "blend" if getattr(forecaster, "inner", None) is not None else type(forecaster).__name__,
        "servers": servers,
        "n_servers": int(len(set(result["server"].tolist()))),
        "windows": int(len(result["rows"])),
        "origins_per_server": origins,
        "period_start": _iso(start_epoch_s),
        "period_start_rule": rule,
        "period_end": _iso(end),
        "horizon_steps": forecaster.horizon_steps,
        "history_steps": int(getattr(forecaster, "history_steps", DEFAULT_HISTORY_STEPS)),
        "quantiles": list(forecaster.quantiles),
        "bootstrap": {"unit": "server", "resamples": resamples, "seed": seed, "level": BOOTSTRAP_LEVEL},
        "notes": "targets: the served forecaster (p50 for MAE). peers: on the same windows and points (measured "
                 "actuals where every forecaster is finite). MAE pooled over points; MASE scale: "
                 "same-time-yesterday MAE on each server's history before period_start; rel_mase: geometric mean "
                 "over servers of MAE / seasonal-naive MAE; pinball: mean over all quantiles for the served "
                 "forecaster and tft_alone, pinball at q=0.5 (= MAE/2) for point peers; "
                 "mae_ratio_served_vs_peer: served MAE / peer MAE, 90 % interval from resampling servers; "
                 "coverage_80_varying: p10-p90 coverage on the varying_servers only, whose MASE scale is above "
                 "VARYING_SCALE (twice the band floor): a floor-wide band covers a constant whatever its calibration.",
        **score(result, forecaster.quantiles, resamples=resamples, seed=seed),
    }
    return report, result


def _num(v, width: int = 8, digits: int = 3) -> str:
    return f"{'-':>{width}}" if v is None else f"{v:>{width}.{digits}f}"


def _short(v: float | None, digits: int = 3) -> str:
    """A number in at most ~8 characters (ratios can be huge where a peer is nearly exact)."""
    if v is None:
        return "-"
    if abs(v) < 10:
        return f"{v:.{digits}f}"
    return f"{v:.1f}" if abs(v) < 1000 else f"{v:.1e}"


def _ratio(r: Mapping) -> str:
    if r["ratio"] is None:
        return f"{'-':>24}"
    lo, hi = r["ci90"]
    return f"{_short(r['ratio'])} [{_short(lo, 2)}, {_short(hi, 2)}]".rjust(24)


def format_table(report: Mapping) -> str:
    """The served forecaster's metrics, then one block per peer: peer MAE and served/peer MAE ratio [90 % CI]."""
    buckets = list(BUCKETS)
    lines = [f"model {report['model']} ({report.get('forecaster', 'model')}): {report['n_servers']} servers "
             f"({report['servers']}), {report['windows']} origins, {report['period_start']} .. "
             f"{report['period_end']} (start: {report.get('period_start_rule', '-')})",
             "served forecaster: MAE / MASE / rel MASE / p10-p90 coverage (all servers; servers that vary) / pinball",
             f"{'target':<11}" + "".join(f"| {b:<45}" for b in buckets),
             f"{'':<11}" + f"| {'MAE':>6}{'MASE':>8}{'relMASE':>8}{'cov80':>7}{'cov80v':>7}{'pinb':>8} "
             * len(buckets)]
    for target, per_bucket in report["targets"].items():
        cells = []
        for b in buckets:
            m = per_bucket[b]
            cells.append(f"| {_num(m['mae'], 6)}{_num(m['mase'])}{_num(m['rel_mase'])}{_num(m['coverage_80'], 7)}"
                         f"{_num(m.get('coverage_80_varying'), 7)}{_num(m['pinball'])} ")
        lines.append(f"{target:<11}" + "".join(cells))
    for peer in [p for p in TABLE_PEERS if p in report["peers"]] + [p for p in report["peers"]
                                                                       if p not in TABLE_PEERS]:
        lines.append("")
        lines.append(f"served vs {peer}: served MAE, peer MAE, served/peer MAE ratio [90 % CI, servers resampled]")
        lines.append(f"{'target':<11}" + "".join(f"| {b:<41}" for b in buckets))
        lines.append(f"{'':<11}" + f"| {'served':>8}{'peer':>8}{'ratio [90 % CI]':>24} " * len(buckets))
        for target, per_bucket in report["peers"][peer].items():
            cells = []
            for b in buckets:
                m = per_bucket[b]
                cells.append(f"| {_num(report['targets'][target][b]['mae'])}{_num(m['mae'])}"
                             f"{_ratio(m['mae_ratio_served_vs_peer'])} ")
            lines.append(f"{target:<11}" + "".join(cells))
    return "\n".join(lines)


def plot_examples(result: Mapping, quantiles: Sequence[float], path: str | Path, count: int = 4) -> None:
    """Save a PNG of a few served forecasts (p10-p90 band, median), the same-time median 7d and actuals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo, mid, hi = (list(quantiles).index(x) for x in (0.1, 0.5, 0.9))
    count = min(count, len(result["rows"]))
    picks = np.linspace(0, len(result["rows"]) - 1, count).round().astype(int)
    fig, axes = plt.subplots(count, 2, figsize=(12, 2.6 * count), squeeze=False)
    median7 = result["peers"]["same_time_median_7d"]
    for r, i in enumerate(picks):
        name, origin = result["rows"][i]
        for c, j in enumerate((TARGETS.index("cpu_pct"), TARGETS.index("mem_pct"))):
            ax, h = axes[r, c], np.arange(1, result["actual"].shape[1] + 1) * 5 / 60
            ax.fill_between(h, result["pred"][i, :, j, lo], result["pred"][i, :, j, hi], alpha=0.3,
                            label="served p10-p90")
            ax.plot(h, result["pred"][i, :, j, mid], label="served p50")
            ax.plot(h, median7[i, :, j], ":", label="same-time median 7d")
            ax.plot(h, result["actual"][i, :, j], "k", lw=1, label="actual")
            ax.set_title(f"{name} {TARGETS[j]} from {_iso(origin)}", fontsize=8)
            ax.set_xlabel("hours ahead", fontsize=7)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# ---------------------------------------------------------------------------------------- trend check

TREND_HISTORY_STEPS = 3 * DAY_STEPS  # 3 days: the 7-day median has 2 days, and the blend has past origins
TREND_REACH_STEPS = 96  # crossings are looked for within 8 h
TREND_SEEDS = 20
TREND_ORIGIN_EPOCH_S = 1_736_899_200 + 3 * DAY_S  # 2025-01-18T00:00:00Z
#: scenario -> (target, limit)
TREND_SCENARIOS: Mapping[str, tuple[str, float]] = {
    "mem_leak": ("mem_pct", 90.0),
    "disk_fill": ("disk_pct", 85.0),
    "daily_cycle_peak": ("cpu_pct", 80.0),
}


@attrs.frozen(eq=False)
class TrendScenario:
    """One synthetic window, the noise-free truth of its target after the origin, and its limit."""

    name: str
    seed: int
    target: str
    limit: float
    window: MetricsWindow
    truth: np.ndarray  # (TREND_REACH_STEPS,) the target's noise-free value at steps 1..96 after the origin

    @property
    def true_crossing_steps(self) -> int | None:
        """First step (1-based) at which the noise-free truth reaches the limit."""
        hit = np.flatnonzero(self.truth >= self.limit)
        return int(hit[0]) + 1 if len(hit) else None

    @property
    def true_crossing_minutes(self) -> int | None:
        steps = self.true_crossing_steps
        return None if steps is None else steps * STEP_SECONDS // 60


def trend_scenario(name: str, seed: int, origin_epoch_s: int = TREND_ORIGIN_EPOCH_S,
                   capacity: int = TREND_HISTORY_STEPS) -> TrendScenario:
    """Build one scenario's window (3 days of 5-minute history ending at the origin) for one noise seed.

    - ``mem_leak``: memory flat, then rising 0.08 pt/step over the last 12 h (noise sd 0.3); the start
      level is drawn so that the truth crosses 90 % 2-6 h after the origin.
    - ``disk_fill``: disk rising 0.04 pt/step over the 3 days (noise sd 0.05), crossing 85 % 2-6 h ahead.
    - ``daily_cycle_peak``: CPU 50 + 35 sin(2 pi t / day + phase) (noise sd 3); the phase is drawn so
      that the next peak crosses 80 % 1-7 h after the origin.
    """
    if name not in TREND_SCENARIOS:
        raise ValueError(f"unknown trend scenario {name!r}")
    target, limit = TREND_SCENARIOS[name]
    rng = np.random.default_rng([seed, list(TREND_SCENARIOS).index(name)])
    n = TREND_HISTORY_STEPS
    s = np.arange(-(n - 1), TREND_REACH_STEPS + 1, dtype=np.float64)  # 0 = the origin
    past = s <= 0
    cpu = 20 + rng.normal(0, 2, len(s))
    mem = 50 + rng.normal(0, 0.3, len(s))
    disk = 50 + rng.normal(0, 0.05, len(s))
    load = 0.8 + rng.normal(0, 0.05, len(s))
    if name == "mem_leak":
        cross = rng.uniform(24, 72)  # steps after the origin
        base = limit - 0.08 * (cross + 144)
        truth = base + 0.08 * np.clip(s + 144, 0, None)
        mem = truth + rng.normal(0, 0.3, len(s))
    elif name == "disk_fill":
        cross = rng.uniform(24, 72)
        truth = limit + 0.04 * (s - cross)
        disk = truth + rng.normal(0, 0.05, len(s))
    else:
        cross = rng.uniform(12, 84)
        phase = math.asin((limit - 50) / 35) - 2 * math.pi * cross / DAY_STEPS
        truth = 50 + 35 * np.sin(2 * np.pi * s / DAY_STEPS + phase)
        cpu = truth + rng.normal(0, 3, len(s))
        load = np.clip(cpu, 0, 100) / 25 + rng.normal(0, 0.05, len(s))
    cpu, mem, disk = np.clip(cpu, 0, 100), np.clip(mem, 0, 100), np.clip(disk, 0, 100)
    values = np.zeros((len(s), len(METRIC_FIELDS)), dtype=np.float64)
    col = FIELD_INDEX
    values[:, col["cpu_user_pct"]] = 0.8 * cpu
    values[:, col["cpu_sys_pct"]] = 0.15 * cpu
    values[:, col["cpu_iowait_pct"]] = 0.05 * cpu
    values[:, col["cpu_idle_pct"]] = 100 - cpu
    values[:, col["java_cpu_pct"]] = 0.5 * cpu
    values[:, col["mem_used_pct"]] = mem
    values[:, col["swap_used_pct"]] = 2.0
    values[:, col["disk_usage_pct"]] = disk
    values[:, col["net_in_mb_s"]] = 5 + rng.normal(0, 0.2, len(s)) ** 2
    values[:, col["net_out_mb_s"]] = 3 + rng.normal(0, 0.2, len(s)) ** 2
    values[:, col["load_average"]] = np.clip(load, 0, None)
    values[:, col["uptime_days"]] = np.floor(30 + (s + n) / DAY_STEPS)
    ts = (origin_epoch_s + s[past] * STEP_SECONDS).astype(np.int64)
    status = np.full(past.sum(), STATUS_CODE["healthy"], dtype=np.int8)
    window = MetricsWindow.from_arrays(f"trend-{name}-{seed:02d}", max(capacity, n), ts,
                                       values[past].astype(np.float32), status)
    return TrendScenario(name, seed, target, limit, window, truth[~past])


def _median(values: Sequence[float]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return round(float(np.median(finite)), 3) if finite else None


def trend_check(forecaster, seeds: int = TREND_SEEDS, origin_epoch_s: int = TREND_ORIGIN_EPOCH_S) -> dict:
    """Does the served median see a limit crossing coming, and start from the current level?

    For each ``TREND_SCENARIOS`` entry, ``seeds`` noisy windows (``trend_scenario``) are forecast in one
    call. Per scenario: the noise-free ``true_crossing_minutes`` and the served p50's first crossing
    (``median_crossing_minutes``, null when not within 8 h or the horizon) per seed; ``within_15pct``:
    share of seeds with |median - true| <= 0.15 true; ``plus5min_minus_last``: per target, the median
    over seeds of (p50 at step 1 - last measured value). ``level``: the median over every window of
    |p50 step 1 - last value| of the scenario's target.
    """
    mid = list(forecaster.quantiles).index(0.5)
    reach = min(forecaster.horizon_steps, TREND_REACH_STEPS)
    capacity = int(getattr(forecaster, "history_steps", TREND_HISTORY_STEPS))
    out: dict = {}
    level: list[float] = []
    for name, (target, limit) in TREND_SCENARIOS.items():
        cases = [trend_scenario(name, seed, origin_epoch_s, capacity) for seed in range(seeds)]
        forecasts = forecaster.forecast([c.window for c in cases], {})
        j = TARGETS.index(target)
        true_min, median_min, step1, hits = [], [], [], []
        for case in cases:
            true_min.append(case.true_crossing_minutes)
            f = forecasts.get(case.window.server_name)
            if f is None:
                median_min.append(None)
                step1.append(np.full(len(TARGETS), np.nan))
                hits.append(False)
                continue
            p50 = f.values_array()[:, :, mid].astype(np.float64)
            last = structural.targets_of(case.window.values[-1:].astype(np.float64))[0]
            step1.append(p50[0] - last)
            level.append(abs(float(p50[0, j] - last[j])))
            crossed = np.flatnonzero(p50[:reach, j] >= limit)
            found = int(crossed[0] + 1) * STEP_SECONDS // 60 if len(crossed) else None
            median_min.append(found)
            truth = case.true_crossing_minutes
            hits.append(found is not None and truth is not None and abs(found - truth) <= 0.15 * truth)
        deltas = np.stack(step1)
        out[name] = {
            "target": target,
            "limit": limit,
            "seeds": seeds,
            "true_crossing_minutes": true_min,
            "median_crossing_minutes": median_min,
            "within_15pct": round(float(np.mean(hits)), 3),
            "crossing_error_minutes_median": _median([abs(m - t) for m, t in zip(median_min, true_min, strict=True)
                                                      if m is not None and t is not None]),
            "plus5min_minus_last": {t: _median(deltas[:, i].tolist()) for i, t in enumerate(TARGETS)},
        }
    out["level"] = {"median_abs_plus5min_minus_last": _median(level), "windows": len(level)}
    out["notes"] = (f"{seeds} noise seeds per scenario, {TREND_HISTORY_STEPS} steps (3 days) of history; "
                    f"crossings looked for within {reach * STEP_SECONDS // 60} min of the served p50; "
                    "plus5min_minus_last: p50 at step 1 minus the last measured value, median over seeds.")
    return out


def format_trend(trend: Mapping) -> str:
    """One line per scenario and the level line."""
    lines = ["trend check (served p50):"]
    for name in TREND_SCENARIOS:
        r = trend[name]
        lines.append(f"  {name:<17} {r['target']} >= {r['limit']:g}: within 15 % {r['within_15pct']:.2f}, "
                     f"median |error| {r['crossing_error_minutes_median']} min, "
                     f"missed {sum(m is None for m in r['median_crossing_minutes'])}/{r['seeds']}, "
                     f"+5 min - last {r['plus5min_minus_last'][r['target']]}")
    lines.append(f"  level: median |p50 step 1 - last| {trend['level']['median_abs_plus5min_minus_last']} "
                 f"over {trend['level']['windows']} windows")
    return "\n".join(lines)
