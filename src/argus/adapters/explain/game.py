"""Re-run the real forecaster (and risk scorer) on changed copies of a server's window, in one batch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from argus.domain.explanation import ExplanationContext
from argus.domain.forecast import Forecast
from argus.domain.metrics import MetricsWindow
from argus.domain.risk import RiskAssessment, assess, current_values, recent_means

MARGIN_ROWS = 16  # rows kept before the encoder: the window cut must see the same segment start


def trimmed_rows(context: ExplanationContext) -> tuple[slice, slice]:
    """Return (rows to copy from the window, the encoder rows relative to that copy)."""
    encoder = context.encoder_rows()
    start = max(0, encoder.start - MARGIN_ROWS)
    # a forecaster that reads further back (the blend's 7-day profile) gets all it reads
    start = min(start, max(0, len(context.window) - int(getattr(context.forecaster, "history_steps", 0))))
    stop = len(context.window)
    return slice(start, stop), slice(encoder.start - start, stop - start)


def forecast_variants(context: ExplanationContext, variants: Sequence[np.ndarray],
                      rows: slice) -> list[Forecast | None]:
    """Forecast each variant of ``window.values[rows]`` (same timestamps and statuses) in one batch."""
    window = context.window
    ts, statuses = window.timestamps[rows], window.statuses[rows]
    names = [f"{context.server_name}\x00{i}" for i in range(len(variants))]
    windows = [MetricsWindow.from_arrays(name, len(ts), ts, values.astype(np.float32), statuses)
               for name, values in zip(names, variants, strict=True)]
    forecasts = context.forecaster.forecast(windows, dict.fromkeys(names, context.profile.name))
    return [forecasts.get(name) for name in names]


def assess_variant(context: ExplanationContext, values: np.ndarray, rows: slice,
                   forecast: Forecast | None) -> RiskAssessment:
    """Score a changed window as the tick would, keeping the tick's limits, normals, anomaly and maintenance.

    The unchanged window must score exactly the tick's risk (the counterfactuals' "before"), so the
    limits and normal ceilings are the tick's (``context.limits``/``normal``), not the profile's:
    a scenario rewrites the last hour only, and the normal ceilings come from before the last day.
    The anomaly (observations against earlier forecasts) cannot be replayed for an invented
    window, so it is carried over unchanged: a scenario never lowers that part of the score.
    """
    window = MetricsWindow.from_arrays(context.server_name, len(values), context.window.timestamps[rows],
                                       values.astype(np.float32), context.window.statuses[rows])
    original = context.assessment
    return assess(context.server_name, original.profile, context.tick_limits, current_values(window),
                  recent_means(window), forecast, original.anomaly, original.anomaly_metric,
                  maintenance=original.maintenance, normal=context.normal,
                  calibration=getattr(context.forecaster, "probability_calibration", None),
                  breaches=original.breaches)
