"""End to end: `argus serve` (and `argus demo`) on a port another process holds is one line naming --port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

KEY = "port-key-abcdefghijklmnop"


@pytest.fixture
def taken_port():
    """A real listening socket on a free loopback port, held for the test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_a_port_in_use_is_one_line_suggesting_another(tmp_path, taken_port, command):
    env = {**os.environ, "ARGUS_DATA_DIR": str(tmp_path), "TACHYON_API_KEY": KEY}
    extra = ["--data-dir", str(tmp_path / "demo")] if command == "demo" else []
    result = subprocess.run([sys.executable, "-m", "argus", command, "--port", str(taken_port), *extra], env=env,
                            capture_output=True, text=True, timeout=60)
    output = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 1
    assert output == [f"Error: port {taken_port} on 127.0.0.1 is already in use (another Argus?): "
                      f"choose another with --port, e.g. --port {taken_port + 1}"]
    assert not (tmp_path / "demo").exists()  # the demo stopped before touching its data directory


def test_serve_help_lists_the_environment_that_matters():
    result = subprocess.run([sys.executable, "-m", "argus", "serve", "--help"], capture_output=True, text=True,
                            timeout=60)
    for name in ("TACHYON_API_KEY", "ARGUS_DATA_DIR", "ARGUS_DATABASE_URL", "ARGUS_MODEL_DIR", "ARGUS_LOG_LEVEL"):
        assert name in result.stdout
