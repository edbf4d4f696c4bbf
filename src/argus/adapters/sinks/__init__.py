"""Built-in alert sinks: the log, a JSON webhook, and Prometheus Alertmanager (stdlib HTTP only)."""
