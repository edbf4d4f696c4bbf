"""One inference tick: forecast every ready server, assess its risk, move its alert, sum up the fleet."""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, cast

import attrs
import numpy as np

from argus.domain.alerts import ActiveAlert, AlertEvent
from argus.domain.anomaly import AnomalyTracker
from argus.domain.forecast import Forecast
from argus.domain.lifecycle import AlertTracker
from argus.domain.metrics import STATUS_CODE, FleetWindows, MetricsWindow
from argus.domain.profiles import Limits, ProfileResolver
from argus.domain.risk import (
    FleetSummary,
    RiskAssessment,
    assess,
    breach_history,
    current_values,
    recent_means,
    server_limits,
    summarize,
)

if TYPE_CHECKING:  # the domain names ports only for the type checker (see tests/test_architecture.py)
    from argus.ports.forecasting import ChunkedForecaster, Forecaster

log = logging.getLogger(__name__)
_MAINTENANCE = STATUS_CODE["maintenance"]
LIMITS_REFRESH_S = 3600


@attrs.frozen(eq=False)
class TickResult:
    """Everything one tick produced; the engine renders and records it in one go."""

    at: datetime
    model_name: str
    assessments: list[RiskAssessment]
    forecasts: Mapping[str, Forecast]
    windows: Mapping[str, MetricsWindow]
    events: list[AlertEvent]
    active: list[ActiveAlert]
    summary: FleetSummary
    servers_warming_up: int
    records_in_windows: int
    min_history_steps: int
    duration_s: float


class Predictor:
    """The tick use case, written against the Forecaster port.

    ``forecaster`` is None until a model is loaded (hot reload swaps it); the engine ticks only with one.
    """

    def __init__(self, forecaster: Forecaster | None, profiles: ProfileResolver, tracker: AlertTracker | None = None,
                 anomalies: AnomalyTracker | None = None) -> None:
        self.forecaster = forecaster
        self.profiles = profiles
        self.tracker = tracker or AlertTracker()
        self.anomalies = anomalies or AnomalyTracker()
        self._limits: dict[str, tuple[int, Limits, dict[str, float]]] = {}

    def limits_for(self, window: MetricsWindow) -> tuple[Limits, dict[str, float]]:
        """The limits and normal ceilings a tick scores ``window``'s server against (explanations reuse them).

        The normal ceilings read the week before the last day, so they are recomputed once per hour
        of the server's data (a quantile over a week costs 0.5 ms a server), not on every tick.
        """
        name = window.server_name
        last = int(window.timestamps[-1]) if len(window) else 0
        cached = self._limits.get(name)
        if cached is not None and 0 <= last - cached[0] < LIMITS_REFRESH_S:
            return cached[1], cached[2]
        limits, normal = server_limits(self.profiles.profile_for(name).limits, self.profiles.policy_for(name), window)
        self._limits[name] = (last, limits, normal)
        return limits, normal

    def tick(self, windows: FleetWindows, at: datetime,
             between_chunks: Callable[[], object] | None = None) -> TickResult:
        """Forecast all ready servers in one batch, assess them, update alerts.

        ``between_chunks`` is handed to a forecaster that works in chunks and takes it (the blend):
        the engine answers requests there. It must not change what the tick reads: the windows,
        the forecaster's state, this predictor's trackers (explanations read them, of the last tick).
        """
        started = time.perf_counter()
        forecaster = self.forecaster
        assert forecaster is not None, "the engine ticks only with a model"
        ready = windows.ready(forecaster.min_history_steps)
        profiles = {w.server_name: self.profiles.profile_for(w.server_name) for w in ready}
        names = {name: p.name for name, p in profiles.items()}
        if between_chunks is not None and takes_between_chunks(forecaster.forecast):
            chunked = cast("ChunkedForecaster", forecaster)
            forecasts = finite_forecasts(chunked.forecast(ready, names, between_chunks=between_chunks))
        else:
            forecasts = finite_forecasts(forecaster.forecast(ready, names))
        calibration = getattr(forecaster, "probability_calibration", None)  # the model's map, if any
        assessments = []
        for window in ready:
            forecast = forecasts.get(window.server_name)
            anomaly, anomaly_metric = self.anomalies.score(window)
            if not math.isfinite(anomaly):
                anomaly, anomaly_metric = 0.0, None
            if forecast is not None:
                self.anomalies.remember(forecast)
            profile = profiles[window.server_name]
            limits, normal = self.limits_for(window)
            assessment = partial(
                assess, window.server_name, profile.display_name, limits, current_values(window),
                recent_means(window), maintenance=int(window.statuses[-1]) == _MAINTENANCE,
                calibration=calibration, normal=normal, breaches=breach_history(limits, window),
            )
            assessments.append(_finite(assessment(forecast, anomaly, anomaly_metric), assessment))
        events = self.tracker.update(assessments, at)
        return TickResult(
            at=at, model_name=forecaster.name, assessments=assessments, forecasts=forecasts,
            windows={w.server_name: w for w in ready}, events=events, active=self.tracker.active(),
            summary=summarize(assessments), servers_warming_up=len(windows) - len(ready),
            records_in_windows=windows.total_records(), min_history_steps=forecaster.min_history_steps,
            duration_s=time.perf_counter() - started,
        )


def takes_between_chunks(function: Callable[..., object]) -> bool:
    """Whether ``function`` takes a ``between_chunks`` callback (forecasters and renders that work in parts)."""
    try:
        return "between_chunks" in inspect.signature(function).parameters
    except (TypeError, ValueError):  # a callable without a signature
        return False


def finite_forecasts(forecasts: Mapping[str, Forecast]) -> dict[str, Forecast]:
    """Drop forecasts holding NaN or infinity: their servers are scored on what they measure now.

    A non-finite forecast would make the risk score NaN, whose level reads healthy while the alert
    it opened can never close; the windows are clipped, so this only guards against the model.
    """
    kept = {}
    for name, forecast in forecasts.items():
        if all(np.isfinite(v).all() for v in forecast.values.values()):
            kept[name] = forecast
        else:
            log.warning("forecast for %s is not finite; scoring the server without it", name)
    return kept


def _finite(assessment: RiskAssessment, rescore: Callable[..., RiskAssessment]) -> RiskAssessment:
    """The assessment, or (when its score is not a number) the one from current values alone."""
    if math.isfinite(assessment.score) and all(math.isfinite(p) for p in (assessment.prob_30m, assessment.prob_8h)):
        return assessment
    log.warning("risk of %s is not finite; scoring it without forecast and anomaly", assessment.server_name)
    return rescore(None, 0.0, None)
