"""Explainers of the TFT's forecasts (SHAP, attention, counterfactuals) and the engine's explain service.

Everything here runs in the engine process; ``shap`` is imported lazily, inside ``ShapExplainer.explain``.
"""
