"""Sinks through the plugin host: built-ins switched on by settings, third-party sinks, blocking."""

from __future__ import annotations

import importlib.metadata
import sys
import threading
import types

import pytest

from argus.domain.errors import ConfigurationError
from argus.entrypoints.settings import Settings
from argus.plugins import hookimpl
from argus.plugins.host import PluginHost
from argus.plugins.sinks import build_dispatcher, open_dispatcher
from tests.plugins.conftest import alert_event


class PagerSink:
    name = "pager"

    def __init__(self, number: str) -> None:
        self.number = number

    def send(self, event) -> None:
        return None

    def resend(self, active) -> None:
        return None


def _pager_module() -> types.ModuleType:
    module = types.ModuleType("argus_pager_plugin")

    @hookimpl
    def argus_alert_sinks(settings):
        number = settings.get("pager", {}).get("number")
        return [PagerSink(number)] if number else []

    module.argus_alert_sinks = argus_alert_sinks
    return module


class _FakeDistribution:
    def __init__(self, entry_point) -> None:
        self.entry_points = [entry_point]
        self.metadata = {"name": "argus-pager"}


@pytest.fixture
def pager_installed(monkeypatch):
    """A fake distribution that registers ``pager`` in the ``argus`` entry-point group."""
    monkeypatch.setitem(sys.modules, "argus_pager_plugin", _pager_module())
    entry_point = importlib.metadata.EntryPoint(name="pager", value="argus_pager_plugin", group="argus")
    monkeypatch.setattr(importlib.metadata, "distributions", lambda **_: [_FakeDistribution(entry_point)])
    yield


def _names(host: PluginHost, env: dict[str, str]) -> list[str]:
    return [sink.name for sink in host.alert_sinks(Settings.from_env(env).sink_settings)]


def test_only_the_log_sink_is_on_without_settings():
    assert _names(PluginHost.load(entry_points=False), {}) == ["log"]


def test_webhook_and_alertmanager_are_on_when_their_url_is_set():
    env = {"ARGUS_SINK_WEBHOOK_URL": "https://hooks.example/argus", "ARGUS_SINK_WEBHOOK_TIMEOUT_S": "2",
           "ARGUS_SINK_ALERTMANAGER_URL": "http://127.0.0.1:9093"}
    host = PluginHost.load(entry_points=False)
    sinks = {sink.name: sink for sink in host.alert_sinks(Settings.from_env(env).sink_settings)}
    assert list(sinks) == ["log", "webhook", "alertmanager"]
    assert sinks["webhook"].timeout_s == 2.0
    assert sinks["alertmanager"].endpoint == "http://127.0.0.1:9093/api/v2/alerts"


@pytest.mark.parametrize(
    "env", [{"ARGUS_SINK_WEBHOOK_URL": "http://x", "ARGUS_SINK_WEBHOOK_TIMEOUT_S": "soon"},
            {"ARGUS_SINK_WEBHOOK_URL": "http://x", "ARGUS_SINK_WEBHOOK_RETRIES": "-1"},
            {"ARGUS_SINK_ALERTMANAGER_URL": "http://x", "ARGUS_SINK_ALERTMANAGER_MIN_LEVEL": "loud"},
            {"ARGUS_SINK_WEBHOOK_URL": "file:///etc/passwd"}],
)
def test_a_bad_sink_setting_fails_start_up_naming_the_variable(env):
    bad = list(env)[-1]
    with pytest.raises(ConfigurationError, match=bad):
        _names(PluginHost.load(entry_points=False), env)


def test_a_third_party_plugin_adds_a_sink_from_its_own_section(pager_installed):
    host = PluginHost.load()
    assert _names(host, {}) == ["log"]
    assert sorted(_names(host, {"ARGUS_SINK_PAGER_NUMBER": "555-0100"})) == ["log", "pager"]


def test_a_disabled_plugin_adds_no_sink(pager_installed):
    host = PluginHost.load(disabled=["pager"])
    assert _names(host, {"ARGUS_SINK_PAGER_NUMBER": "555-0100"}) == ["log"]


def test_disabling_the_builtin_plugin_removes_the_builtin_sinks():
    host = PluginHost.load(disabled=["argus.builtin"], entry_points=False)
    assert _names(host, {"ARGUS_SINK_WEBHOOK_URL": "http://x"}) == []


def test_two_sinks_with_one_name_fail_start_up():
    host = PluginHost.load(entry_points=False)

    class AnotherLog:
        @hookimpl
        def argus_alert_sinks(self):  # an impl may take fewer arguments than its spec
            return [PagerSink("1")] + [type("Log", (PagerSink,), {"name": "log"})("2")]

    host.pm.register(AnotherLog())
    with pytest.raises(ValueError, match="duplicate alert sink name.*log"):
        host.alert_sinks({})


def test_the_built_dispatcher_delivers_to_a_configured_webhook(receiver):
    settings = Settings.from_env({"ARGUS_SINK_WEBHOOK_URL": receiver.url + "/hook"})
    dispatcher = build_dispatcher(settings.sink_settings, PluginHost.load(entry_points=False))
    try:
        dispatcher.dispatch([alert_event()])
        assert dispatcher.flush(timeout_s=5)
        assert [r.path for r in receiver.requests] == ["/hook"]
        assert dispatcher.stats()["webhook"]["sent"] == 1 and dispatcher.stats()["log"]["sent"] == 1
    finally:
        assert dispatcher.close(timeout_s=5)


def test_the_dispatcher_resource_closes_at_shutdown():
    resource = open_dispatcher({}, PluginHost.load(entry_points=False))
    dispatcher = next(resource)
    assert dispatcher.sink_names == ["log"]
    resource.close()
    assert not any(t.name == "argus-sink-log" and t.is_alive() for t in threading.enumerate())
