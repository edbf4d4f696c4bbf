"""Argus's own hook implementations: the built-in server profiles, alert sinks and explainers."""

from __future__ import annotations

from collections.abc import Mapping

from argus.adapters.sinks.alertmanager import AlertmanagerSink
from argus.adapters.sinks.log import LogAlertSink
from argus.adapters.sinks.webhook import WebhookAlertSink
from argus.domain.explanation import ExplainSettings
from argus.domain.profiles import BUILTIN_PROFILES, ServerProfile
from argus.plugins import hookimpl
from argus.ports.alerting import AlertSink
from argus.ports.explaining import Explainer


@hookimpl
def argus_server_profiles() -> list[ServerProfile]:
    return list(BUILTIN_PROFILES)


@hookimpl
def argus_alert_sinks(settings: Mapping[str, Mapping[str, str]]) -> list[AlertSink]:
    """The log always; the webhook and Alertmanager when their ``url`` is set."""
    sinks: list[AlertSink] = [LogAlertSink()]
    if settings.get("webhook", {}).get("url"):
        sinks.append(WebhookAlertSink.from_settings(settings["webhook"]))
    if settings.get("alertmanager", {}).get("url"):
        sinks.append(AlertmanagerSink.from_settings(settings["alertmanager"]))
    return sinks


@hookimpl(tryfirst=True)
def argus_explainers(settings: ExplainSettings) -> list[Explainer]:
    """SHAP, then attention, then counterfactuals (which use the SHAP top features); torch and shap load lazily."""
    from argus.adapters.explain.attention import AttentionExplainer
    from argus.adapters.explain.counterfactual import CounterfactualExplainer
    from argus.adapters.explain.shap_explainer import ShapExplainer

    shap = ShapExplainer(nsamples=settings.shap_samples, output=settings.shap_output)
    return [shap, AttentionExplainer(), CounterfactualExplainer()]
