"""The built-in web page at / and GET /servers/{name}/metrics; the page itself in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from dependency_injector import providers

from argus.testing import FixedForecaster, wire_record
from tests.conftest import API_KEY
from tests.http.test_feed_cli import serving

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FLEET = ("ppdb001", "ppdb003", "ppweb001", "ppml0001", "pprisk001")


def _feed(client, steps=12):
    for step in range(steps):
        records = [wire_record(name, step, mem_used_pct=80.0 + step if name == "ppdb003" else 60.0) for name in FLEET]
        assert client.simulate_post("/feed/data", json={"records": records}).status_code == 200


def test_the_page_and_its_files_need_no_key(client):
    for path, kind in (("/", "text/html"), ("/static/app.js", "text/javascript"), ("/static/style.css", "text/css")):
        result = client.simulate_get(path, headers={"X-API-Key": ""})
        assert result.status_code == 200 and result.headers["content-type"].startswith(kind)
    assert b"/static/app.js" in client.simulate_get("/").content
    assert client.simulate_get("/static/nope.js").status_code == 404


def test_the_page_talks_only_to_its_own_origin(client):
    for path in ("/", "/static/app.js", "/static/style.css"):
        assert not re.search(r"https?://", client.simulate_get(path).text.replace("http://www.w3.org/2000/svg", ""))


def test_server_metrics_give_cpu_as_100_minus_idle_and_memory(client):
    _feed(client)
    body = client.simulate_get("/servers/ppdb003/metrics", params={"hours": "24"}).json
    assert body["server_name"] == "ppdb003" and body["step_minutes"] == 5
    assert len(body["timestamps"]) == len(body["cpu_pct"]) == len(body["mem_pct"]) == 12
    assert body["timestamps"][0] == "2025-01-15T10:00:00" and body["cpu_pct"][0] == pytest.approx(100 - 64.4)
    assert body["mem_pct"][-1] == 91.0


def test_server_metrics_window_ends_at_the_servers_latest_record_and_is_capped(client, container):
    for first in range(0, 600, 200):
        records = [wire_record("ppweb001", step) for step in range(first, first + 200)]
        assert client.simulate_post("/feed/data", json={"records": records}).status_code == 200
    body = client.simulate_get("/servers/ppweb001/metrics", params={"hours": "1"}).json
    assert len(body["timestamps"]) == 12 and body["timestamps"][-1] == "2025-01-17T11:55:00"
    week = client.simulate_get("/servers/ppweb001/metrics", params={"hours": "168"}).json
    assert len(week["timestamps"]) <= 300 and week["step_minutes"] == 10


def test_server_metrics_errors(client):
    assert client.simulate_get("/servers/ppnope/metrics").status_code == 404
    _feed(client, steps=1)
    bad = client.simulate_get("/servers/ppdb001/metrics", params={"hours": "0"})
    assert bad.status_code == 422 and bad.json["detail"][0]["loc"] == ["query", "hours"]
    assert client.simulate_get("/servers/ppdb001/metrics", headers={"X-API-Key": "wrong"}).status_code == 401


def _chromium(url: str, tmp_path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=8000",
         "--window-size=1400,1000", *extra, url],
        capture_output=True, text=True, timeout=90,
    )


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install -y chromium; CI does)")
def test_the_page_shows_the_fleet_heatmap_top_risks_and_a_server_in_headless_chromium(client, container, tmp_path):
    hot = np.concatenate([np.linspace(80, 99.5, 10), np.full(86, 99.5)])
    container.forecaster.override(providers.Object(FixedForecaster(ppdb003={"mem_pct": hot})))
    _feed(client)
    engine = container.engine()
    engine.start()
    engine.tick()
    with serving(container.app()) as url:
        page = f"{url}/#key={API_KEY}&server=ppdb003"
        dom = _chromium(page, tmp_path, "--dump-dom")
        shot = tmp_path / "page.png"
        _chromium(page, tmp_path, f"--screenshot={shot}")
    if os.environ.get("ARGUS_TEST_SCREENSHOT"):
        shutil.copy(shot, os.environ["ARGUS_TEST_SCREENSHOT"])  # to look at it
    html = dom.stdout
    assert 'data-state="loaded"' in html, dom.stderr[-2000:]
    tiles = dict(re.findall(r'class="tile[^"]*" data-server="([^"]+)" data-level="([^"]+)"', html))
    assert set(tiles) == set(FLEET)
    assert tiles["ppdb003"] == "critical" and tiles["ppdb001"] == "healthy"
    assert re.search(r'data-level-count="critical">1<', html)
    assert "Memory exhaustion predicted" in html  # top risks with the message
    assert "ppdb003 · Database" in html and 'class="p50"' in html and 'class="band"' in html  # chart with band
    assert 'class="history"' in html
    assert "data-explain-status" in html or "What drives the forecast" in html  # an explanation, or why not
    assert re.search(r"Expected incidents: [\d.<\s]+ in 30 min, [\d.<\s]+ in 8 h · 1 server above 50 %", html)
    assert "P(incident)" not in html
    tick = re.search(r'data-tick-at="([^"]+)"[^>]*>explains the tick of (\d\d:\d\d) UTC · risk ([\d.]+)', html)
    assert tick and tick[1][11:16] == tick[2]  # ppdb003 is critical: its precomputed explanation, of this tick
    assert shot.exists() and shot.stat().st_size > 10_000
