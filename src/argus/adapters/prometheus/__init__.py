"""Prometheus as a source: remote-write bodies (wire) and node_exporter's series (node_exporter)."""
