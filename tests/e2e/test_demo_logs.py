"""A demo-like start in JSON log mode: every line of the server's log is one JSON object, none is a library's
INFO dump (SHAP wrote numpy arrays at INFO on every explanation: 65 of 187 lines of a one-minute demo)."""

from __future__ import annotations

import collections
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
MODEL_DIR = Path(__file__).resolve().parents[2] / "models"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _explanations(db_path: Path) -> int:
    if not db_path.exists():
        return 0
    try:
        with sqlite3.connect(db_path, timeout=5) as db:
            return db.execute("SELECT count(*) FROM published WHERE key LIKE 'explain:%'").fetchone()[0]
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


@pytest.mark.skipif(not (MODEL_DIR / "CURRENT").exists(), reason="no bundled model in models/")
def test_a_demo_logs_json_lines_from_every_process_and_no_library_dumps(tmp_path):
    env = {**os.environ, "ARGUS_LOG_FORMAT": "json", "ARGUS_MODEL_DIR": str(MODEL_DIR)}
    for name in ("ARGUS_LOG_LIBRARIES", "ARGUS_LOG_LEVEL", "ARGUS_DATABASE_URL", "TACHYON_API_KEY"):
        env.pop(name, None)
    # Run until the engine has published an explanation (SHAP ran), however slow the machine, then stop it as
    # Ctrl-C would: a fixed --duration lost the race on a loaded CI machine (no explanation within 30 s).
    demo = subprocess.Popen([sys.executable, "-m", "argus", "demo", "--port", str(_free_port()), "--servers", "7",
                             "--data-dir", str(tmp_path)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    explained, deadline = 0, time.monotonic() + 240
    try:
        while not explained and demo.poll() is None and time.monotonic() < deadline:
            time.sleep(2)
            explained = _explanations(tmp_path / "argus.db")
    finally:
        demo.send_signal(signal.SIGTERM)  # the demo treats SIGTERM as Ctrl-C and stops its server cleanly
        _, stderr = demo.communicate(timeout=120)
    assert demo.returncode == 0, stderr[-2000:]
    assert explained > 0  # SHAP ran: without the library filter its INFO dumps would be in the log

    lines = (tmp_path / "serve.log").read_text().splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    loggers = collections.Counter(entry["logger"] for entry in entries)
    assert not [name for name in loggers if not (name.startswith("argus") or name.startswith("gunicorn"))], loggers
    assert not [line for line in lines if "array(" in line]
    assert {"supervisor", "web", "worker", "engine"} <= {entry["role"] for entry in entries}
    access = [entry for entry in entries if entry["logger"] == "argus.access"]
    assert access and all(len(entry["request_id"]) == 32 for entry in access)
    assert loggers["argus.engine"] >= 1 and loggers["gunicorn.error"] >= 1
