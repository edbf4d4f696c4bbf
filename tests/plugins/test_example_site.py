"""The stand-alone example distribution (plugins/argus-example-site), found through its real entry point."""

from __future__ import annotations

import ast
import importlib.metadata
import json
from pathlib import Path

import pytest

from argus.entrypoints.settings import Settings
from argus.plugins.host import PluginHost
from tests.plugins.conftest import alert_event


@pytest.fixture(scope="module", autouse=True)
def example_site_installed():
    entry_points = importlib.metadata.entry_points(group="argus")
    if "example_site" not in entry_points.names:
        pytest.fail("argus-example-site is not installed: run scripts/bootstrap "
                    "(or .venv/bin/python -m pip install -e plugins/argus-example-site)")


def test_argus_loads_the_example_site_from_its_entry_point():
    host = PluginHost.load()
    assert "example_site" in host.plugin_names()


def test_its_profile_resolves_through_its_classifier():
    resolver = PluginHost.load().profile_resolver()
    profile = resolver.profile_for("exb-0042")
    assert (profile.name, profile.display_name) == ("example_batch", "Example Batch")
    assert profile.limits.cpu_pct == 99.0 and profile.limits.swap_pct == 30.0
    assert resolver.profile_for("ppdb001").name == "database"


def test_its_sink_is_on_only_when_configured_and_writes_a_line_per_event(tmp_path):
    host = PluginHost.load()
    assert "example_file" not in [sink.name for sink in host.alert_sinks(Settings.from_env({}).sink_settings)]
    path = tmp_path / "alerts" / "argus.jsonl"
    settings = Settings.from_env({"ARGUS_SINK_EXAMPLE_FILE_PATH": str(path)})
    sink = next(sink for sink in host.alert_sinks(settings.sink_settings) if sink.name == "example_file")
    sink.send(alert_event(server="exb-0042", profile="example_batch"))
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["server_name"] == "exb-0042" and json.loads(lines[0])["level"] == "warning"


def test_disabling_the_example_site_removes_its_profile_and_sink(tmp_path):
    host = PluginHost.load(disabled=["example_site"])
    assert "example_site" not in host.plugin_names()
    assert host.profile_resolver().profile_for("exb-0042").name == "generic"
    settings = Settings.from_env({"ARGUS_SINK_EXAMPLE_FILE_PATH": str(tmp_path / "a.jsonl")})
    assert [sink.name for sink in host.alert_sinks(settings.sink_settings)] == ["log"]


def test_the_example_site_imports_only_the_public_plugin_api():
    import argus_example_site

    allowed = ("argus.plugins", "argus.domain", "argus.ports", "argus.testing", "argus_example_site")
    for path in Path(argus_example_site.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("argus"):
                assert node.module.startswith(allowed), f"{path.name} imports {node.module}"
