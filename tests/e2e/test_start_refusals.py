"""End to end: a start that cannot work says why in one line and exits non-zero (no traceback, no password)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

KEY = "start-key-abcdefghijklmnop"
UNREACHABLE = "postgresql://argus:s3cret-pass@127.0.0.1:1/argus"  # nothing listens on port 1


def _argus(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "ARGUS_DATA_DIR": str(tmp_path), "TACHYON_API_KEY": KEY, **env}
    return subprocess.run([sys.executable, "-m", "argus", *args], env=full_env, capture_output=True, text=True,
                          timeout=60)


def _one_line(result: subprocess.CompletedProcess) -> str:
    output = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode != 0
    assert len(output) == 1, output
    return output[0]


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["engine"], ["migrate"]])
def test_an_unreachable_database_is_one_line_with_the_url_and_no_password(tmp_path, command):
    line = _one_line(_argus(tmp_path, *command, ARGUS_DATABASE_URL=UNREACHABLE))
    assert "postgresql://argus:***@127.0.0.1:1/argus" in line and "Connection refused" in line
    assert "s3cret-pass" not in line


def test_an_sqlite_file_that_cannot_be_created_is_one_line(tmp_path):
    (tmp_path / "a-file").write_text("not a directory")
    line = _one_line(_argus(tmp_path, "serve", "--port", "0",
                            ARGUS_DATABASE_URL=f"sqlite:///{tmp_path / 'a-file' / 'argus.db'}"))
    assert "Cannot reach the database sqlite:///" in line and "a-file" in line


def test_a_short_api_key_is_refused_at_start(tmp_path):
    line = _one_line(_argus(tmp_path, "serve", "--port", "0", TACHYON_API_KEY="too-short"))
    assert "TACHYON_API_KEY is 9 characters long; use at least 16" in line
