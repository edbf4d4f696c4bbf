"""The Temporal Fusion Transformer (pytorch-forecasting + lightning) behind the Forecaster port."""
