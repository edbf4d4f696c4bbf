"""Settings from the environment, and the API key that fails closed."""

from __future__ import annotations

import stat

import pytest

from argus.domain.errors import ConfigurationError
from argus.entrypoints.keys import generate_api_key, require_api_key, resolve_api_key
from argus.entrypoints.settings import Settings


def test_defaults_are_embedded_sqlite_under_the_data_dir(tmp_path):
    settings = Settings.from_env({"ARGUS_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'argus.db'}"
    assert settings.rate_limit_storage == "memory://" and settings.rolling_window_size == 2880
    assert settings.api_key is None and settings.device == "auto"


@pytest.mark.parametrize(
    "env", [{"ARGUS_ROLLING_WINDOW_SIZE": "ten"}, {"ARGUS_ROLLING_WINDOW_SIZE": "3"}, {"ARGUS_DEVICE": "tpu"},
            {"ARGUS_ENGINE_POLL_S": "-1"}],
)
def test_bad_settings_fail_at_start_up_with_the_variable_named(env):
    with pytest.raises(ConfigurationError, match=next(iter(env))):
        Settings.from_env(env)


def test_no_key_anywhere_fails_closed(tmp_path):
    settings = Settings.from_env({"ARGUS_DATA_DIR": str(tmp_path)})
    assert resolve_api_key(settings) is None
    with pytest.raises(ConfigurationError, match="--generate-key"):
        require_api_key(settings)


def test_a_generated_key_is_private_and_used_next_time(tmp_path):
    settings = Settings.from_env({"ARGUS_DATA_DIR": str(tmp_path)})
    key = generate_api_key(settings)
    assert len(key) >= 40
    assert stat.S_IMODE(settings.api_key_file.stat().st_mode) == 0o600
    assert require_api_key(settings) == key
    with pytest.raises(FileExistsError):
        generate_api_key(settings)


def test_the_environment_key_wins_over_the_file(tmp_path):
    generate_api_key(Settings.from_env({"ARGUS_DATA_DIR": str(tmp_path)}))
    settings = Settings.from_env({"ARGUS_DATA_DIR": str(tmp_path), "TACHYON_API_KEY": "from-env-0123456789"})
    assert require_api_key(settings) == "from-env-0123456789"


@pytest.mark.parametrize(("key", "says"), [
    ("short-key", "9 characters long; use at least 16"),
    ("0123456789abcde", "15 characters long"),
    ("   ", "only whitespace"),
    ("\t\n ", "only whitespace"),
    ("0123456789abcdef\x00x", "control character"),
])
def test_a_short_blank_or_unsendable_key_is_refused_at_start(tmp_path, key, says):
    settings = Settings.from_env({"ARGUS_DATA_DIR": str(tmp_path), "TACHYON_API_KEY": key})
    with pytest.raises(ConfigurationError, match="TACHYON_API_KEY") as refused:
        require_api_key(settings)
    assert says in str(refused.value)


def test_a_short_key_in_the_key_file_is_refused(tmp_path):
    settings = Settings.from_env({"ARGUS_DATA_DIR": str(tmp_path)})
    settings.api_key_file.write_text("  tiny \n")
    settings.api_key_file.chmod(0o600)
    with pytest.raises(ConfigurationError, match="4 characters long"):
        resolve_api_key(settings)


def test_a_key_of_16_characters_is_used_without_surrounding_whitespace(tmp_path):
    settings = Settings.from_env({"ARGUS_DATA_DIR": str(tmp_path), "TACHYON_API_KEY": " 0123456789abcdef\n"})
    assert require_api_key(settings) == "0123456789abcdef"


def test_a_key_file_readable_by_others_is_refused(tmp_path):
    settings = Settings.from_env({"ARGUS_DATA_DIR": str(tmp_path)})
    generate_api_key(settings)
    settings.api_key_file.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        resolve_api_key(settings)
