"""Adapters: the technologies behind the ports (Falcon, SQLAlchemy, TFT, SHAP)."""
