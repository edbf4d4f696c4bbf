"""``argus feed FILE --url URL``: replay (or backfill) a JSONL records file into a running Argus."""

from __future__ import annotations

import time

import click

DEFAULT_URL = "http://127.0.0.1:8000"


@click.command("feed")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--url", default=DEFAULT_URL, show_default=True, envvar="ARGUS_URL",
              help="Base URL of the running Argus (or ARGUS_URL).")
@click.option("--key", envvar="TACHYON_API_KEY", help="API key (default: TACHYON_API_KEY).")
@click.option("--batch-size", default=0, show_default=True, type=click.IntRange(0, 50_000),
              help="Records per request; 0 posts one request per timestamp (one 5-minute step of the fleet).")
@click.option("--speed", default=0.0, show_default=True, type=click.FloatRange(0),
              help="Pace by data time: X simulated seconds per real second (300: one 5-minute step a second); "
                   "0 posts as fast as the server accepts.")
@click.option("--timeout", "timeout_s", default=60.0, show_default=True, type=click.FloatRange(1),
              help="Seconds to wait for one response.")
def feed(file: str, url: str, key: str | None, batch_size: int, speed: float, timeout_s: float) -> None:
    """Replay a JSONL(.gz) records file through POST /feed/data.

    Retries 429 after Retry-After and 5xx/connection errors with back-off (re-sending is safe:
    a (server_name, timestamp) pair replaces the earlier record). Stops with the server's detail
    on 401, 413 or 422.
    """
    from tqdm import tqdm

    from argus.adapters.demo.client import ArgusClient, FeedRejectedError, ServerUnavailableError, format_detail
    from argus.adapters.demo.replay import BadRecordFileError, Pacer, batches, read_records

    if not key:
        raise click.UsageError("no API key: pass --key or set TACHYON_API_KEY")
    client = ArgusClient(url, key, timeout_s=timeout_s)
    pacer = Pacer(speed)
    sent = posted = 0
    started = time.monotonic()
    with tqdm(unit=" rec", unit_scale=True, desc="feeding", dynamic_ncols=True) as bar:
        try:
            for batch in batches(read_records(file), batch_size):
                pacer.wait_for(batch)
                client.feed(batch)
                sent, posted = sent + len(batch), posted + 1
                bar.update(len(batch))
                bar.set_postfix(batches=posted, retries=client.retries, data_time=batch[-1].get("timestamp"))
        except FileNotFoundError as ex:
            raise click.ClickException(f"cannot read {file}: {ex.strerror}") from None
        except BadRecordFileError as ex:
            raise click.ClickException(str(ex)) from None
        except FeedRejectedError as ex:
            bar.close()
            hint = {401: " (check --key / TACHYON_API_KEY)", 422: " (nothing of this batch was stored)"}
            raise click.ClickException(
                f"the server refused batch {posted + 1} with HTTP {ex.status}{hint.get(ex.status, '')}:\n"
                f"{format_detail(ex.detail)}\n{sent} records were stored before it"
            ) from None
        except ServerUnavailableError as ex:
            raise click.ClickException(f"{ex}\n{sent} records were stored before it") from None
    elapsed = time.monotonic() - started
    click.echo(f"fed {sent} records in {posted} requests to {url} in {elapsed:.1f}s "
               f"({client.retries} retries, {client.waited_s:.1f}s waited)")


def register(group: click.Group) -> None:
    """Add ``argus feed`` to the CLI group."""
    group.add_command(feed)
