"""The real Prometheus, node_exporter and Alertmanager (Debian's packages) as test processes.

Each runs on 127.0.0.1 on a free port with its data in a temporary directory; none of the
packages' system services is used. ``missing_binaries`` says which are not installed (the test
skips with the names and the command that installs them).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

#: The Debian package of each binary (`apt-get install prometheus prometheus-node-exporter prometheus-alertmanager`).
BINARIES = {"prometheus": "prometheus", "prometheus-node-exporter": "prometheus-node-exporter",
            "prometheus-alertmanager": "prometheus-alertmanager"}


def missing_binaries() -> list[str]:
    return [name for name in BINARIES if shutil.which(name) is None]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str, timeout_s: float = 5.0) -> object:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return json.loads(response.read())


def wait_for(predicate, timeout_s: float, what: str, poll_s: float = 0.25, logs: tuple[Binary, ...] = ()):
    """Call ``predicate`` until it returns something truthy (connection errors count as not yet);
    on a timeout the error quotes the end of each of ``logs``."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (urllib.error.URLError, ConnectionError, OSError, ValueError) as ex:
            last_error = ex
        time.sleep(poll_s)
    tails = "".join(f"\n--- {binary.name}:\n{binary.log_tail()}" for binary in logs)
    raise AssertionError(f"{what}: not within {timeout_s:.0f} s (last error: {last_error!r}){tails}")


class Binary:
    """A process started with ``args`` (``command``, else the binary ``name`` found on the PATH) in
    its own session; its output goes to ``<workdir>/<name>.log``."""

    def __init__(self, name: str, args: list[str], workdir: Path, *, command: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = workdir / f"{name.replace(' ', '-')}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen([*(command or [shutil.which(name) or name]), *args], stdout=self._log,
                                        stderr=subprocess.STDOUT, cwd=workdir, env=env, start_new_session=True)

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def check_running(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM, then after ``timeout_s`` SIGKILL to its whole session; the exit code (None if killed)."""
        code = None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                code = self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        else:
            code = self.process.returncode
        self._log.close()
        return code


def start_node_exporter(workdir: Path) -> tuple[Binary, int]:
    port = free_port()
    binary = Binary("prometheus-node-exporter", [f"--web.listen-address=127.0.0.1:{port}"], workdir)
    return binary, port


def start_alertmanager(workdir: Path) -> tuple[Binary, int]:
    """Alertmanager with one receiver that sends nowhere (the API shows what it received); no cluster."""
    port = free_port()
    config = workdir / "alertmanager.yml"
    config.write_text("route:\n  receiver: argus-e2e\nreceivers:\n  - name: argus-e2e\n")
    storage = workdir / "alertmanager-data"
    storage.mkdir()
    binary = Binary("prometheus-alertmanager", [
        f"--config.file={config}", f"--storage.path={storage}", f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip port (Alertmanager binds 9094 for it otherwise)
    ], workdir)
    return binary, port


def prometheus_config(node_port: int, argus_port: int, api_key: str, instance: str) -> str:
    """node_exporter scraped every second and sent to Argus by remote_write; Argus's /metrics scraped too.

    ``instance`` replaces node_exporter's address as its ``instance`` label (Argus's server name,
    port stripped). Only the node job is written to Argus, as deploy/prometheus/prometheus.yml does.
    """
    return f"""\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ["127.0.0.1:{node_port}"]
        labels: {{instance: "{instance}"}}
  - job_name: argus
    metrics_path: /metrics
    authorization:
      credentials: "{api_key}"
    static_configs:
      - targets: ["127.0.0.1:{argus_port}"]
remote_write:
  - name: argus
    url: http://127.0.0.1:{argus_port}/api/v1/write
    authorization:
      credentials: "{api_key}"
    write_relabel_configs:
      - source_labels: [job]
        regex: node
        action: keep
    queue_config:
      batch_send_deadline: 1s
      max_samples_per_send: 2000
      min_backoff: 100ms
      max_backoff: 1s
"""


def start_prometheus(workdir: Path, config_text: str) -> tuple[Binary, int]:
    port = free_port()
    config = workdir / "prometheus.yml"
    config.write_text(config_text)
    storage = workdir / "prometheus-data"
    storage.mkdir()
    binary = Binary("prometheus", [
        f"--config.file={config}", f"--storage.tsdb.path={storage}", f"--web.listen-address=127.0.0.1:{port}",
    ], workdir)
    return binary, port


def promql(port: int, query: str) -> list[dict]:
    """The instant vector of ``query`` (Prometheus' HTTP API ``/api/v1/query``)."""
    body = get_json(f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query}))
    assert body["status"] == "success", body
    return body["data"]["result"]
