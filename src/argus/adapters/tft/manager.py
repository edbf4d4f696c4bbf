"""ModelManager: hot-reloads the served model in the engine, checked before it goes live."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from argus.adapters.tft.registry import DirectoryModelRegistry
from argus.domain.errors import ModelNotLoadedError
from argus.domain.forecast import ModelLoadError
from argus.domain.metrics import FIELD_INDEX, METRIC_FIELDS, STATUS_CODE, STEP_SECONDS, MetricsWindow

log = logging.getLogger("argus.engine")


def probe_window(steps: int) -> MetricsWindow:
    """A plausible synthetic server (daily rhythm, moderate load) to test-forecast a candidate model on."""
    t = np.arange(steps)
    values = np.zeros((steps, len(METRIC_FIELDS)), dtype=np.float32)
    cpu = 40 + 15 * np.sin(2 * np.pi * t / 288)
    values[:, FIELD_INDEX["cpu_user_pct"]] = cpu * 0.8
    values[:, FIELD_INDEX["cpu_sys_pct"]] = cpu * 0.2
    values[:, FIELD_INDEX["cpu_idle_pct"]] = 100 - cpu
    values[:, FIELD_INDEX["mem_used_pct"]] = 60 + 5 * np.sin(2 * np.pi * t / 288)
    values[:, FIELD_INDEX["disk_usage_pct"]] = 50
    values[:, FIELD_INDEX["net_in_mb_s"]] = 5
    values[:, FIELD_INDEX["net_out_mb_s"]] = 3
    values[:, FIELD_INDEX["load_average"]] = cpu / 25
    ts = 1_736_899_200 + STEP_SECONDS * t.astype(np.int64)
    status = np.full(steps, STATUS_CODE["healthy"], dtype=np.int8)
    return MetricsWindow.from_arrays("argus-probe", steps, ts, values, status)


def check_forecaster(forecaster) -> None:
    """Raise ModelLoadError unless ``forecaster`` gives sane forecasts for a probe server."""
    window = probe_window(max(forecaster.min_history_steps, 48))
    forecasts = forecaster.forecast([window], {"argus-probe": "generic"})
    forecast = forecasts.get("argus-probe")
    if forecast is None:
        raise ModelLoadError(f"model {forecaster.name} returned no forecast for a test server")
    if len(forecast.timestamps) != forecaster.horizon_steps or forecast.timestamps[0] <= window.last_epoch_s:
        raise ModelLoadError(f"model {forecaster.name} forecast the wrong steps")
    for target, values in forecast.values.items():
        if not np.all(np.isfinite(values)) or np.any(np.diff(values, axis=1) < -1e-6):
            raise ModelLoadError(f"model {forecaster.name} gave non-finite or unordered quantiles for {target}")


class ModelManager:
    """Loads, checks and swaps the engine's forecaster; keeps ``CURRENT`` and /status in step."""

    def __init__(self, registry: DirectoryModelRegistry, predictor, status, loader: Callable, device: str = "auto",
                 threads: int = 1) -> None:
        self.registry = registry
        self.predictor = predictor
        self.status = status
        self.loader = loader
        self.device = device
        self.threads = threads
        self._refused: str | None = None

    @property
    def loaded_name(self) -> str | None:
        forecaster = self.predictor.forecaster
        return None if forecaster is None else forecaster.name

    def reload(self, name: str | None = None) -> dict:
        """Load ``name`` (default: the newest model that loads), test it, swap it in; the old one stays on failure."""
        if name is None:
            name, candidate = self._newest_loadable()
        else:
            candidate = self._load_checked(name)
        previous = self.loaded_name
        # CURRENT first: whoever sees the new model serving (a test, /status, another host) finds CURRENT naming it
        self.registry.set_current(name)
        self.predictor.forecaster = candidate  # one assignment: the next tick uses the new model
        self.status.model_loaded = True
        self.status.model_path = f"{self.registry.root.name}/{name}"
        log.info("model %s is live (was %s)", name, previous or "none")
        return {"success": True, "model": name, "message": "Model reloaded successfully", "previous_model": previous}

    def _load_checked(self, name: str):
        self.registry.info(name)  # raises ModelLoadError for unknown, foreign or tampered folders
        try:
            candidate = self.loader(self.registry, name, device=self.device, threads=self.threads)
            check_forecaster(candidate)
        except ModelLoadError:
            raise
        except Exception as ex:  # noqa: BLE001 - any loading failure keeps the old model serving
            raise ModelLoadError(f"model {name} could not be loaded: {type(ex).__name__}: {ex}") from ex
        return candidate

    def _newest_loadable(self) -> tuple[str, object]:
        """The newest model that loads and passes the check: a broken newest folder is skipped, never served."""
        models = self.registry.list()  # only folders with a readable manifest and weights matching it
        if not models:
            raise ModelNotLoadedError(f"No model in {self.registry.root}")
        refused = []
        for info in models:
            try:
                return info.name, self._load_checked(info.name)
            except ModelLoadError as ex:
                log.warning("reload: skipping %s (%s)", info.name, ex)
                refused.append(str(ex))
        raise ModelLoadError(f"No model in {self.registry.root.name}/ can be loaded: {'; '.join(refused)}")

    def follow_current(self) -> None:
        """Reload when ``CURRENT`` names another model (``argus reload``, another host); log failures."""
        current = self.registry.current()
        if current is None or current in (self.loaded_name, self._refused):
            return
        try:
            self.reload(current)
        except Exception as ex:  # noqa: BLE001 - keep serving the old model
            self._refused = current  # log once per refused name
            log.error("CURRENT names %s but it cannot go live (%s); still serving %s", current, ex, self.loaded_name)
