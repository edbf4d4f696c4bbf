"""AttentionExplainer: where in its input window the TFT looked, from its own attention weights."""

from __future__ import annotations

from typing import Any

import numpy as np

from argus.domain.explanation import ExplanationContext, analysis_sentence, feature_series, focus_periods
from argus.domain.metrics import wire_time


class AttentionExplainer:
    """Focus periods from the forecast's encoder attention (mean over heads and horizon steps)."""

    name = "attention"

    def __init__(self, max_periods: int = 3) -> None:
        self.max_periods = max_periods

    def explain(self, context: ExplanationContext) -> dict[str, Any]:
        forecast = context.forecast
        periods = focus_periods(forecast.encoder_attention, forecast.encoder_timestamps, self.max_periods)
        top = context.top_features(1)
        feature = top[0] if top else None
        rows = context.encoder_rows()
        ts = context.window.timestamps[rows]
        values = feature_series(context.window.values[rows], feature) if feature else np.empty(0)
        enc_ts = forecast.encoder_timestamps
        return {
            "focus_periods": [p.phrase for p in periods],
            "analysis": analysis_sentence(periods[0] if periods else None, feature, values, ts),
            "periods": [
                {"phrase": p.phrase, "start": wire_time(p.start_epoch_s), "end": wire_time(p.end_epoch_s),
                 "attention": p.attention}
                for p in periods
            ],
            "window": {"start": wire_time(int(enc_ts[0])), "end": wire_time(int(enc_ts[-1])), "steps": len(enc_ts)}
            if len(enc_ts) else None,
            "feature": feature,
        }
