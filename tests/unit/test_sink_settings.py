"""ARGUS_SINK_<SECTION>_<KEY> variables become one settings section per sink."""

from __future__ import annotations

import pytest

from argus.domain.errors import ConfigurationError
from argus.entrypoints.settings import Settings, parse_sink_settings


def test_sink_variables_are_grouped_by_section_and_lower_cased():
    env = {"ARGUS_SINK_WEBHOOK_URL": "https://hooks.example/Argus", "ARGUS_SINK_WEBHOOK_TIMEOUT_S": "5",
           "ARGUS_SINK_ALERTMANAGER_URL": "http://127.0.0.1:9093", "ARGUS_SINK_EXAMPLE_FILE_PATH": "/tmp/a.jsonl"}
    assert parse_sink_settings(env) == {
        "webhook": {"url": "https://hooks.example/Argus", "timeout_s": "5"},  # values keep their case
        "alertmanager": {"url": "http://127.0.0.1:9093"},
        "example": {"file_path": "/tmp/a.jsonl"},
    }


def test_other_variables_and_empty_values_are_ignored():
    env = {"ARGUS_SINKS": "x", "ARGUS_DEVICE": "cpu", "PATH": "/bin", "ARGUS_SINK_WEBHOOK_URL": "  "}
    assert parse_sink_settings(env) == {}


@pytest.mark.parametrize("name", ["ARGUS_SINK_WEBHOOK", "ARGUS_SINK__URL", "ARGUS_SINK_WEBHOOK_"])
def test_a_sink_variable_without_section_or_key_fails_naming_it(name):
    with pytest.raises(ConfigurationError, match=name):
        parse_sink_settings({name: "https://x"})


def test_settings_from_env_carry_the_sink_sections():
    settings = Settings.from_env({"ARGUS_SINK_ALERTMANAGER_URL": "http://127.0.0.1:9093"})
    assert settings.sink_settings == {"alertmanager": {"url": "http://127.0.0.1:9093"}}
    assert Settings.from_env({}).sink_settings == {}
    assert Settings().sink_settings == {}


@pytest.mark.parametrize("section", ["webhook", "alertmanager"])
def test_sink_retries_are_parsed_as_a_whole_number(section):
    from argus.adapters.sinks.alertmanager import AlertmanagerSink
    from argus.adapters.sinks.webhook import WebhookAlertSink

    sink_class = {"webhook": WebhookAlertSink, "alertmanager": AlertmanagerSink}[section]
    sink = sink_class.from_settings({"url": "http://127.0.0.1:9/hook", "retries": "3"})
    assert sink.retries == 3 and isinstance(sink.retries, int)
    assert sink_class.from_settings({"url": "http://127.0.0.1:9/hook", "retries": "0"}).retries == 0
    for bad in ("x", "3.7", "-1"):  # "3.7" used to become 3 silently
        with pytest.raises(ConfigurationError, match=f"ARGUS_SINK_{section.upper()}_RETRIES must be a whole number"):
            sink_class.from_settings({"url": "http://127.0.0.1:9/hook", "retries": bad})
