"""OpenTelemetry as a source: OTLP/HTTP metrics bodies (wire) and the hostmetrics receiver's names (hostmetrics)."""
