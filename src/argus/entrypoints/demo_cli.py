"""``argus demo``: Argus on SQLite with the bundled model, fed a simulated fleet through the real HTTP API."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from argus.domain.metrics import STEP_SECONDS

#: Generous limits for the demo's own server: the feeder, its status line and a browser share one key.
DEMO_RATE_LIMITS = "feed=6000/minute,predictions=600/minute,alerts=600/minute,explain=120/minute,historical=120/minute"
BACKFILL_STEPS_PER_REQUEST = 12
STATUS_EVERY_S = 2.0
DEMO_CLOCK_SKEW_S = 10 * 365 * 86400  # simulated time runs ahead of the clock (--speed): accept it
LEVEL_MARKS = (("critical", "🔴"), ("warning", "🟠"), ("degraded", "🟡"), ("healthy", "🟢"))


@click.command("demo")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--servers", default=45, show_default=True, type=click.IntRange(7, 2000),
              help="Simulated servers (the reference's naming: ppdb001, ppml0001, ppweb001, ...).")
@click.option("--speed", default=60.0, show_default=True, type=click.FloatRange(1, 3600),
              help="Time acceleration: simulated seconds per real second (60: a 5-minute step every 5 s).")
@click.option("--backfill-hours", default=6.0, show_default=True, type=click.FloatRange(1.0, 48.0),
              help="History posted at once before going live (the model needs 1 hour per server).")
@click.option("--seed", default=7, show_default=True, type=int, help="Seed of the fleet simulator.")
@click.option("--data-dir", default="var/demo", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="The demo's data directory (its database is recreated on every start; the key is kept).")
@click.option("--duration", default=0.0, type=click.FloatRange(0),
              help="Stop after this many seconds live (0: run until Ctrl-C).")
@click.option("--export", "export_to", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Write the fleet's records to this JSON Lines file (.gz: gzipped) instead of running: "
                   "--hours of history ending now, for `argus feed`.")
@click.option("--hours", default=24.0, show_default=True, type=click.FloatRange(0.1, 34 * 24.0),
              help="With --export: hours of history (within the server's 35-day ARGUS_RECORDS_RETENTION_DAYS).")
def demo(port: int, host: str, servers: int, speed: float, backfill_hours: float, seed: int, data_dir: Path,
         duration: float, export_to: Path | None, hours: float) -> None:
    """Run Argus with a simulated fleet: backfill a few hours, then feed live in accelerated time.

    Scenarios (memory leak, CPU runaway, disk filling, swap storm) start within the first minutes;
    alerts show in the terminal and on the web page at http://HOST:PORT/. With --export FILE,
    only write the fleet's records (dated up to now) to FILE and exit.
    """
    from argus.adapters.demo.client import ArgusClient, FeedRejectedError, ServerUnavailableError
    from argus.adapters.demo.fleet import FleetSimulator

    if export_to is not None:
        _export(export_to, servers, hours, seed)
        return

    from argus.entrypoints.cli import check_port_free

    check_port_free(host, port)  # before the demo's database is recreated
    data_dir = data_dir.expanduser().resolve()
    key = _fresh_data_dir(data_dir)
    live_step = max(12, round(backfill_hours * 3600 / STEP_SECONDS))
    start = _floor_step(datetime.now(UTC)) - timedelta(seconds=STEP_SECONDS * live_step)
    sim = FleetSimulator(servers, seed=seed, start=start, live_step=live_step)
    url = f"http://{host}:{port}"
    click.echo(f"Argus demo: {servers} simulated servers, {speed:g}x real time, data in {data_dir}")
    click.echo(f"API key: {key}\nWeb page: {url}/#key={key}\nServer log: {data_dir / 'serve.log'}\n")
    server = _start_server(data_dir, key, host, port)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        client = ArgusClient(url, key, max_retries=3)
        _wait_healthy(client, server, data_dir)
        _backfill(client, sim)
        _live(client, sim, speed, duration)
    except KeyboardInterrupt:
        click.echo("\nstopping the demo ...")
    except (FeedRejectedError, ServerUnavailableError) as ex:
        raise click.ClickException(f"{ex} (see {data_dir / 'serve.log'})") from None
    finally:
        _stop(server)
    click.echo("demo stopped")


def _export(path: Path, servers: int, hours: float, seed: int) -> None:
    """Write ``hours`` of the fleet, one JSON record a line, the last step the latest five minutes before now."""
    from argus.adapters.demo.export import export_fleet

    steps = max(1, round(hours * 3600 / STEP_SECONDS))
    end = _floor_step(datetime.now(UTC))
    written = export_fleet(path, servers=servers, steps=steps, end=end, seed=seed)
    click.echo(f"wrote {written} records ({servers} servers x {steps} five-minute steps up to {end:%Y-%m-%d %H:%M} UTC)"
               f" to {path}")


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _floor_step(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0, minute=moment.minute - moment.minute % 5)


def _fresh_data_dir(data_dir: Path) -> str:
    """Recreate the demo database (refusing while another demo uses it) and return the demo's key."""
    from argus.entrypoints.keys import generate_api_key, resolve_api_key
    from argus.entrypoints.settings import Settings

    data_dir.mkdir(parents=True, exist_ok=True)
    lock = data_dir / "argus.db.engine.lock"
    if lock.exists():
        with open(lock, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise click.ClickException(f"another Argus is running on {data_dir}; stop it first") from None
    for old in data_dir.glob("argus.db*"):
        old.unlink()
    settings = Settings(data_dir=data_dir)
    return resolve_api_key(settings) or generate_api_key(settings)


def _start_server(data_dir: Path, key: str, host: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "ARGUS_DATA_DIR": str(data_dir), "ARGUS_DATABASE_URL": f"sqlite:///{data_dir / 'argus.db'}",
           "TACHYON_API_KEY": key, "ARGUS_RATE_LIMITS": os.environ.get("ARGUS_RATE_LIMITS", DEMO_RATE_LIMITS),
           "ARGUS_MAX_CLOCK_SKEW_S": str(DEMO_CLOCK_SKEW_S)}
    model_dir = Path(os.environ.get("ARGUS_MODEL_DIR") or "models").resolve()
    if not (model_dir / "CURRENT").exists():
        click.echo(f"warning: no model in {model_dir} (set ARGUS_MODEL_DIR): predictions will say Model not loaded")
    env["ARGUS_MODEL_DIR"] = str(model_dir)
    log = open(data_dir / "serve.log", "ab")  # noqa: SIM115 - the child keeps it open
    return subprocess.Popen([sys.executable, "-m", "argus", "serve", "--host", host, "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait_healthy(client, server: subprocess.Popen, data_dir: Path, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = (data_dir / "serve.log").read_text(errors="replace").splitlines()[-15:]
            raise click.ClickException("argus serve exited:\n" + "\n".join(tail))
        try:
            client.get("/health")
            return
        except Exception:  # noqa: BLE001 - not listening yet
            time.sleep(0.3)
    raise click.ClickException(f"argus serve did not answer /health within {timeout_s:.0f}s (see serve.log)")


def _backfill(client, sim) -> None:
    from tqdm import tqdm

    with tqdm(total=sim.live_step, unit=" steps", desc=f"backfill {sim.live_step * 5 // 60}h of history") as bar:
        for first in range(0, sim.live_step, BACKFILL_STEPS_PER_REQUEST):
            last = min(sim.live_step, first + BACKFILL_STEPS_PER_REQUEST)
            client.feed([record for step in sim.steps(first, last) for record in step])
            bar.update(last - first)


def _live(client, sim, speed: float, duration: float) -> None:
    """Post one step of the fleet every 300/speed seconds; keep a status line and print alert changes."""
    started = time.monotonic()
    step, fed, next_status = sim.live_step, 0, 0.0
    levels: dict[str, str] = {}
    while not duration or time.monotonic() - started < duration:
        due = started + (step - sim.live_step) * STEP_SECONDS / speed
        if time.monotonic() < due:
            time.sleep(min(0.2, due - time.monotonic()))
            continue
        records = sim.records(step)
        client.feed(records)
        fed, step = fed + len(records), step + 1
        if time.monotonic() >= next_status:
            next_status = time.monotonic() + STATUS_EVERY_S
            _report(client, sim, step - 1, time.monotonic() - started, fed, levels)


def _report(client, sim, step: int, elapsed_s: float, fed: int, levels: dict[str, str]) -> None:
    from argus.adapters.demo.client import FeedRejectedError, ServerUnavailableError

    clock = f"sim {sim.timestamp(step):%a %H:%M} +{int(elapsed_s) // 60}m{int(elapsed_s) % 60:02d}s"
    try:
        body = client.get("/predictions/current")
        alerts = client.get("/alerts/active")
    except (FeedRejectedError, ServerUnavailableError) as ex:
        _status_line(f"{clock} | {ex}")
        return
    summary = body.get("summary") if isinstance(body, dict) else None
    if not summary:
        message = body.get("error") or body.get("detail") if isinstance(body, dict) else body
        _status_line(f"{clock} | {len(sim.names)} servers | {fed} records fed | waiting for forecasts ({message})")
        return
    for alert in alerts.get("alerts", []):
        if levels.get(alert["server_name"]) != alert["level"]:
            tti = alert.get("time_to_issue")
            tti = f" (in {tti})" if tti and tti != "now" else ""
            click.echo(f"\r\033[K{clock} {alert['server_name']:>10} {alert['level']:<8} {alert['risk_score']:5.1f} "
                       f"{alert['message']}{tti}")
    now = {a["server_name"]: a["level"] for a in alerts.get("alerts", [])}
    for name in set(levels) - set(now):
        click.echo(f"\r\033[K{clock} {name:>10} resolved")
    levels.clear()
    levels.update(now)
    counts = " ".join(f"{mark} {summary.get(level, 0)}" for level, mark in LEVEL_MARKS)
    _status_line(f"{clock} | {summary['total_servers']} servers forecast | {counts} | "
                 f"fleet health {summary['fleet_health']:.1f} | {fed} records fed")


def _status_line(text: str) -> None:
    if sys.stdout.isatty():
        click.echo(f"\r\033[K{text}", nl=False)
    else:
        click.echo(text)


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def register(group: click.Group) -> None:
    """Add ``argus demo`` to the CLI group."""
    group.add_command(demo)
