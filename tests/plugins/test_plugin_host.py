"""Plugins: built-in profiles, third-party entry points, blocking, and documented hookspecs."""

from __future__ import annotations

import importlib.metadata
import inspect
import sys
import types

import pytest

from argus.domain.profiles import Limits, ServerProfile
from argus.plugins import hookimpl, hookspecs
from argus.plugins.host import PluginHost


def _acme_module() -> types.ModuleType:
    module = types.ModuleType("argus_acme_plugin")

    @hookimpl
    def argus_server_profiles():
        return [ServerProfile("acme_batch", "Acme Batch", Limits(cpu_pct=99.0))]

    @hookimpl
    def argus_classify_server(server_name):
        return "acme_batch" if server_name.startswith("acme-batch-") else None

    module.argus_server_profiles = argus_server_profiles
    module.argus_classify_server = argus_classify_server
    return module


class _FakeDistribution:
    def __init__(self, entry_point) -> None:
        self.entry_points = [entry_point]
        self.metadata = {"name": "argus-acme"}


@pytest.fixture
def acme_installed(monkeypatch):
    """A fake distribution that registers ``acme`` in the ``argus`` entry-point group."""
    monkeypatch.setitem(sys.modules, "argus_acme_plugin", _acme_module())
    entry_point = importlib.metadata.EntryPoint(name="acme", value="argus_acme_plugin", group="argus")
    monkeypatch.setattr(importlib.metadata, "distributions", lambda **_: [_FakeDistribution(entry_point)])
    yield


def test_builtin_profiles_follow_the_reference_naming():
    resolver = PluginHost.load(entry_points=False).profile_resolver()
    names = {s: resolver.profile_for(s).display_name for s in ("ppdb001", "ppml0001", "ppapi02", "ppetl1", "zzz")}
    assert names == {"ppdb001": "Database", "ppml0001": "ML Compute", "ppapi02": "Web API",
                     "ppetl1": "ETL/Ingest", "zzz": "Generic"}


def test_a_third_party_plugin_adds_and_classifies_profiles(acme_installed):
    host = PluginHost.load()
    assert "acme" in host.plugin_names()
    resolver = host.profile_resolver()
    assert resolver.profile_for("acme-batch-7").limits.cpu_pct == 99.0
    assert resolver.profile_for("ppdb001").display_name == "Database"


def test_a_disabled_plugin_is_not_loaded(acme_installed):
    host = PluginHost.load(disabled=["acme"])
    assert "acme" not in host.plugin_names()
    assert host.profile_resolver().profile_for("acme-batch-7").name == "generic"


def test_duplicate_profile_names_fail_start_up(monkeypatch):
    host = PluginHost.load(entry_points=False)

    class Duplicate:
        @hookimpl
        def argus_server_profiles(self):
            return [ServerProfile("database", "Another Database")]

    host.pm.register(Duplicate())
    with pytest.raises(ValueError, match="duplicate"):
        host.profile_resolver()


def test_every_hookspec_is_documented_and_prefixed():
    specs = [f for name, f in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("argus_")]
    assert specs
    for spec in specs:
        assert spec.__doc__ and spec.__doc__.strip(), spec.__name__


def test_a_plugin_can_choose_a_servers_limit_policy():
    from argus.domain.profiles import LimitPolicy

    host = PluginHost.load(entry_points=False)

    class Policies:
        @hookimpl
        def argus_limit_policy(self, server_name, profile):
            return LimitPolicy(mode="learned") if server_name == "ppdb007" else None

    host.pm.register(Policies())
    resolver = host.profile_resolver()
    assert resolver.policy_for("ppdb007").mode == "learned"
    assert resolver.policy_for("ppdb001") == resolver.profile_for("ppdb001").limit_policy == LimitPolicy()
