"""Ports of the forecasting model: serving forecasts, and training callbacks.

The model registry (``adapters/tft/registry.py``, models on disk) is adapter-internal: only the TFT
adapters and the entry points use it, so it has no port (an unused ``ModelRegistry`` protocol was removed)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from argus.domain.forecast import Forecast
from argus.domain.metrics import MetricsWindow

#: Called with a dict such as {"stage": "epoch_end", "epoch": 2, "epochs": 5, "step": 640,
#: "train_loss": 0.41, "val_loss": 0.45, "eta_s": 120.0}; must return quickly.
ProgressFn = Callable[[dict[str, object]], None]
#: Polled between training batches; returning True stops training cleanly (nothing is saved).
ShouldStopFn = Callable[[], bool]


class Forecaster(Protocol):
    """Forecasts every target of many servers at once from their rolling windows."""

    name: str  # the model's name ("tft_20250115_100000", "seasonal_naive")
    min_history_steps: int  # windows shorter than this get no forecast
    horizon_steps: int  # steps forecast after each server's last observation

    def forecast(self, windows: Sequence[MetricsWindow], profiles: Mapping[str, str]) -> dict[str, Forecast]:
        """Return a Forecast per ready server, keyed by server name.

        ``profiles`` maps server name -> profile name (unknown or missing names are allowed).
        Servers without enough recent measured history are left out of the result, never raised on.
        """
        ...


class ChunkedForecaster(Forecaster, Protocol):
    """A forecaster that works in chunks and calls ``between_chunks`` between them (the blend does):
    the engine answers requests there. The tick hands it over only when ``forecast`` takes it."""

    def forecast(self, windows: Sequence[MetricsWindow], profiles: Mapping[str, str],
                 between_chunks: Callable[[], object] | None = None) -> dict[str, Forecast]:
        """As ``Forecaster.forecast``, calling ``between_chunks`` between chunks of servers."""
        ...
