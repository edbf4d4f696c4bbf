"""Forecasts: quantile paths of every target for one server, plus what explanations need."""

from __future__ import annotations

from collections.abc import Mapping

import attrs
import numpy as np

from argus.domain.errors import ArgusError
from argus.domain.metric_table import METRICS
from argus.domain.metrics import STEP_SECONDS

#: What the model forecasts, in natural units and in the model's output order: the metric table's
#: forecast targets (cpu_pct = 100 - cpu_idle_pct, the others as recorded).
TARGETS: tuple[str, ...] = METRICS.targets
#: Which record field each target is read from (cpu_pct is derived from the idle share).
TARGET_FIELDS: Mapping[str, str] = {key: METRICS[key].fields[0] for key in TARGETS}


class ModelLoadError(ArgusError):
    """A model folder is missing, foreign, tampered with or inconsistent; nothing was loaded."""

    code = "model_invalid"


@attrs.frozen(eq=False)
class Forecast:
    """Quantile forecasts of one server for ``horizon`` steps after its last observation.

    ``values[target]`` has shape (horizon, len(quantiles)), natural units, quantiles ascending.
    ``encoder_attention`` (sums to 1) and ``encoder_timestamps`` are aligned, oldest first, with the
    last ``len(encoder_timestamps)`` steps of the input; empty for models without attention.
    """

    server_name: str
    timestamps: np.ndarray  # int64 epoch seconds; first = last observation + 300 s
    quantiles: tuple[float, ...]
    values: Mapping[str, np.ndarray]
    model_name: str = ""
    profile: str = ""
    encoder_timestamps: np.ndarray = attrs.field(factory=lambda: np.empty(0, dtype=np.int64))
    encoder_attention: np.ndarray = attrs.field(factory=lambda: np.empty(0, dtype=np.float32))
    encoder_importance: Mapping[str, float] = attrs.field(factory=dict)
    static_importance: Mapping[str, float] = attrs.field(factory=dict)
    decoder_importance: Mapping[str, float] = attrs.field(factory=dict)

    @property
    def horizon_steps(self) -> int:
        return len(self.timestamps)

    @property
    def start_epoch_s(self) -> int:
        return int(self.timestamps[0])

    @property
    def last_observation_epoch_s(self) -> int:
        return int(self.timestamps[0]) - STEP_SECONDS

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(self.values)

    def quantile(self, target: str, q: float) -> np.ndarray:
        """Return the path of quantile ``q`` of ``target`` (one of ``quantiles``; KeyError otherwise)."""
        for i, known in enumerate(self.quantiles):
            if abs(known - q) < 1e-9:
                return self.values[target][:, i]
        raise KeyError(f"quantile {q} not in {self.quantiles}")

    def values_array(self) -> np.ndarray:
        """All targets stacked as (horizon, len(TARGETS), len(quantiles)), in ``TARGETS`` order."""
        return np.stack([self.values[t] for t in TARGETS], axis=1)

    def p50(self, target: str) -> np.ndarray:
        """Return the median path of ``target``."""
        return self.quantile(target, 0.5)


@attrs.frozen
class ModelInfo:
    """One model in the registry, as its manifest describes it."""

    name: str
    created_at: str
    kind: str
    manifest: Mapping[str, object]
    is_current: bool = False
