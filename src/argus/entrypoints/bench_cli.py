"""``argus bench make``: a seeded incident bench from a real records file (see docs/bench.md)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from argus.adapters.bench import DEFAULT_PER_SERVER


@click.group("bench")
def bench() -> None:
    """Incident benches: labelled incidents injected into a real background series."""


@bench.command("make")
@click.option("--data", "data", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Background records (JSON Lines, optionally .gz) in the Argus record schema.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for records.jsonl.gz and labels.json (created).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0), help="Seed of every random draw.")
@click.option("--servers", default=None, type=click.IntRange(1), help="Take the first N servers by name (default all).")
@click.option("--days", default=None, type=click.FloatRange(0, min_open=True),
              help="Keep only the first D days of the file (default all).")
@click.option("--per-server", default=DEFAULT_PER_SERVER, show_default=True, type=click.IntRange(0),
              help="Incidents per server at most (negatives come on top, about 0.4 per incident).")
@click.option("--warmup-days", default=2.0, show_default=True, type=click.FloatRange(0),
              help="No event in the first D days (the forecaster's history).")
def make(data: Path, out: Path, seed: int, servers: int | None, days: float | None, per_server: int,
         warmup_days: float) -> None:
    """Inject seeded incidents and negatives into DATA's servers; write DIR/records.jsonl.gz and DIR/labels.json.

    Grade a model on it with ``argus evaluate --data DIR/records.jsonl.gz --labels DIR/labels.json --incidents``.
    """
    from argus.adapters.bench import make_bench, read_records, write_bench

    started = time.monotonic()
    try:
        records = read_records(data, servers=servers, days=days)
    except ValueError as ex:
        raise click.ClickException(f"{data}: {ex}") from None
    if not len(records.ts):
        raise click.ClickException(f"{data}: no records")
    result = make_bench(records, seed=seed, per_server=per_server, warmup_days=warmup_days)
    write_bench(out, records, result, source=data.name, seed=seed)
    span_days = (int(records.ts.max()) - int(records.ts.min())) / 86_400 + 1 / 288
    mix = result.mix
    incidents = sum(1 for w in result.windows if w["class"] != "background")
    kinds = ", ".join(f"{kind} {count}" for kind, count in mix.items() if kind != "background_breach")
    click.echo(f"bench {out}: {len(records.names)} servers, {span_days:.1f} days, {incidents} incidents and "
               f"{len(result.negatives)} negatives ({kinds}), {mix['background_breach']} background breaches "
               f"labelled, seed {seed}, {time.monotonic() - started:.1f}s")


def register(group: click.Group) -> None:
    """Add ``argus bench`` to the CLI group."""
    group.add_command(bench)
