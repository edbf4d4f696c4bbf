"""``argus feed FILE --url URL``: replay (or backfill) a JSONL records file into a running Argus."""

from __future__ import annotations

import os
import sys
import time

import click

DEFAULT_URL = "http://127.0.0.1:8000"
#: What to say after a refusal, by HTTP status, and by a 422's error type.
HINTS = {
    401: "check --key / TACHYON_API_KEY",
    413: "the server's ARGUS_MAX_BODY_BYTES / ARGUS_MAX_RECORDS_PER_REQUEST are lower: pass --max-body-bytes "
         "or --batch-size",
    422: "nothing of this batch was stored",
}
HINTS_422 = {
    "value_error.datetime.too_old": "records older than the server's ARGUS_RECORDS_RETENTION_DAYS (default 35) "
                                    "are refused: to load an old trace (the Bitbrains file is from 2013), start the "
                                    "server with ARGUS_RECORDS_RETENTION_DAYS=36500",
    "value_error.datetime.future": "records dated past the server's clock + ARGUS_MAX_CLOCK_SKEW_S are refused "
                                   "(check the file's timestamps and both clocks)",
}
BACKFILL_HELP = """Backfill (--backfill): the file's lines are packed as they are into bodies just under
--max-body-bytes (the server's ARGUS_MAX_BODY_BYTES, 10 MiB by default: about 29,000 records),
with --parallel requests in flight and no pacing; batches may commit in any order. At the
default feed limit (60 requests a minute per key) that is up to ~1.7 M records a minute, so a
backfill rarely waits; to go past it, raise the server's limit for the time of the load:
ARGUS_RATE_LIMITS=feed=600/minute argus serve ... (each wait on a 429 is shown)."""


@click.command("feed", epilog=BACKFILL_HELP)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--url", default=DEFAULT_URL, show_default=True, envvar="ARGUS_URL",
              help="Base URL of the running Argus (or ARGUS_URL).")
@click.option("--key", envvar="TACHYON_API_KEY", help="API key (default: TACHYON_API_KEY).")
@click.option("--batch-size", default=0, show_default=True, type=click.IntRange(0, 50_000),
              help="Records per request; 0 posts one request per timestamp (one 5-minute step of the fleet), "
                   "or with --backfill as many as fit in --max-body-bytes.")
@click.option("--speed", default=0.0, show_default=True, type=click.FloatRange(0),
              help="Pace by data time: X simulated seconds per real second (300: one 5-minute step a second); "
                   "0 posts as fast as the server accepts.")
@click.option("--backfill", is_flag=True,
              help="Bulk load: bodies near the server's size limit, several in flight, no pacing (see below).")
@click.option("--max-body-bytes", default=None, type=click.IntRange(1024),
              help="With --backfill: the largest body to send [default: ARGUS_MAX_BODY_BYTES or 10485760].")
@click.option("--parallel", default=2, show_default=True, type=click.IntRange(1, 16),
              help="With --backfill: requests in flight.")
@click.option("--timeout", "timeout_s", default=60.0, show_default=True, type=click.FloatRange(1),
              help="Seconds to wait for one response.")
def feed(file: str, url: str, key: str | None, batch_size: int, speed: float, backfill: bool,
         max_body_bytes: int | None, parallel: int, timeout_s: float) -> None:
    """Replay a JSONL(.gz) records file through POST /feed/data.

    Shows records sent of the total, the rate and the time left. Retries 429 after Retry-After
    (saying "rate-limited, waiting N s") and 5xx/connection errors with back-off (re-sending is
    safe: a (server_name, timestamp) pair replaces the earlier record). Stops with the server's
    detail on 401, 413 or 422. Ctrl-C stops cleanly and says how many records were acknowledged.
    """
    from tqdm import tqdm

    from argus.adapters.demo.client import ArgusClient

    if not key:
        raise click.UsageError("no API key: pass --key or set TACHYON_API_KEY")
    if speed and backfill:
        raise click.UsageError("--speed paces a replay; --backfill sends as fast as the server takes it")
    total = _count(file)
    bar = tqdm(total=total, unit=" rec", unit_scale=total is None or total >= 100_000,
               desc="backfill" if backfill else "feeding", dynamic_ncols=True, smoothing=0.1)

    def on_wait(reason: str, seconds: float) -> None:
        what = "rate-limited" if reason == "rate-limited" else f"server unavailable ({reason})"
        bar.write(f"{what}, waiting {seconds:g} s")

    client = ArgusClient(url, key, timeout_s=timeout_s, on_wait=on_wait)
    started = time.monotonic()
    with bar:
        run = _backfill if backfill else _replay
        sent, posted = run(client, file, bar, batch_size=batch_size, speed=speed, parallel=parallel,
                           max_body_bytes=max_body_bytes or _env_max_body())
    elapsed = time.monotonic() - started
    click.echo(f"fed {sent} records in {posted} requests to {url} in {elapsed:.1f}s "
               f"({sent / max(elapsed, 1e-9):,.0f} records/s; {client.retries} retries, "
               f"{client.rate_limited} rate-limited, {client.waited_s:.1f}s waited)")


def _count(file: str) -> int | None:
    from argus.adapters.demo.backfill import count_lines

    try:
        return count_lines(file)
    except FileNotFoundError as ex:
        raise click.ClickException(f"cannot read {file}: {ex.strerror}") from None
    except OSError as ex:  # a damaged .gz
        raise click.ClickException(f"cannot read {file}: {ex}") from None


def _env_max_body() -> int:
    from argus.adapters.demo.backfill import DEFAULT_MAX_BODY_BYTES

    value = os.environ.get("ARGUS_MAX_BODY_BYTES", "")
    return int(value) if value.isdigit() and int(value) >= 1024 else DEFAULT_MAX_BODY_BYTES


def _replay(client, file: str, bar, *, batch_size: int, speed: float, **_) -> tuple[int, int]:
    """One request at a time, in file order, optionally paced by data time."""
    from argus.adapters.demo.client import FeedRejectedError, ServerUnavailableError
    from argus.adapters.demo.replay import BadRecordFileError, Pacer, batches, read_records

    pacer = Pacer(speed)
    sent = posted = 0
    try:
        for batch in batches(read_records(file), batch_size):
            pacer.wait_for(batch)
            client.feed(batch)
            sent, posted = sent + len(batch), posted + 1
            bar.update(len(batch))
            bar.set_postfix(requests=posted, data_time=batch[-1].get("timestamp"), refresh=False)
    except BadRecordFileError as ex:
        raise click.ClickException(f"{ex}\n{sent} records were stored before it") from None
    except FeedRejectedError as ex:
        bar.close()
        raise click.ClickException(_refusal(ex, f"batch {posted + 1}", sent)) from None
    except ServerUnavailableError as ex:
        raise click.ClickException(f"{ex}\n{sent} records were stored before it") from None
    except KeyboardInterrupt:
        client.stop()
        bar.close()
        _interrupted(sent, posted, in_flight="the request in flight may or may not have been stored")
    return sent, posted


def _backfill(client, file: str, bar, *, batch_size: int, parallel: int, max_body_bytes: int,
              **_) -> tuple[int, int]:
    """Bodies packed near the size limit, ``parallel`` in flight."""
    from argus.adapters.demo.backfill import (
        DEFAULT_MAX_RECORDS,
        BatchRejectedError,
        Tally,
        backfill,
        pack,
        raw_lines,
    )
    from argus.adapters.demo.client import ServerUnavailableError
    from argus.adapters.demo.replay import BadRecordFileError

    tally = Tally()

    def on_ack(records: int) -> None:
        bar.update(records)
        bar.set_postfix(requests=tally.requests, refresh=False)

    bodies = pack(raw_lines(file), max_body_bytes, batch_size or DEFAULT_MAX_RECORDS)
    try:
        backfill(client, bodies, parallel, on_ack, tally)
    except BadRecordFileError as ex:
        raise click.ClickException(f"{ex}\n{tally.records} records were stored before it") from None
    except BatchRejectedError as ex:
        bar.close()
        first, last = ex.body.numbers[0], ex.body.numbers[-1]
        where = f"the batch of lines {first}-{last}" + _first_bad_line(ex)
        raise click.ClickException(_refusal(ex.rejected, where, tally.records)) from None
    except ServerUnavailableError as ex:
        raise click.ClickException(f"{ex}\n{tally.records} records were stored before it") from None
    except KeyboardInterrupt:
        bar.close()
        _interrupted(tally.records, tally.requests, in_flight="requests in flight were waited for")
    return tally.records, tally.requests


def _first_bad_line(ex) -> str:
    detail = ex.rejected.detail
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        loc = detail[0].get("loc", [])
        if len(loc) >= 3 and isinstance(loc[2], int) and (line := ex.line_of(loc[2])) is not None:
            return f" (first bad record: line {line}; the server's loc counts from the batch's first line)"
    return ""


def _refusal(ex, where: str, stored: int) -> str:
    from argus.adapters.demo.client import format_detail

    hints = [HINTS[ex.status]] if ex.status in HINTS else []
    if ex.status == 422 and isinstance(ex.detail, list):
        types = {item.get("type") for item in ex.detail if isinstance(item, dict)}
        hints += [hint for kind, hint in HINTS_422.items() if kind in types]
    hint = "".join(f"\n  hint: {text}" for text in hints)
    return (f"the server refused {where} with HTTP {ex.status}:\n{format_detail(ex.detail)}{hint}\n"
            f"{stored} records were stored before it")


def _interrupted(acknowledged: int, requests: int, *, in_flight: str) -> None:
    click.echo(f"interrupted: {acknowledged} records acknowledged (stored) in {requests} requests; {in_flight}. "
               "Re-sending the file is safe: a (server_name, timestamp) replaces the earlier record.", err=True)
    sys.exit(130)


def register(group: click.Group) -> None:
    """Add ``argus feed`` to the CLI group."""
    group.add_command(feed)
