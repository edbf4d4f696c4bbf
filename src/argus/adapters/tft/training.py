"""Train (or keep training) a TFT with lightning; a plain function with progress and cancel callbacks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import attrs
import numpy as np

from argus.adapters.tft.data import ServerSeries, load_series
from argus.adapters.tft.features import DRIFT_TARGETS, FeatureSpec, Segment, segments_from_arrays
from argus.adapters.tft.registry import DirectoryModelRegistry, new_model_name
from argus.adapters.tft.scenarios import resolve_mix
from argus.domain.metrics import Record

ProgressFn = Callable[[dict], None]
ShouldStopFn = Callable[[], bool]
DAY_S = 86_400


class TrainingCancelled(Exception):
    """``should_stop`` asked training to stop; nothing was saved."""


def _mix_pairs(mix: Mapping[str, float] | Iterable[Iterable]) -> tuple[tuple[str, float], ...]:
    """A scenario mix as hashable (name, weight) pairs, from a mapping or pairs (e.g. JSON lists)."""
    pairs = mix.items() if isinstance(mix, Mapping) else mix
    return tuple((str(name), float(weight)) for name, weight in pairs)


@attrs.frozen
class TrainingConfig:
    """Everything a training run is parameterised by (recorded in the manifest)."""

    epochs: int = 5
    max_samples_per_epoch: int = 12_800  # random windows drawn per epoch
    batch_size: int = 64
    val_days: float = 3.0  # the last days of each server (before any hold-out) validate
    val_samples: int = 1024
    holdout_days: float = 0.0  # the last days of the data, never trained or validated on
    holdout_servers: float = 0.0  # fraction of servers left out entirely (seeded)
    patience: int = 2  # early stopping, in epochs without a better validation loss
    short_encoder_share: float = 0.3  # share of windows with a random shorter encoder (cold start)
    seed: int = 42
    threads: int = 1
    accelerator: str = "auto"
    gradient_clip: float = 0.1
    limit_val_batches: int | None = None
    hidden_size: int = 16
    attention_head_size: int = 2
    hidden_continuous_size: int = 8
    dropout: float = 0.1
    learning_rate: float = 3e-3
    quantiles: tuple[float, ...] = (0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98)
    max_encoder_steps: int = 288
    min_encoder_steps: int = 12
    horizon_steps: int = 96
    max_gap_steps: int = 3
    # Experimental, off by default (docs/model.md "What we tried": not yet as accurate on the hold-out):
    guides: bool = False  # known-future same-time-yesterday and trend inputs (features.guide_features)
    drift_share: float = 0.0  # share of training windows given a synthetic sustained linear drift (tried: 0.4)
    drift_targets: tuple[str, ...] = DRIFT_TARGETS  # leaks and filling disks (the metric table's drifts)
    daily_share: float = 0.0  # share of training windows given a synthetic daily cycle, any target (tried: 0.1)
    calibrate: bool = True  # fit the served blend's band and priors on the validation days (calibration.py)
    calibration_origins: int = 12  # origins per training server for that
    scenario_share: float = 0.0  # share of training windows given a synthetic incident scenario (scenarios.py)
    #: (name, weight) pairs of scenarios.SCENARIOS (a mapping is accepted); empty: scenarios.DEFAULT_MIX
    scenario_mix: tuple[tuple[str, float], ...] = attrs.field(default=(), converter=_mix_pairs)

    def spec(self, profiles: Iterable[str]) -> FeatureSpec:
        return FeatureSpec(self.max_encoder_steps, self.min_encoder_steps, self.horizon_steps,
                           self.max_gap_steps, tuple(sorted(set(profiles) | {"generic"})), self.guides)

    def network(self) -> dict[str, object]:
        return {
            "hidden_size": self.hidden_size, "attention_head_size": self.attention_head_size,
            "hidden_continuous_size": self.hidden_continuous_size, "lstm_layers": 1,
            "dropout": self.dropout, "learning_rate": self.learning_rate, "quantiles": list(self.quantiles),
        }


@attrs.frozen
class TrainingResult:
    """Where the new model went and what its manifest says."""

    name: str
    path: Path
    manifest: Mapping[str, object]


@attrs.frozen
class SplitData:
    """Segments cut at the per-server validation cutoff and the global hold-out cutoff."""

    train: list[Segment]
    val: list[Segment]
    val_from: list[int]  # per validation segment: the earliest forecast origin (epoch s) it may use
    servers: list[str]
    holdout_servers: list[str]
    cutoffs: dict[str, int]


def split_series(series: Mapping[str, ServerSeries], config: TrainingConfig) -> SplitData:
    """Drop hold-out servers and days; cut each server's last ``val_days`` off for validation."""
    names = sorted(series)
    rng = np.random.default_rng(config.seed)
    n_hold = int(round(config.holdout_servers * len(names)))
    held = sorted(rng.permutation(names)[:n_hold].tolist()) if n_hold else []
    kept = [n for n in names if n not in held]
    end_all = max(int(series[n].ts.max()) for n in names)
    holdout_cut = end_all - int(config.holdout_days * DAY_S) if config.holdout_days else end_all + 1
    train, val, val_from = [], [], []
    keep = config.min_encoder_steps + config.horizon_steps
    for name in kept:
        s = series[name]
        for seg in segments_from_arrays(name, s.ts, s.values, s.status, config.max_gap_steps, skip_maintenance=True):
            seg_end = min(int(seg.ts[-1]), holdout_cut - 1)
            val_cut = min(int(s.ts.max()), holdout_cut - 1) - int(config.val_days * DAY_S)
            train.append(_cut(seg, None, val_cut))
            # validation windows may read encoder history from before the cutoff
            cut = _cut(seg, val_cut - config.max_encoder_steps * 300, seg_end + 1)
            if len(cut) >= keep and int(cut.ts[-1]) - config.horizon_steps * 300 >= val_cut:
                val.append(cut)
                val_from.append(val_cut)
    cutoffs = {"holdout_from_epoch_s": int(holdout_cut), "data_end_epoch_s": end_all}
    return SplitData([s for s in train if len(s) >= keep], val, val_from, kept, held, cutoffs)


def _cut(seg: Segment, start_ts: int | None, end_ts: int) -> Segment:
    mask = seg.ts < end_ts
    if start_ts is not None:
        mask &= seg.ts >= start_ts
    return Segment(seg.server_name, seg.ts[mask], seg.targets[mask], seg.covariates[mask])


def window_index(segments: list[Segment], spec: FeatureSpec) -> np.ndarray:
    """Every (segment, end) whose encoder has ``min_encoder_steps`` and whose full horizon exists."""
    parts = []
    for i, seg in enumerate(segments):
        ends = np.arange(spec.min_encoder_steps, len(seg) - spec.horizon_steps + 1, dtype=np.int64)
        parts.append(np.stack([np.full(len(ends), i, dtype=np.int64), ends], axis=1))
    return np.concatenate(parts) if parts else np.empty((0, 2), dtype=np.int64)


def train_model(
    source: str | Path | Iterable[Record] | Mapping[str, ServerSeries],
    model_dir: str | Path,
    config: TrainingConfig = TrainingConfig(),
    *,
    from_model: str | None = None,
    output_name: str | None = None,
    profile_for: Callable[[str], str] = lambda name: "generic",
    progress: ProgressFn | None = None,
    should_stop: ShouldStopFn | None = None,
    activate: bool = False,
    progress_bar: bool = False,
) -> TrainingResult:
    """Train a TFT on ``source`` and save it as a new model folder; return it.

    ``source``: a JSONL(.gz) path, Records, or already-loaded series. ``from_model`` continues from
    that model's weights (its features and sizes win over ``config``) for ``config.epochs`` more
    epochs. ``should_stop`` is polled every batch; when it returns True, TrainingCancelled is
    raised and nothing is saved. ``activate`` marks the new model CURRENT.
    """
    from argus.adapters.tft import loop  # torch and lightning: imported only when training

    report = progress or (lambda event: None)
    report({"stage": "loading_data"})
    series = source if isinstance(source, Mapping) else load_series(source)
    if not series:
        raise ValueError("no records to train on")
    registry = DirectoryModelRegistry(model_dir)
    name = output_name or new_model_name()
    registry.path_for(name)  # reject a bad name before hours of training
    started = time.monotonic()
    scenarios = {"share": config.scenario_share, "mix": resolve_mix(config.scenario_mix), "seed": config.seed}
    split = split_series(series, config)
    profiles = {n: profile_for(n) for n in split.servers}
    outcome = loop.fit(split, config, profiles, registry, from_model, report, should_stop or (lambda: False),
                       progress_bar)
    extra = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "training": {
            "config": attrs.asdict(config),
            "parent": from_model,
            "data": _data_summary(series, split),
            "scenarios": scenarios,
            "epochs_run": outcome.epochs_run,
            "steps_run": outcome.steps_run,
            "epochs_total": outcome.epochs_total,
            "steps_total": outcome.steps_total,
            "stopped_early": outcome.stopped_early,
            "device": outcome.device,
            "seconds": round(time.monotonic() - started, 1),
            "seconds_per_epoch": round(outcome.train_seconds / max(outcome.epochs_run, 1), 1),
            "best_val_loss": outcome.best_val_loss,
            "val_loss_history": outcome.val_history,
        },
        "validation": outcome.validation,
    }
    from argus.adapters.tft.artifacts import save_model

    path = save_model(Path(model_dir), name, outcome.net, outcome.spec, outcome.network, extra)
    if config.calibrate:
        report({"stage": "calibrating", "model": name})
        _calibrate(registry, name, series, split, config)
    if activate:
        registry.set_current(name)
    manifest = registry.info(name).manifest
    report({"stage": "saved", "model": name, "path": str(path)})
    return TrainingResult(name, path, manifest)


def _calibrate(registry: DirectoryModelRegistry, name: str, series: Mapping[str, ServerSeries], split: SplitData,
               config: TrainingConfig) -> None:
    """Fit the served blend's band and priors on the validation days of the training servers (manifest "blend")."""
    from argus.adapters.calibration import calibrate_saved

    end = min(split.cutoffs["holdout_from_epoch_s"] - 1, split.cutoffs["data_end_epoch_s"])
    start = end - int(config.val_days * DAY_S)
    calibrate_saved(registry, name, series, split.servers, start, end, config.calibration_origins)


def _data_summary(series: Mapping[str, ServerSeries], split: SplitData) -> dict[str, object]:
    def iso(epoch_s: int) -> str:
        return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds")

    start = min(int(s.ts.min()) for s in series.values())
    return {
        "first_record": iso(start),
        "last_record": iso(split.cutoffs["data_end_epoch_s"]),
        "trained_before": iso(split.cutoffs["holdout_from_epoch_s"]),
        "servers": len(split.servers),
        "server_names": split.servers,
        "holdout_servers": split.holdout_servers,
        "records": int(sum(len(series[n]) for n in split.servers)),
        "train_steps": int(sum(len(s) for s in split.train)),
        "val_steps": int(sum(len(s) for s in split.val)),
    }
