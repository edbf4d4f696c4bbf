"""Hook specifications: the public plugin API of Argus (every hook is prefixed ``argus_``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pluggy

from argus.domain.explanation import ExplainSettings
from argus.domain.profiles import LimitPolicy, ServerProfile
from argus.plugins import PROJECT
from argus.ports.alerting import AlertSink
from argus.ports.explaining import Explainer

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


@hookspec(firstresult=True)
def argus_limit_policy(server_name: str, profile: str) -> LimitPolicy | None:
    """Override how ``server_name``'s limits are read (absolute, learned from its history, or both).

    ``profile`` is the server's profile name. Return None to keep the profile's ``limit_policy``
    (the default for every built-in profile is ``LimitPolicy()``: mode "both"). The first non-None
    answer wins; called once per server per process (cached).
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


@hookspec
def argus_explainers(settings: ExplainSettings) -> Iterable[Explainer]:
    """Contribute explainers: each adds one section, under its ``name``, to ``GET /explain/{server}``.

    ``settings`` holds every ``ARGUS_EXPLAIN_*`` setting, typed (``settings.timeout_s``,
    ``precompute_max``, ``shap_samples``, ``shap_output``); it is also a mapping of the same settings
    as strings, lower-cased without the prefix (``settings["shap_samples"]``). Read what concerns
    you and ignore the rest.

    Called once at start-up in the engine process (the only process holding the model); the
    results of all plugins are combined, built-ins first, and two explainers with the same ``name``
    fail start-up. Each explainer is then called with an ``ExplanationContext`` (the server's
    window, forecast, risk assessment, profile and the forecaster itself) for the servers
    precomputed on each tick and for on-demand requests; it may read the sections of the explainers
    before it from ``context.sections``. The built-in plugin contributes ``shap`` (Kernel SHAP over
    the model's input series), ``attention`` (the TFT's attention as focus periods) and
    ``counterfactuals`` (operator scenarios re-run through the model and the risk scorer).
    """
