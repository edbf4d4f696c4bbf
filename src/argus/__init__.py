"""Argus: predictive server monitoring (TFT forecasts, risk scores, alerts, explanations)."""

__version__ = "0.1.0"
