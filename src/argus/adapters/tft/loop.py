"""The torch/lightning half of training: window sampling, the LightningModule, callbacks, fit."""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Mapping

import attrs
import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from argus.adapters.tft.artifacts import load_network
from argus.adapters.tft.features import (
    UPPER_BOUND,
    FeatureSpec,
    Segment,
    WindowSlice,
    denormalize,
    encode_windows,
    window_from_segment,
)
from argus.adapters.tft.network import ArgusTft, build_network, quantile_loss, stacked_prediction, to_tensors
from argus.adapters.tft.registry import DirectoryModelRegistry
from argus.adapters.tft.scenarios import apply_scenario, resolve_mix
from argus.adapters.tft.training import SplitData, TrainingCancelled, TrainingConfig, window_index
from argus.domain.forecast import TARGETS

DAY_STEPS = 288
_UPPER = np.array([UPPER_BOUND.get(t, np.inf) for t in TARGETS], dtype=np.float32)
#: Synthetic drift per 5-minute step, natural units (percentages; load is relative to its level).
_DRIFT_RANGE = (0.01, 0.3)


def augment(window: WindowSlice, rng: np.random.Generator, drift_share: float, daily_share: float,
            drift_targets: tuple[str, ...] = TARGETS) -> WindowSlice:
    """Training only: add a sustained linear drift and/or a daily cycle, the same in encoder and future.

    The trace rarely holds sustained trends (leaks, filling disks) or clean daily cycles, so the network
    would learn that "no change" is always right; these windows teach it to follow both guides.
    """
    drift, daily = rng.random() < drift_share, rng.random() < daily_share
    if not (drift or daily) or window.future is None:
        return window
    series = np.concatenate([window.targets, window.future]).astype(np.float32)
    length, n_tgt = len(window.targets), series.shape[1]
    k = np.arange(len(series), dtype=np.float32) - (length - 1)  # 0 = last encoder step
    level = np.maximum(np.abs(series[length - 1]), 0.1)
    if drift:
        allowed = np.array([t in drift_targets for t in TARGETS])
        chosen = allowed & (rng.random(n_tgt) < 0.5)
        chosen[rng.choice(np.flatnonzero(allowed))] = True
        onset = -rng.integers(min(24, length - 1), length)  # the drift started 2 h .. the whole encoder ago
        rate = np.exp(rng.uniform(*np.log(_DRIFT_RANGE), n_tgt)) * rng.choice([-1.0, 1.0], n_tgt, p=[0.25, 0.75])
        rate = np.where(np.isfinite(_UPPER), rate, rate * level / 50.0)
        series += chosen * rate[None, :] * np.maximum(k - onset, 0.0)[:, None]
    if daily:
        chosen = rng.random(n_tgt) < 0.5
        chosen[rng.integers(n_tgt)] = True
        amp = rng.uniform(2.0, 20.0, n_tgt)
        amp = np.where(np.isfinite(_UPPER), amp, amp * level / 50.0)
        wave = np.sin(2 * np.pi * k / DAY_STEPS + rng.uniform(0, 2 * np.pi))
        series += chosen * amp[None, :] * wave[:, None]
    series = np.clip(series, 0.0, _UPPER[None, :])
    return WindowSlice(series[:length], window.covariates, window.last_epoch_s, window.profile_index,
                       series[length:])


class WindowBatches(Dataset):
    """Batches of windows drawn from segments; ``reshuffle(epoch)`` draws a new random subset."""

    def __init__(self, segments: list[Segment], index: np.ndarray, spec: FeatureSpec, profiles: list[int],
                 batch_size: int, per_epoch: int | None, short_share: float, seed: int,
                 drift_share: float = 0.0, daily_share: float = 0.0,
                 drift_targets: tuple[str, ...] = TARGETS, scenario_share: float = 0.0,
                 scenario_mix: Mapping[str, float] | None = None) -> None:
        self.segments, self.index, self.spec, self.profiles = segments, index, spec, profiles
        self.batch_size, self.per_epoch, self.short_share, self.seed = batch_size, per_epoch, short_share, seed
        self.drift_share, self.daily_share, self.drift_targets = drift_share, daily_share, tuple(drift_targets)
        self.scenario_share, self.scenario_mix = scenario_share, resolve_mix(scenario_mix or ())
        self.reshuffle(0)

    def reshuffle(self, epoch: int) -> None:
        rng = np.random.default_rng(self.seed + 1000 * epoch)
        n = len(self.index) if self.per_epoch is None else min(self.per_epoch, len(self.index))
        chosen = rng.permutation(len(self.index))[:n] if self.per_epoch is not None else np.arange(n)
        self.rows = self.index[chosen]
        self.epoch = epoch
        short = rng.random(n) < self.short_share
        self.enc = np.where(short, rng.integers(self.spec.min_encoder_steps, self.spec.max_encoder_steps + 1, n),
                            self.spec.max_encoder_steps)

    def __len__(self) -> int:
        return math.ceil(len(self.rows) / self.batch_size)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        part = slice(i * self.batch_size, (i + 1) * self.batch_size)
        windows = [
            window_from_segment(self.segments[s], int(end), self.spec, self.profiles[s], int(enc), with_future=True)
            for (s, end), enc in zip(self.rows[part], self.enc[part], strict=True)
        ]
        if self.drift_share or self.daily_share:
            rng = np.random.default_rng((self.seed, self.epoch, i))
            windows = [augment(w, rng, self.drift_share, self.daily_share, self.drift_targets) for w in windows]
        if self.scenario_share > 0:
            rng = np.random.default_rng((self.seed, self.epoch, i, 1))  # own stream: augment's draws unchanged
            windows = [apply_scenario(w, rng, self.scenario_share, self.scenario_mix)[0] for w in windows]
        return encode_windows(windows, self.spec)


class TftModule(pl.LightningModule):
    """Trains ``net`` on the mean pinball loss of normalised targets (each target counts equally)."""

    def __init__(self, net: ArgusTft, quantiles: list[float], learning_rate: float) -> None:
        super().__init__()
        self.net = net
        self.learning_rate = learning_rate
        self.register_buffer("quantiles", torch.tensor(quantiles, dtype=torch.float32))
        self.val_losses: list[float] = []

    def _loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        batch = dict(batch)
        future = batch.pop("future_z")
        batch["target_scale"] = torch.stack([batch["center"], batch["scale"]], dim=-1)
        return quantile_loss(stacked_prediction(self.net(batch)), future, self.quantiles)

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch)
        self.log("loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(batch["center"]))
        return loss

    def validation_step(self, batch, batch_idx):
        loss = self._loss(batch)
        self.log("val_loss", loss, prog_bar=True, on_epoch=True, batch_size=len(batch["center"]))

    def configure_optimizers(self):
        return torch.optim.Adam(self.net.parameters(), lr=self.learning_rate)


class Reporter(pl.Callback):
    """Sends progress events, honours ``should_stop``, keeps the best weights in memory."""

    def __init__(self, report, should_stop, epochs: int, data: WindowBatches, every: int = 10) -> None:
        self.report, self.should_stop, self.epochs, self.data, self.every = report, should_stop, epochs, data, every
        self.cancelled = False
        self.best_loss = math.inf
        self.best_state: dict | None = None
        self.history: list[float] = []
        self.started = time.monotonic()
        self.epoch_started = self.started
        self.train_seconds = 0.0

    def on_train_epoch_start(self, trainer, module) -> None:
        self.data.reshuffle(trainer.current_epoch)
        self.epoch_started = time.monotonic()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self.should_stop():
            self.cancelled = trainer.should_stop = True
        if batch_idx % self.every == 0 or batch_idx + 1 == len(self.data):
            done = trainer.current_epoch * len(self.data) + batch_idx + 1
            total = self.epochs * len(self.data)
            elapsed = time.monotonic() - self.started
            self.report({"stage": "train", "epoch": trainer.current_epoch + 1, "epochs": self.epochs,
                         "batch": batch_idx + 1, "batches": len(self.data), "step": trainer.global_step,
                         "loss": float(outputs["loss"]), "eta_s": round(elapsed / done * (total - done), 1)})

    def on_train_epoch_end(self, trainer, module) -> None:
        self.train_seconds += time.monotonic() - self.epoch_started

    def on_validation_epoch_end(self, trainer, module) -> None:
        if trainer.sanity_checking:
            return
        val = float(trainer.callback_metrics.get("val_loss", math.nan))
        self.history.append(round(val, 5))
        if val < self.best_loss:
            self.best_loss = val
            self.best_state = copy.deepcopy(module.net.state_dict())
        self.report({"stage": "epoch_end", "epoch": trainer.current_epoch + 1, "epochs": self.epochs,
                     "val_loss": val, "best_val_loss": self.best_loss, "step": trainer.global_step})


@attrs.frozen
class FitOutcome:
    net: ArgusTft
    spec: FeatureSpec
    network: dict
    epochs_run: int
    steps_run: int
    epochs_total: int
    steps_total: int
    stopped_early: bool
    device: str
    train_seconds: float
    best_val_loss: float | None
    val_history: list[float]
    validation: dict


def _start(config: TrainingConfig, profiles: Mapping[str, str], registry: DirectoryModelRegistry,
           from_model: str | None) -> tuple[ArgusTft, FeatureSpec, dict, int, int]:
    if from_model is None:
        spec, network = config.spec(profiles.values()), config.network()
        return build_network(spec, network), spec, network, 0, 0
    net, spec, manifest = load_network(registry, from_model)
    training = manifest.get("training", {})
    return net, spec, dict(manifest["network"]), int(training.get("epochs_total", 0)), \
        int(training.get("steps_total", 0))


def fit(split: SplitData, config: TrainingConfig, profiles: Mapping[str, str], registry: DirectoryModelRegistry,
        from_model: str | None, report, should_stop, progress_bar: bool) -> FitOutcome:
    """Run lightning's fit with early stopping on the validation split; return the best network."""
    torch.set_num_threads(max(1, config.threads))
    pl.seed_everything(config.seed, workers=True, verbose=False)
    net, spec, network, epochs_before, steps_before = _start(config, profiles, registry, from_model)
    net.train()
    prof = [spec.profile_index(profiles.get(s.server_name, "generic")) for s in split.train]
    train = WindowBatches(split.train, window_index(split.train, spec), spec, prof, config.batch_size,
                          config.max_samples_per_epoch, config.short_encoder_share, config.seed,
                          config.drift_share, config.daily_share, config.drift_targets, config.scenario_share,
                          resolve_mix(config.scenario_mix))
    val = _validation_batches(split, spec, profiles, config)
    if len(train.index) == 0:
        raise ValueError("not enough history to cut a single training window")
    reporter = Reporter(report, should_stop, config.epochs, train)
    callbacks: list[pl.Callback] = [reporter]
    if val is not None:
        callbacks.append(pl.callbacks.EarlyStopping("val_loss", patience=config.patience, mode="min"))
    trainer = pl.Trainer(
        accelerator=config.accelerator, devices=1, max_epochs=config.epochs, logger=False,
        enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=progress_bar,
        num_sanity_val_steps=0, gradient_clip_val=config.gradient_clip, callbacks=callbacks,
        limit_val_batches=config.limit_val_batches or 1.0, reload_dataloaders_every_n_epochs=0,
    )
    module = TftModule(net, list(network["quantiles"]), float(network["learning_rate"]))
    loader = DataLoader(train, batch_size=None, shuffle=False, num_workers=0)
    val_loader = DataLoader(val, batch_size=None, shuffle=False, num_workers=0) if val is not None else None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*treespec.*")
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        trainer.fit(module, loader, val_loader)
    if reporter.cancelled:
        raise TrainingCancelled("training cancelled")
    if reporter.best_state is not None:
        net.load_state_dict(reporter.best_state)
    net = net.cpu().eval()
    epochs_run, steps_run = trainer.current_epoch, trainer.global_step
    validation = validation_metrics(net, val, spec) if val is not None else {}
    return FitOutcome(net, spec, network, epochs_run, steps_run, epochs_before + epochs_run,
                      steps_before + steps_run, epochs_run < config.epochs, str(trainer.strategy.root_device),
                      reporter.train_seconds, None if math.isinf(reporter.best_loss) else reporter.best_loss,
                      reporter.history, validation)


def _validation_batches(split: SplitData, spec: FeatureSpec, profiles: Mapping[str, str],
                        config: TrainingConfig) -> WindowBatches | None:
    index = window_index(split.val, spec)
    if len(index) == 0:
        return None
    origin = np.array([split.val[s].ts[end - 1] for s, end in index])
    index = index[origin >= np.array([split.val_from[s] for s, _ in index])]
    index = index[index[:, 1] >= spec.max_encoder_steps]  # full encoders: comparable to seasonal naive
    if len(index) == 0:
        return None
    rng = np.random.default_rng(config.seed + 7)
    index = index[np.sort(rng.permutation(len(index))[: config.val_samples])]
    prof = [spec.profile_index(profiles.get(s.server_name, "generic")) for s in split.val]
    return WindowBatches(split.val, index, spec, prof, 128, None, 0.0, config.seed)


def validation_metrics(net: ArgusTft, val: WindowBatches, spec: FeatureSpec) -> dict:
    """MAE of the median, p10-p90 coverage and MAE of same-time-yesterday on the validation windows."""
    q = list(net.loss.metrics[0].quantiles)
    lo, mid, hi = q.index(0.1) if 0.1 in q else 0, q.index(0.5), q.index(0.9) if 0.9 in q else len(q) - 1
    err, naive_err, err_day, inside = (np.zeros(len(TARGETS)) for _ in range(4))
    count = naive_count = 0
    for b in range(len(val)):
        batch = val[b]
        future = batch["future_z"] * batch["scale"][:, None, :] + batch["center"][:, None, :]
        with torch.inference_mode():
            z = stacked_prediction(net(to_tensors({k: v for k, v in batch.items() if k != "future_z"})))
        pred = denormalize(z.numpy(), batch["center"], batch["scale"])
        rows = val.rows[b * val.batch_size : (b + 1) * val.batch_size]
        day = rows[:, 1] >= DAY_STEPS  # same time yesterday needs a day of history
        if day.any():
            naive = np.stack([val.segments[s].targets[end - DAY_STEPS : end - DAY_STEPS + spec.horizon_steps]
                              for s, end in rows[day]])
            naive_err += np.abs(naive - future[day]).sum(axis=(0, 1))
            naive_count += int(day.sum()) * future.shape[1]
            err_day += np.abs(pred[day][..., mid] - future[day]).sum(axis=(0, 1))
        err += np.abs(pred[..., mid] - future).sum(axis=(0, 1))
        inside += ((future >= pred[..., lo]) & (future <= pred[..., hi])).sum(axis=(0, 1))
        count += future.shape[0] * future.shape[1]
    return {
        "windows": int(len(val.rows)),
        "note": "pooled over validation windows (last val_days of each training server), natural units",
        "targets": {
            t: {"mae": round(err[i] / count, 4), "coverage_80": round(inside[i] / count, 4),
                "mae_day_windows": round(err_day[i] / naive_count, 4) if naive_count else None,
                "seasonal_naive_mae_day_windows": round(naive_err[i] / naive_count, 4) if naive_count else None}
            for i, t in enumerate(TARGETS)
        },
    }
