"""Fit the calibration map of incident probabilities (``argus calibrate --probabilities``).

A replay of held-back data through the real pipeline (forecast → risk) gives, per tick and server,
the raw P(30 min) and P(8 h) and whether an incident did start within 30 minutes / 8 hours; an
isotonic regression of the outcome on the raw probability is the map (domain/probability.py). Real
held-back days rarely hold an incident, so the data are an incident bench (adapters/bench.py):
the held-back days with incidents injected, seeded, labelled. The map is stored in the manifest
under ``probability_calibration`` and applied at serve time.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs
import numpy as np

from argus.domain.backtest import calibration_features, calibration_pairs, incidents_from_labels
from argus.domain.probability import ProbabilityCalibration, isotonic_knots
from argus.domain.profiles import ProfileResolver

MIN_STRATUM_SAMPLES = 200
STRATIFIED_BY, EDGES = "breach_share_7d", (0.0, 0.003, 0.03)
WARMUP_DAYS = 2.0  # the bench keeps its first days clean; the replay starts grading after them


def fit_on_bench(forecaster, bench_dir: Path, profiles: ProfileResolver | None = None, tick_minutes: int = 30,
                 capacity: int = 2880) -> ProbabilityCalibration:
    """Replay the bench in ``bench_dir`` (records.jsonl.gz, labels.json) and fit both maps."""
    from argus.adapters.tft.data import load_series
    from argus.adapters.tft.incidents import replay_period

    series = load_series(bench_dir / "records.jsonl.gz")
    labels = json.loads((bench_dir / "labels.json").read_text(encoding="utf-8"))
    incidents = incidents_from_labels(labels)
    first = min(int(s.ts.min()) for s in series.values())
    start = first + int(WARMUP_DAYS * 86_400)
    run, _ = replay_period(forecaster, series, start, profiles or ProfileResolver(), tick_minutes, capacity)
    pairs = calibration_pairs(run, incidents)
    feature = calibration_features(run, incidents)[STRATIFIED_BY]
    raw_30m, outcome_30m = pairs["30m"]
    raw_8h, outcome_8h = pairs["8h"]
    if outcome_8h.sum() == 0:
        raise ValueError("the replay saw no incident start: nothing to calibrate probabilities on")
    fitted_on = {"samples": int(len(raw_8h)), "incidents": len(incidents), "servers": len(series),
                 "tick_minutes": tick_minutes, "base_rate_30m": round(float(outcome_30m.mean()), 5),
                 "base_rate_8h": round(float(outcome_8h.mean()), 5), "seed": labels.get("seed"),
                 "source": labels.get("source"), "strata": []}
    strata = np.searchsorted(np.asarray(EDGES), feature, side="left")
    maps_30m, maps_8h = [], []
    for k in range(len(EDGES) + 1):
        mask = strata == k
        if mask.sum() < MIN_STRATUM_SAMPLES:  # too few to fit on their own: the whole sample's map
            mask = np.ones_like(mask)
        maps_30m.append(isotonic_knots(raw_30m[mask], outcome_30m[mask]))
        maps_8h.append(isotonic_knots(raw_8h[mask], outcome_8h[mask]))
        fitted_on["strata"].append({"samples": int((strata == k).sum()),  # type: ignore[attr-defined]
                                    "base_rate_8h": round(float(outcome_8h[strata == k].mean()), 5)
                                    if (strata == k).any() else None})
    return ProbabilityCalibration(tuple(maps_30m), tuple(maps_8h), EDGES, STRATIFIED_BY, fitted_on=fitted_on)


def fit_probabilities(forecaster, data: Path, servers: Sequence[str] | None, start_epoch_s: int, end_epoch_s: int,
                      seed: int = 1, tick_minutes: int = 30) -> ProbabilityCalibration:
    """Make a bench of ``data``'s [start, end] on ``servers`` (seeded), replay it, fit the maps."""
    from argus.adapters import bench

    records = bench.read_records(data)
    records = _restrict(records, servers, start_epoch_s, end_epoch_s)
    made = bench.make_bench(records, seed=seed)
    with tempfile.TemporaryDirectory(prefix="argus-calibrate-") as tmp:
        bench.write_bench(Path(tmp), records, made, source=Path(data).name, seed=seed)
        calibration = fit_on_bench(forecaster, Path(tmp), tick_minutes=tick_minutes)
    fitted = dict(calibration.fitted_on)
    fitted.update(period_start=_iso(start_epoch_s), period_end=_iso(end_epoch_s))
    return attrs.evolve(calibration, fitted_on=fitted)


def _restrict(records, servers: Sequence[str] | None, start: int, end: int):
    """The rows of ``servers`` (all when None) between ``start`` and ``end``, servers re-indexed."""
    from argus.adapters.bench import Records

    names = tuple(sorted(set(servers) & set(records.names))) if servers else records.names
    if not names:
        raise ValueError("none of the given servers is in the data")
    code = np.full(len(records.names), -1, dtype=np.int32)
    code[[records.names.index(n) for n in names]] = np.arange(len(names), dtype=np.int32)
    keep = (code[records.server] >= 0) & (records.ts >= start) & (records.ts <= end)
    lines = [line for line, k in zip(records.lines, keep.tolist(), strict=True) if k]
    return Records(lines, names, code[records.server[keep]], records.ts[keep], records.values[keep],
                   records.status[keep])


def store(registry, name: str, calibration: ProbabilityCalibration) -> Mapping[str, object]:
    """Write the map into model ``name``'s manifest; return the stored section."""
    from argus.adapters.tft.artifacts import update_manifest

    section = calibration.to_manifest()
    update_manifest(registry, name, "probability_calibration", section)
    return section


def _iso(epoch_s: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds")
