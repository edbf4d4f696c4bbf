"""CounterfactualExplainer: change the window as an operator could, re-run the forecaster and the risk scorer."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from argus.adapters.explain.game import assess_variant, forecast_variants, trimmed_rows
from argus.domain.explanation import ExplanationContext, impact_text, relevant_scenarios

log = logging.getLogger(__name__)


class CounterfactualExplainer:
    """Scenarios tied to the server's top features (and its risk driver), ordered by how much they lower the risk."""

    name = "counterfactuals"

    def __init__(self, top_features: int = 3, min_importance: float = 0.1, max_scenarios: int = 4) -> None:
        self.top_features = top_features
        self.min_importance = min_importance  # a feature under 10% of the top one does not make a scenario relevant
        self.max_scenarios = max_scenarios

    def explain(self, context: ExplanationContext) -> list[dict[str, Any]]:
        driver = context.assessment.driver.metric if context.assessment.driver else None
        scenarios = relevant_scenarios(context.top_features(self.top_features, self.min_importance), driver,
                                       missing=context.missing_features())
        if not scenarios:
            return []
        rows, _ = trimmed_rows(context)
        base = context.window.values[rows].astype(np.float64)
        variants = [base] + [scenario.apply(base) for scenario in scenarios]
        forecasts = forecast_variants(context, variants, rows)  # the unchanged window too: same path both ways
        scores = [assess_variant(context, v, rows, f) for v, f in zip(variants, forecasts, strict=True)]
        before = scores[0].score
        if before != context.assessment.score:  # the re-run must be the tick: else "before" is not the page's risk
            log.warning("counterfactuals of %s: the unchanged window re-scores %.1f, its tick scored %.1f",
                        context.server_name, before, context.assessment.score)
        out = []
        for scenario, after in zip(scenarios, scores[1:], strict=True):
            out.append({
                "scenario": scenario.label,
                "impact": impact_text(before, after.score),
                "recommendation": scenario.recommendation(context.profile.name),
                "id": scenario.id,
                "risk_before": before,
                "risk_after": after.score,
                "level_after": after.level.value,
                "changes": scenario.changes,
            })
        out.sort(key=lambda item: (item["risk_after"] - item["risk_before"], item["id"]))
        return out[: self.max_scenarios]
