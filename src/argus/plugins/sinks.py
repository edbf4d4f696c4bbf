"""Build the AlertDispatcher over every plugin's configured sinks (the container wires it)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping

from argus.domain.dispatch import DEFAULT_QUEUE_SIZE, AlertDispatcher
from argus.plugins.host import PluginHost

log = logging.getLogger(__name__)


def build_dispatcher(
    sink_settings: Mapping[str, Mapping[str, str]],
    plugin_host: PluginHost,
    queue_size: int = DEFAULT_QUEUE_SIZE,
) -> AlertDispatcher:
    """Collect the sinks that ``sink_settings`` turn on and start one dispatcher lane per sink."""
    sinks = plugin_host.alert_sinks(sink_settings)
    log.info("alert sinks: %s", ", ".join(sink.name for sink in sinks) or "none")
    return AlertDispatcher(sinks, queue_size=queue_size)


def open_dispatcher(
    sink_settings: Mapping[str, Mapping[str, str]], plugin_host: PluginHost, close_timeout_s: float = 5.0
) -> Iterator[AlertDispatcher]:
    """Yield a dispatcher and close it (delivering what is queued) at shutdown: a container Resource."""
    dispatcher = build_dispatcher(sink_settings, plugin_host)
    try:
        yield dispatcher
    finally:
        dispatcher.close(close_timeout_s)
