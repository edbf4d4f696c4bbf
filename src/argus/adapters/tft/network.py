"""The TFT network (pytorch-forecasting) rebuilt from plain hyperparameters; imports torch: load lazily."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping

import numpy as np
import torch
from pytorch_forecasting import TemporalFusionTransformer
from pytorch_forecasting.metrics import MultiLoss, QuantileLoss

from argus.adapters.tft.features import FeatureSpec
from argus.domain.forecast import TARGETS

# NOTE(model): Lightning prints tips on every Trainer and model (MODEL_NOTES pitfall 7).
for _name in ("lightning.pytorch", "lightning", "pytorch_lightning", "lightning.fabric"):
    logging.getLogger(_name).setLevel(logging.ERROR)
warnings.filterwarnings("ignore", module="lightning.*")
warnings.filterwarnings("ignore", message=".*is an instance of `nn.Module`.*")

#: Hyperparameters a model is built from (manifest "network"); everything else is derived from FeatureSpec.
DEFAULT_NETWORK: dict[str, object] = {
    "hidden_size": 16,
    "attention_head_size": 2,
    "hidden_continuous_size": 8,
    "lstm_layers": 1,
    "dropout": 0.1,
    "learning_rate": 3e-3,
    "quantiles": [0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98],
}


class ArgusTft(TemporalFusionTransformer):
    """TFT whose outputs stay normalised: scaling lives in ``features.py``, shared with training."""

    def transform_output(self, prediction, target_scale, loss=None):  # noqa: ARG002
        return prediction


def build_network(spec: FeatureSpec, network: Mapping[str, object]) -> ArgusTft:
    """Build the untrained network for ``spec`` (names avoid nn.ModuleDict clashes: pitfall 1)."""
    quantiles = [float(q) for q in network["quantiles"]]  # type: ignore[union-attr]
    n_profiles = len(spec.profiles) + 1
    known = spec.known_reals
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lightning's save_hyperparameters advice about `loss`
        return _construct(spec, network, quantiles, n_profiles, known)


def _construct(spec: FeatureSpec, network: Mapping[str, object], quantiles: list[float], n_profiles: int,
               known: list[str]) -> ArgusTft:
    return ArgusTft(
        hidden_size=int(network["hidden_size"]),
        attention_head_size=int(network["attention_head_size"]),
        hidden_continuous_size=int(network["hidden_continuous_size"]),
        lstm_layers=int(network["lstm_layers"]),
        dropout=float(network["dropout"]),
        learning_rate=float(network["learning_rate"]),
        output_size=[len(quantiles)] * len(TARGETS),
        loss=MultiLoss([QuantileLoss(quantiles) for _ in TARGETS]),
        max_encoder_length=spec.max_encoder_steps,
        static_categoricals=["profile"],
        static_reals=spec.static_reals,
        time_varying_categoricals_encoder=[],
        time_varying_categoricals_decoder=[],
        time_varying_reals_encoder=known + spec.unknown_reals,
        time_varying_reals_decoder=known,
        x_reals=spec.x_reals,
        x_categoricals=["profile"],
        embedding_sizes={"profile": (n_profiles, min(4, n_profiles))},
        embedding_labels={},
        log_interval=-1,
        reduce_on_plateau_patience=1000,
    )


def to_tensors(batch: Mapping[str, np.ndarray], device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Turn ``encode_windows`` output into the network's ``x`` dict on ``device``."""
    x = {k: torch.from_numpy(v).to(device) for k, v in batch.items()}
    x["target_scale"] = torch.stack([x["center"], x["scale"]], dim=-1)  # unused: transform_output is identity
    return x


def stacked_prediction(out: Mapping[str, object]) -> torch.Tensor:
    """Return the network's quantile output as one (B, H, n_targets, Q) tensor."""
    return torch.stack(list(out["prediction"]), dim=2)  # type: ignore[arg-type]


def quantile_loss(pred: torch.Tensor, target: torch.Tensor, quantiles: torch.Tensor) -> torch.Tensor:
    """Mean pinball loss over batch, steps, targets and quantiles, in normalised units."""
    diff = target.unsqueeze(-1) - pred
    return torch.maximum(quantiles * diff, (quantiles - 1) * diff).mean()


def explanation_arrays(net: ArgusTft, out: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Attention over encoder steps (B, L) and variable weights, averaged over valid steps and heads."""
    lengths = out["encoder_lengths"]
    max_len = out["encoder_attention"].shape[-1]
    valid = (torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]).float()
    attention = out["encoder_attention"].mean(dim=(1, 2)) * valid  # (B, L): mean over decoder steps, heads
    attention = attention / attention.sum(dim=1, keepdim=True).clamp_min(1e-12)
    enc_vars = out["encoder_variables"].squeeze(-2)  # (B, L, n_vars)
    enc_importance = (enc_vars * valid.unsqueeze(-1)).sum(1) / valid.sum(1, keepdim=True)
    return {
        "attention": attention.float().cpu().numpy(),
        "encoder_importance": enc_importance.float().cpu().numpy(),
        "decoder_importance": out["decoder_variables"].squeeze(-2).mean(1).float().cpu().numpy(),
        "static_importance": out["static_variables"].squeeze(-2).float().cpu().numpy(),
    }
