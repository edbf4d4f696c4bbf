"""PluginHost: loads plugins (built-in and the ``argus`` entry points) and is the only caller of pm.hook."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import pluggy

from argus.domain.explanation import ExplainSettings
from argus.domain.profiles import LimitPolicy, ProfileResolver
from argus.plugins import PROJECT, builtin, hookspecs
from argus.ports.alerting import AlertSink
from argus.ports.explaining import Explainer

log = logging.getLogger(__name__)


class PluginHost:
    """Typed access to what plugins contribute."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm

    @classmethod
    def load(cls, disabled: Iterable[str] = (), entry_points: bool = True) -> PluginHost:
        """Register the built-ins and every ``argus`` entry point not named in ``disabled``."""
        pm = pluggy.PluginManager(PROJECT)
        pm.add_hookspecs(hookspecs)
        for name in disabled:  # ARGUS_DISABLED_PLUGINS=acme,other
            pm.set_blocked(name)
        if not pm.is_blocked("argus.builtin"):
            pm.register(builtin, name="argus.builtin")
        if entry_points:
            loaded = pm.load_setuptools_entrypoints(PROJECT)
            if loaded:
                log.info("loaded %d plugin(s) from the argus entry-point group", loaded)
        pm.check_pending()  # a misspelt hook fails at start-up, not silently
        return cls(pm)

    def plugin_names(self) -> list[str]:
        return sorted(name for name, plugin in self.pm.list_name_plugin() if plugin is not None)

    def profile_resolver(self) -> ProfileResolver:
        """Merge every plugin's profiles into one resolver; a duplicate name raises ValueError."""
        profiles = [p for contributed in self.pm.hook.argus_server_profiles() for p in contributed]
        return ProfileResolver(profiles, classifiers=[self._classify], policies=[self._policy])

    def _classify(self, server_name: str) -> str | None:
        name: str | None = self.pm.hook.argus_classify_server(server_name=server_name)
        return name

    def _policy(self, server_name: str, profile: str) -> LimitPolicy | None:
        policy: LimitPolicy | None = self.pm.hook.argus_limit_policy(server_name=server_name, profile=profile)
        return policy

    def alert_sinks(self, settings: Mapping[str, Mapping[str, str]]) -> list[AlertSink]:
        """Collect every plugin's configured sinks; a duplicate sink name raises ValueError."""
        sinks = [s for contributed in self.pm.hook.argus_alert_sinks(settings=settings) for s in contributed or ()]
        names = [sink.name for sink in sinks]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate alert sink name(s): {', '.join(duplicates)}")
        return sinks

    def explainers(self, settings: ExplainSettings | Mapping[str, str] | None = None) -> list[Explainer]:
        """Collect every plugin's explainers, built-ins first; a duplicate name raises ValueError.

        Plugins receive ``settings`` as an ``ExplainSettings`` (string mappings are read into one).
        """
        if not isinstance(settings, ExplainSettings):
            settings = ExplainSettings.from_strings(settings or {})
        found = [e for contributed in self.pm.hook.argus_explainers(settings=settings) for e in contributed or ()]
        names = [explainer.name for explainer in found]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate explainer name(s): {', '.join(duplicates)}")
        return found
