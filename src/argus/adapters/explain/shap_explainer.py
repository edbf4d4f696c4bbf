"""ShapExplainer: Kernel SHAP over a feature-masking game, players = the model's encoder input series.

A coalition keeps some input series as recorded and replaces every other one by its median over
the encoder window (the server's own recent history is the background: "this series told the
model nothing beyond its usual level"). Each coalition is one window; all sampled coalitions go
through the real forecaster in one batch. The explained output is, by default, the median forecast
peak of the metric that drives the risk (see docs/explain.md for why), or the risk score itself.

A feature the server's source lacks (``ExplanationContext.missing_features``) is no player: the
model read a masked stand-in for it, the same in every coalition, so it can be credited with
nothing; it is listed under ``missing_features`` instead.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from argus.adapters.explain.game import assess_variant, forecast_variants, trimmed_rows
from argus.domain.explanation import (
    FEATURES,
    ExplanationContext,
    explained_metric,
    forecast_peak,
    mask_features,
    rank_importances,
    stars,
)

OUTPUTS = ("driver_forecast", "risk_score")


class ShapExplainer:
    """Sampling Kernel SHAP (``shap.KernelExplainer``) with a fixed budget of coalitions per server."""

    name = "shap"

    def __init__(self, nsamples: int = 128, output: str = "driver_forecast", top: int = 5, seed: int = 0) -> None:
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        self.nsamples = nsamples
        self.output = output
        self.top = top
        self.seed = seed

    def explain(self, context: ExplanationContext) -> dict[str, Any]:
        import shap  # NOTE(explain): ~1 s to import; only the engine ever gets here

        started = time.perf_counter()
        metric = explained_metric(context.assessment, context.forecast)
        rows, encoder = trimmed_rows(context)
        base = context.window.values[rows].astype(np.float64)
        missing = context.missing_features()
        features = [f for f in FEATURES if f not in missing]
        calls = {"coalitions": 0, "batches": 0}

        def value(masks: np.ndarray) -> np.ndarray:
            variants = [mask_features(base, [f for f, keep in zip(features, m, strict=True) if keep < 0.5], encoder)
                        for m in masks]
            forecasts = forecast_variants(context, variants, rows)
            calls["coalitions"] += len(masks)
            calls["batches"] += 1
            return np.array([self._output(context, metric, v, rows, f) for v, f in zip(variants, forecasts,
                                                                                        strict=True)])

        players = len(features)
        state = np.random.get_state()
        np.random.seed(self.seed)  # shap samples coalitions with the global generator: same input, same answer
        try:
            explainer = shap.KernelExplainer(value, np.zeros((1, players)))
            phi = np.asarray(explainer.shap_values(np.ones((1, players)), nsamples=self.nsamples, l1_reg=False,
                                                   silent=True)).reshape(-1)
        finally:
            np.random.set_state(state)
        base_value = float(np.asarray(explainer.expected_value).reshape(-1)[0])
        ranked = rank_importances(dict(zip(features, phi.tolist(), strict=True)), self.top)
        return {
            "top_features": [
                {"feature": f.feature, "importance": f.importance, "stars": stars(f.importance),
                 "shap_value": float(f"{f.value:.4g}"), "share": f.share}
                for f in ranked
            ],
            "explained_output": self._describe(metric, context),
            "explained_metric": metric,
            "output_value": round(base_value + float(phi.sum()), 3),
            "base_value": round(base_value, 3),
            "method": "shap.KernelExplainer (sampling), players = encoder input series, a masked series "
                      "is replaced by its median over the encoder window",
            "players": players,
            "missing_features": missing,
            "nsamples": self.nsamples,
            "evaluations": calls["coalitions"],
            "forward_batches": calls["batches"],
            "seconds": round(time.perf_counter() - started, 3),
        }

    def _output(self, context: ExplanationContext, metric: str, values: np.ndarray, rows: slice, forecast) -> float:
        if self.output == "risk_score":
            return assess_variant(context, values, rows, forecast).score
        return forecast_peak(forecast, metric) if forecast is not None else float("nan")

    def _describe(self, metric: str, context: ExplanationContext) -> str:
        if self.output == "risk_score":
            return "risk_score"
        hours = min(context.forecast.horizon_steps, 96) * 5 / 60
        return f"{metric} forecast peak (p50 maximum over the next {hours:g} hours)"
