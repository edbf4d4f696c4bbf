"""Fit the calibration map of incident probabilities (``argus calibrate --probabilities``).

A replay of held-back data through the real pipeline (forecast → risk) gives, per tick and server,
the raw P(30 min) and P(8 h) and whether an incident did start within 30 minutes / 8 hours; an
isotonic regression of the outcome on the raw probability is the map (domain/probability.py). Real
held-back days rarely hold an incident, so the maps are fitted on two replays of the same days pooled:
an incident bench (adapters/bench.py: incidents injected, seeded, labelled) and the days as they are
(how rarely a quiet server has one). The map is stored in the manifest
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
#: Strata: the last breach within the hour, the day, the week, or none in the window's week.
STRATIFIED_BY, EDGES = "breach_age_minutes", (60.0, 1440.0, 10080.0)
WARMUP_DAYS = 2.0  # the bench keeps its first days clean; the replay starts grading after them


@attrs.frozen
class Samples:
    """One replay's (raw probability, outcome) pairs per horizon and the stratifying feature of each."""

    raw: dict  # {"30m": array, "8h": array}
    outcome: dict
    feature: np.ndarray
    incidents: int
    servers: int


def replay_samples(forecaster, records_path: Path, labels: Mapping[str, object] | None,
                   profiles: ProfileResolver | None = None, tick_minutes: int = 30, capacity: int = 2880) -> Samples:
    """Replay a records file from ``WARMUP_DAYS`` in; incidents from ``labels``, else the limit breaches in it."""
    from argus.adapters.tft.data import load_series
    from argus.adapters.tft.incidents import replay_period
    from argus.domain.backtest import incidents_in_records

    profiles = profiles or ProfileResolver()
    series = load_series(records_path)
    start = min(int(s.ts.min()) for s in series.values()) + int(WARMUP_DAYS * 86_400)
    run, records = replay_period(forecaster, series, start, profiles, tick_minutes, capacity)
    incidents = incidents_from_labels(labels) if labels is not None else incidents_in_records(records, profiles)
    pairs = calibration_pairs(run, incidents)
    return Samples({h: pairs[h][0] for h in pairs}, {h: pairs[h][1] for h in pairs},
                   calibration_features(run, incidents)[STRATIFIED_BY], len(incidents), len(series))


def fit(replays: Sequence[Samples], **fitted_on: object) -> ProbabilityCalibration:
    """Pool the replays' samples and fit one isotonic map per horizon and stratum."""
    raw = {h: np.concatenate([r.raw[h] for r in replays]) for h in ("30m", "8h")}
    outcome = {h: np.concatenate([r.outcome[h] for r in replays]) for h in ("30m", "8h")}
    if outcome["8h"].sum() == 0:
        raise ValueError("the replay saw no incident start: nothing to calibrate probabilities on")
    strata = np.searchsorted(np.asarray(EDGES), np.concatenate([r.feature for r in replays]), side="left")
    record: dict[str, object] = {
        "samples": int(len(strata)), "incidents": sum(r.incidents for r in replays),
        "servers": max(r.servers for r in replays), "replays": len(replays),
        "base_rate_30m": round(float(outcome["30m"].mean()), 5), "base_rate_8h": round(float(outcome["8h"].mean()), 5),
        **fitted_on, "strata": [],
    }
    maps: dict[str, list] = {"30m": [], "8h": []}
    for k in range(len(EDGES) + 1):
        mask = strata == k
        record["strata"].append({"samples": int(mask.sum()),  # type: ignore[attr-defined]
                                 "base_rate_8h": round(float(outcome["8h"][mask].mean()), 5) if mask.any() else None})
        if mask.sum() < MIN_STRATUM_SAMPLES:  # too few to fit on their own: the pooled map
            mask = np.ones_like(mask)
        for h in maps:
            maps[h].append(isotonic_knots(raw[h][mask], outcome[h][mask]))
    return ProbabilityCalibration(tuple(maps["30m"]), tuple(maps["8h"]), EDGES, STRATIFIED_BY, fitted_on=record)


def fit_on_bench(forecaster, bench_dir: Path, profiles: ProfileResolver | None = None, tick_minutes: int = 30,
                 capacity: int = 2880) -> ProbabilityCalibration:
    """Replay the bench in ``bench_dir`` (records.jsonl.gz, labels.json) and fit the maps on it alone."""
    labels = json.loads((bench_dir / "labels.json").read_text(encoding="utf-8"))
    samples = replay_samples(forecaster, bench_dir / "records.jsonl.gz", labels, profiles, tick_minutes, capacity)
    return fit([samples], seed=labels.get("seed"), source=labels.get("source"), tick_minutes=tick_minutes)


def fit_probabilities(forecaster, data: Path, servers: Sequence[str] | None, start_epoch_s: int, end_epoch_s: int,
                      seed: int = 1, tick_minutes: int = 30) -> ProbabilityCalibration:
    """Replay ``data``'s [start, end] on ``servers`` twice — with a seeded bench's incidents and as it is — and fit.

    The bench gives the maps incidents to learn from (several per server and week); the real replay
    keeps them honest about how rarely a quiet server has one.
    """
    from argus.adapters import bench

    records = _restrict(bench.read_records(data), servers, start_epoch_s, end_epoch_s)
    made = bench.make_bench(records, seed=seed)
    with tempfile.TemporaryDirectory(prefix="argus-calibrate-") as tmp:
        bench.write_bench(Path(tmp), records, made, source=Path(data).name, seed=seed)
        labels = json.loads((Path(tmp) / "labels.json").read_text(encoding="utf-8"))
        injected = replay_samples(forecaster, Path(tmp) / "records.jsonl.gz", labels, tick_minutes=tick_minutes)
        as_is = bench.Bench(records.values, records.status, np.zeros(len(records.ts), dtype=bool), [], [])
        bench.write_bench(Path(tmp) / "real", records, as_is, source=Path(data).name, seed=seed)
        real = replay_samples(forecaster, Path(tmp) / "real" / "records.jsonl.gz", None, tick_minutes=tick_minutes)
    return fit([injected, real], seed=seed, source=Path(data).name, tick_minutes=tick_minutes,
               period_start=_iso(start_epoch_s), period_end=_iso(end_epoch_s))


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
