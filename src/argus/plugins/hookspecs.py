"""Hook specifications: the public plugin API of Argus (every hook is prefixed ``argus_``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pluggy

from argus.domain.profiles import ServerProfile
from argus.plugins import PROJECT
from argus.ports.alerting import AlertSink

hookspec = pluggy.HookspecMarker(PROJECT)


@hookspec
def argus_server_profiles() -> Iterable[ServerProfile]:
    """Contribute server profiles (name, display name, resource limits, name prefixes).

    Called once at start-up in every process; the results of all plugins are merged, and a
    duplicate profile name fails start-up. The built-in plugin contributes the reference's
    profiles (Database, ML Compute, Web API, Conductor Mgmt, ETL/Ingest, Risk Analytics, Generic).
    """


@hookspec(firstresult=True)
def argus_classify_server(server_name: str) -> str | None:
    """Name the profile of ``server_name``, or return None to pass.

    The first non-None answer wins; when every plugin passes, the profiles' name prefixes decide,
    and "generic" is last. Called once per server per process (the answer is cached), so it may
    be moderately expensive but must not block on the network.
    """


@hookspec
def argus_alert_sinks(settings: Mapping[str, Mapping[str, str]]) -> Iterable[AlertSink]:
    """Contribute alert sinks, configured from ``settings``; return an empty iterable to add none.

    ``settings`` holds one section per sink, read from ``ARGUS_SINK_<SECTION>_<KEY>`` variables:
    ``ARGUS_SINK_WEBHOOK_TIMEOUT_S=5`` is ``settings["webhook"]["timeout_s"] == "5"`` (names
    lower-cased, values strings). Read only your own section, and return a sink only when it is
    configured (for instance when its ``url`` is set); raise ``ConfigurationError`` on a bad value.

    Called once at start-up in the engine process; the results of all plugins are combined, and
    two sinks with the same ``name`` fail start-up. Each sink then receives every alert transition
    (``AlertSink.send``) and, periodically, the active alerts (``AlertSink.resend``) on a thread of
    its own behind a bounded queue. The built-in plugin contributes ``log`` (always),
    ``webhook`` (when ``webhook.url`` is set) and ``alertmanager`` (when ``alertmanager.url`` is set).
    """
