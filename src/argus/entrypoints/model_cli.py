"""`argus train` and `argus evaluate`: click commands the main CLI adds with ``register(cli)``."""

from __future__ import annotations

import json
import os
from datetime import UTC
from pathlib import Path

import click

from argus.entrypoints.settings import Settings


def _settings() -> Settings:
    return Settings.from_env()


def _profile_for():
    from argus.domain.profiles import ProfileResolver

    resolver = ProfileResolver()
    return lambda name: resolver.profile_for(name).name


@click.command("train")
@click.option("--data", "data", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Records as JSON Lines (optionally .gz), the schema of POST /feed/data.")
@click.option("--from-db", "from_db", is_flag=True,
              help="Train on every record in ARGUS_DATABASE_URL instead of a file (maintenance data skipped).")
@click.option("--epochs", default=5, show_default=True, type=click.IntRange(1, 1000))
@click.option("--max-samples-per-epoch", default=12_800, show_default=True, type=click.IntRange(1),
              help="Random training windows drawn per epoch.")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1))
@click.option("--from-model", default=None, help="Continue training this model for --epochs more epochs.")
@click.option("--output", "output", default=None, help="Name of the new model (default tft_YYYYMMDD_HHMMSS).")
@click.option("--val-days", default=3.0, show_default=True, help="Last days of each server used to stop early.")
@click.option("--holdout-days", default=0.0, show_default=True, help="Last days of the data never trained on.")
@click.option("--holdout-servers", default=0.0, show_default=True,
              help="Fraction of servers never trained on (seeded), for an honest evaluation.")
@click.option("--hidden-size", default=16, show_default=True, type=click.IntRange(1))
@click.option("--max-encoder-steps", default=288, show_default=True, type=click.IntRange(2))
@click.option("--min-encoder-steps", default=12, show_default=True, type=click.IntRange(1))
@click.option("--horizon-steps", default=96, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=42, show_default=True)
@click.option("--scenario-share", default=0.0, show_default=True, type=click.FloatRange(0.0, 1.0),
              help="Share of training windows given a synthetic incident scenario (leak, disk fill, runaway, ...).")
@click.option("--guides/--no-guides", default=False, show_default=True,
              help="Known-future inputs: same time yesterday and the 6 h trend line (docs/model.md).")
@click.option("--calibrate/--no-calibrate", default=True, show_default=True,
              help="After training: fit the served blend's band and priors on the validation days, then the "
                   "probability map on an incident bench of the last 14 days before the held-out period.")
@click.option("--activate/--no-activate", default=True, show_default=True, help="Mark the new model CURRENT.")
def train_command(data: Path | None, from_db: bool,
                  epochs: int, max_samples_per_epoch: int, batch_size: int, from_model: str | None,
                  output: str | None, val_days: float, holdout_days: float, holdout_servers: float,
                  hidden_size: int, max_encoder_steps: int, min_encoder_steps: int, horizon_steps: int,
                  seed: int, scenario_share: float, guides: bool, calibrate: bool, activate: bool) -> None:
    """Train a TFT on a records file or the database (CPU, or CUDA when present); save it under ARGUS_MODEL_DIR."""
    settings = _settings()
    if (data is None) == (not from_db):
        raise click.UsageError("give exactly one of --data FILE and --from-db")
    os.environ.setdefault("OMP_NUM_THREADS", str(settings.torch_threads))
    from argus.adapters.tft.training import TrainingConfig, train_model

    config = TrainingConfig(
        epochs=epochs, max_samples_per_epoch=max_samples_per_epoch, batch_size=batch_size, val_days=val_days,
        holdout_days=holdout_days, holdout_servers=holdout_servers, hidden_size=hidden_size,
        hidden_continuous_size=min(8, hidden_size), max_encoder_steps=max_encoder_steps,
        min_encoder_steps=min_encoder_steps, horizon_steps=horizon_steps, seed=seed,
        threads=settings.torch_threads, scenario_share=scenario_share, guides=guides, calibrate=calibrate,
    )

    def progress(event: dict) -> None:
        if event["stage"] == "epoch_end":
            click.echo(f"epoch {event['epoch']}/{event['epochs']}: val_loss {event['val_loss']:.4f} "
                       f"(best {event['best_val_loss']:.4f})", err=True)
        elif event["stage"] == "calibrating":
            click.echo("calibrating the served blend on the validation days ...", err=True)
        elif event["stage"] == "loading_data":
            click.echo(f"reading {data or 'the database'} ...", err=True)

    source = data
    if from_db:
        from argus.entrypoints.training_job import series_from_database

        source = series_from_database(settings)
        if not source:
            raise click.ClickException("the database holds no records to train on")
    result = train_model(source, settings.model_dir, config, from_model=from_model, output_name=output,
                         profile_for=_profile_for(), progress=progress, activate=activate,
                         progress_bar=True)
    if calibrate and data is not None:
        _probabilities_after_training(result, data, settings)
    training = result.manifest["training"]
    click.echo(f"saved {result.name} ({result.manifest['size_bytes']} bytes) to {result.path}: "
               f"{training['epochs_run']} epochs, {training['steps_run']} steps, {training['seconds']} s, "
               f"best val_loss {training['best_val_loss']}" + (" [CURRENT]" if activate else ""))


def _probabilities_after_training(result, data: Path, settings, days: float = 14.0) -> None:
    """Fit the probability map on a bench of the last ``days`` before the held-out period (soft: warn on failure)."""
    from datetime import datetime

    from argus.adapters.tft.registry import DirectoryModelRegistry

    trained = result.manifest.get("training", {}).get("data", {})
    if not trained.get("trained_before") or not trained.get("first_record"):
        click.echo("the manifest does not say where the held-out period begins; no probability map", err=True)
        return
    end = int(datetime.fromisoformat(trained["trained_before"]).timestamp()) - 1
    first = int(datetime.fromisoformat(trained["first_record"]).timestamp())
    start = max(first, end - int(days * 86_400))
    if end - start < 5 * 86_400:
        click.echo("too little history before the held-out period for a probability map (5 days); the model "
                   "serves raw probabilities until `argus calibrate --probabilities`", err=True)
        return
    try:
        _calibrate_probabilities(DirectoryModelRegistry(settings.model_dir), result.name, data,
                                 trained["server_names"], start, end, 1, None, settings)
    except click.ClickException as ex:
        click.echo(f"{ex.message}; the model serves raw probabilities", err=True)


@click.command("evaluate")
@click.option("--data", "data", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Records (JSON Lines, optionally .gz) to backtest on; optional with --trend-check alone.")
@click.option("--model", "model", default=None, help="Model name (default: CURRENT).")
@click.option("--origins", default=8, show_default=True, type=click.IntRange(1), help="Forecast origins per server.")
@click.option("--servers", type=click.Choice(["all", "unseen", "seen"]), default="all", show_default=True,
              help="unseen: only servers the model never trained on.")
@click.option("--start", "start", default=None, metavar="ISO8601",
              help="Where origins begin (no zone = UTC). Default: the model's trained_before when the data reaches "
                   "more than a day past it, else 7 days into the file.")
@click.option("--json", "json_out", default=None, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--png", "png_out", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Save a few forecasts with their bands against actuals.")
@click.option("--record/--no-record", default=False, show_default=True,
              help="Store the report in the model's manifest under evaluation.<servers>.")
@click.option("--trend-check", "trend", is_flag=True,
              help="Also run the synthetic trend check (leak, disk fill, daily peak; 20 seeds each): JSON key trend.")
@click.option("--incidents/--no-incidents", default=False, show_default=True,
              help="Also replay the period through forecast -> risk -> alerts and grade alerts and probabilities.")
@click.option("--labels", "labels_path", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='Incident windows (JSON list of {"server_name", "start", "end"}, or an object with "windows" '
                   'and optionally "negatives", as `argus bench make` writes) instead of limit breaches.')
@click.option("--tick-minutes", default=30, show_default=True, type=click.IntRange(5, 1440),
              help="Replay tick interval (data time) for --incidents.")
@click.option("--reliability-png", "reliability_out", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="With --incidents: save the reliability diagram of P(30 min) and P(8 h).")
@click.option("--explain/--no-explain", default=False, show_default=True,
              help="With the incident replay: explain each alerted incident (SHAP) and report how often its top 3 "
                   "features include a labelled metrics_involved field (or the breached metric).")
def evaluate_command(data: Path | None, model: str | None, origins: int, servers: str, start: str | None,
                     json_out: Path | None, png_out: Path | None, record: bool, trend: bool, incidents: bool,
                     labels_path: Path | None, tick_minutes: int, reliability_out: Path | None, explain: bool) -> None:
    """Rolling-origin backtest of the served forecaster (the blend) beside simple peers and the TFT alone."""
    from datetime import datetime

    settings = _settings()
    if data is None and not trend:
        raise click.UsageError("give --data FILE (and/or --trend-check)")
    if data is None and (incidents or labels_path or explain or png_out or start or reliability_out):
        raise click.UsageError("--incidents, --labels, --explain, --png, --reliability-png and --start need --data")
    if reliability_out and not (incidents or labels_path or explain):
        raise click.UsageError("--reliability-png needs --incidents")
    start_epoch_s = None
    if start is not None:
        try:
            moment = datetime.fromisoformat(start.replace("Z", "+00:00"))
        except ValueError:
            raise click.BadParameter(f"not an ISO 8601 time: {start!r}", param_hint="--start") from None
        start_epoch_s = int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())
    from argus.adapters.blend import BlendForecaster
    from argus.adapters.tft.artifacts import update_manifest
    from argus.adapters.tft.data import load_series
    from argus.adapters.tft.evaluation import evaluate, format_table, format_trend, plot_examples, trend_check
    from argus.adapters.tft.registry import DirectoryModelRegistry

    registry = DirectoryModelRegistry(settings.model_dir)
    forecaster = BlendForecaster.load(registry, model, device=settings.device, threads=settings.torch_threads)
    report: dict = {"model": forecaster.name}
    if data is not None:
        series = load_series(data)
        try:
            report, result = evaluate(forecaster, series, origins=origins, servers=servers,
                                      start_epoch_s=start_epoch_s, profiles=_ProfileMap(_profile_for()))
        except ValueError as ex:
            raise click.ClickException(str(ex)) from None
        click.echo(format_table(report))
    if trend:
        report["trend"] = trend_check(forecaster)
        click.echo(format_trend(report["trend"]))
    if data is not None and explain:
        report["incidents"], report["explain"] = _explanations(forecaster, series, report, labels_path, tick_minutes,
                                                               settings)
        click.echo(_incident_line(report["incidents"]))
        click.echo(f"explanations: top-3 agreement {report['explain']['agreement_top3']} over "
                   f"{report['explain']['explained']} alerted incidents")
    elif data is not None and (incidents or labels_path):
        report["incidents"] = _incidents(forecaster, series, report, labels_path, tick_minutes, settings)
        click.echo(_incident_line(report["incidents"]))
    if json_out:
        json_out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if png_out:
        plot_examples(result, forecaster.quantiles, png_out)
    if reliability_out:
        from argus.adapters.reliability import plot_reliability

        plot_reliability(report["incidents"], reliability_out)
    if record:
        manifest = registry.info(forecaster.name).manifest
        evaluation = dict(manifest.get("evaluation") or {})
        if data is not None:
            evaluation[servers] = report
        else:
            evaluation["trend"] = report["trend"]
        update_manifest(registry, forecaster.name, "evaluation", evaluation)


def _incidents(forecaster, series, report, labels_path, tick_minutes, settings) -> dict:
    from datetime import datetime

    from argus.adapters.tft.incidents import evaluate_incidents
    from argus.domain.backtest import incidents_from_labels, negatives_from_labels
    from argus.domain.profiles import ProfileResolver

    trained = set(forecaster.manifest.get("training", {}).get("data", {}).get("server_names", []))
    chosen = {name: s for name, s in series.items()
              if report["servers"] == "all" or (name in trained) == (report["servers"] == "seen")}
    start = int(datetime.fromisoformat(report["period_start"]).replace(tzinfo=UTC).timestamp())
    document = json.loads(labels_path.read_text()) if labels_path else None
    try:
        labels = incidents_from_labels(document) if labels_path else None
        negatives = negatives_from_labels(document) if labels_path else []
    except ValueError as ex:
        raise click.ClickException(f"{labels_path}: {ex}") from None
    click.echo(f"replaying {len(chosen)} servers from {report['period_start']} through the alert pipeline ...",
               err=True)
    return evaluate_incidents(forecaster, chosen, start, ProfileResolver(), labels, tick_minutes,
                              settings.rolling_window_size, negatives)


def _explanations(forecaster, series, report, labels_path, tick_minutes, settings) -> tuple[dict, dict]:
    from datetime import datetime

    from argus.adapters.explain.evaluation import evaluate_explanations
    from argus.domain.profiles import ProfileResolver

    trained = set(forecaster.manifest.get("training", {}).get("data", {}).get("server_names", []))
    chosen = {name: s for name, s in series.items()
              if report["servers"] == "all" or (name in trained) == (report["servers"] == "seen")}
    start = int(datetime.fromisoformat(report["period_start"]).replace(tzinfo=UTC).timestamp())
    labels = json.loads(labels_path.read_text()) if labels_path else None
    click.echo(f"replaying {len(chosen)} servers through the alert pipeline, explaining alerted incidents ...",
               err=True)
    return evaluate_explanations(forecaster, chosen, start, ProfileResolver(), labels, tick_minutes,
                                 settings.rolling_window_size, settings.explain_shap_samples)


def _incident_line(r: dict) -> str:
    return (f"incidents: {r['incidents']} graded, {r['alerts']} alerts; "
            f"warned before crossing {r['warned_before_crossing']} (gradual), lead p50 {r['lead_minutes_median']} min; "
            f"false alerts {r['false_alerts_per_server_day']} per server-day, precision {r['precision']}, "
            f"recall {r['recall']}; Brier skill 30m {r['brier_skill_30m']}, 8h {r['brier_skill_8h']} "
            f"(raw {r['brier_skill_raw_30m']}, {r['brier_skill_raw_8h']})")


class _ProfileMap(dict):
    """A mapping that resolves any server name through the profile resolver."""

    def __init__(self, resolve) -> None:
        super().__init__()
        self._resolve = resolve

    def get(self, key, default=None):
        return self._resolve(key)


@click.command("models")
def models_command() -> None:
    """List the models in ARGUS_MODEL_DIR (the current one is marked with *)."""
    from argus.adapters.tft.registry import DirectoryModelRegistry

    registry = DirectoryModelRegistry(_settings().model_dir)
    current = registry.current()
    models = registry.list()
    if not models:
        click.echo(f"no models in {registry.root}")
    for info in models:
        size_kb = round(float(info.manifest.get("size_bytes", 0)) / 1024)
        click.echo(f"{'*' if info.name == current else ' '} {info.name}  created {info.created_at}  {size_kb} KB")


@click.command("reload")
@click.argument("name")
def reload_command(name: str) -> None:
    """Make NAME the served model: it is loaded and test-forecast here first, then CURRENT is switched.

    A running engine follows CURRENT within seconds (and checks the model again before it goes live).
    """
    from argus.adapters.tft.forecaster import TftForecaster
    from argus.adapters.tft.manager import check_forecaster
    from argus.adapters.tft.registry import DirectoryModelRegistry
    from argus.domain.forecast import ModelLoadError

    settings = _settings()
    registry = DirectoryModelRegistry(settings.model_dir)
    try:
        check_forecaster(TftForecaster.load(registry, name, device="cpu"))
        registry.set_current(name)
    except ModelLoadError as ex:
        raise click.ClickException(str(ex)) from None
    click.echo(f"{name} is CURRENT; a running engine switches to it within seconds")


@click.command("train-job", hidden=True)
@click.option("--training-id", required=True)
@click.option("--epochs", required=True, type=click.IntRange(1, 1000))
@click.option("--from-model", default=None)
def train_job_command(training_id: str, epochs: int, from_model: str | None) -> None:
    """Internal: the training process the engine starts for POST /admin/trigger-training."""
    import sys

    from argus.entrypoints.logs import configure_logging
    from argus.entrypoints.training_job import run_training_job

    settings = _settings()
    configure_logging(settings, role="training")
    sys.exit(run_training_job(settings, training_id, epochs, from_model))


@click.command("calibrate")
@click.option("--data", "data", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Records (JSON Lines, optionally .gz): the model's training file, or recent data of your fleet.")
@click.option("--model", "model", default=None, help="Model name (default: CURRENT).")
@click.option("--days", default=3.0, show_default=True, type=click.FloatRange(0.5),
              help="Bands: calibrate on the last DAYS before the model's held-out period (or the data's end).")
@click.option("--origins", default=12, show_default=True, type=click.IntRange(1), help="Origins per server.")
@click.option("--bands/--no-bands", default=True, show_default=True,
              help="Fit the blend's band factors and prior weights.")
@click.option("--probabilities/--no-probabilities", default=True, show_default=True,
              help="Then fit the map from raw to calibrated P(30 min)/P(8 h) on a replay of an incident bench.")
@click.option("--probability-days", default=14.0, show_default=True, type=click.FloatRange(5.0),
              help="Probabilities: the bench is made of the last DAYS before the held-out period.")
@click.option("--seed", default=1, show_default=True, help="Seed of the calibration bench's incidents.")
@click.option("--bench", "bench_dir", default=None, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Fit the probabilities on this bench (argus bench make) instead of making one from --data.")
def calibrate_command(data: Path, model: str | None, days: float, origins: int, bands: bool, probabilities: bool,
                      probability_days: float, seed: int, bench_dir: Path | None) -> None:
    """Fit the served blend's bands and priors, then the probability map, on held-back days; store them.

    Servers: those the model trained on (when the file has them), else every server in the file. The
    period ends where the model's held-out data begins (``trained_before``), or at the data's end.
    The probability map is fitted after the bands, on the forecasts they give (docs/risk.md).
    """
    from datetime import datetime

    from argus.adapters.tft.data import load_series
    from argus.adapters.tft.registry import DirectoryModelRegistry

    settings = _settings()
    registry = DirectoryModelRegistry(settings.model_dir)
    name = model or registry.current()
    if name is None:
        raise click.ClickException("no model given and none is CURRENT")
    manifest = registry.info(name).manifest
    series = load_series(data)
    if not series:
        raise click.ClickException(f"{data} holds no records")
    trained = manifest.get("training", {}).get("data", {})
    servers = [n for n in trained.get("server_names", []) if n in series] or sorted(series)
    end = max(int(s.ts.max()) for s in series.values())
    if trained.get("trained_before"):
        end = min(end, int(datetime.fromisoformat(trained["trained_before"]).timestamp()) - 1)
    if bands:
        _calibrate_bands(registry, name, series, servers, end - int(days * 86_400), end, origins)
    if probabilities:
        _calibrate_probabilities(registry, name, data, servers, end - int(probability_days * 86_400), end, seed,
                                 bench_dir, settings)


def _calibrate_bands(registry, name: str, series, servers, start: int, end: int, origins: int) -> None:
    from argus.adapters.calibration import calibrate_saved

    section = calibrate_saved(registry, name, series, servers, start, end, origins)
    record = section["calibration"]
    if "skipped" in record:
        raise click.ClickException(f"not calibrated: {record['skipped']}")
    click.echo(f"calibrated {name} on {record['windows']} windows of {record['servers']} servers "
               f"({record['period_start']} .. {record['period_end']}); band factors:")
    for target, factors in section["band_scale"].items():
        click.echo(f"  {target:<11}" + " ".join(f"{f:5.2f}" for f in factors))


def _calibrate_probabilities(registry, name: str, data: Path, servers, start: int, end: int, seed: int,
                             bench_dir: Path | None, settings) -> None:
    from argus.adapters.blend import BlendForecaster
    from argus.adapters.probability_fit import fit_on_bench, fit_probabilities, store

    forecaster = BlendForecaster.load(registry, name, device=settings.device, threads=settings.torch_threads)
    click.echo("replaying an incident bench of the held-back days to calibrate probabilities ...", err=True)
    try:
        if bench_dir is not None:
            calibration = fit_on_bench(forecaster, bench_dir)
        else:
            calibration = fit_probabilities(forecaster, data, servers, start, end, seed=seed)
    except ValueError as ex:
        raise click.ClickException(f"probabilities not calibrated: {ex}") from None
    section = store(registry, name, calibration)
    fitted = section["fitted_on"]
    click.echo(f"probability map of {name}: {fitted['samples']} samples, {fitted['incidents']} incidents "
               f"(base rate 30 min {fitted['base_rate_30m']}, 8 h {fitted['base_rate_8h']})")
    bounds = [f"breach share <= {e}" for e in section["edges"]] + [f"breach share > {section['edges'][-1]}"]
    for horizon in ("30m", "8h"):
        for stratum, (xs, ys) in zip(bounds, section[horizon], strict=True):
            click.echo(f"  P({horizon}), {stratum}: " + ", ".join(
                f"{x:.2f}->{y:.3f}" for x, y in zip(xs[:: max(1, len(xs) // 8)], ys[:: max(1, len(xs) // 8)],
                                                     strict=True)))


def register(group: click.Group) -> None:
    """Add the model commands to the ``argus`` command group."""
    for command in (train_command, evaluate_command, calibrate_command, models_command, reload_command,
                    train_job_command):
        group.add_command(command)
