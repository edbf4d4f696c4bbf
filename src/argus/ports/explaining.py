"""The Explainer port: one part of the answer to "why is this server at risk?"."""

from __future__ import annotations

from typing import Any, Protocol

from argus.domain.explanation import ExplanationContext


class Explainer(Protocol):
    """Computes one section of ``GET /explain/{server_name}`` from the model, in the engine process.

    ``name`` is the section's key in the response (the built-ins are ``shap``, ``attention`` and
    ``counterfactuals``); two explainers with the same name fail start-up. Explainers run in
    order, built-ins first, and may read the sections computed before theirs from
    ``context.sections`` (the counterfactuals use the SHAP top features, for instance).
    """

    name: str

    def explain(self, context: ExplanationContext) -> Any:
        """Return this section as JSON-ready data (dicts, lists, str, float, int, bool, None).

        Called in the engine process, which holds the model; ``context.forecaster`` may be called
        with changed copies of ``context.window``. Raise on failure: the section then becomes
        ``{"error": ...}`` and the other sections are still served. Keep it well under a second.
        """
