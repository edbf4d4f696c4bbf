"""The ``argus`` command line: serve (gunicorn + engine), engine, and the model commands."""

from __future__ import annotations

import sys

import click

from argus.domain.errors import ConfigurationError
from argus.entrypoints.settings import Settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="argus")
def cli() -> None:
    """Argus: predictive server monitoring."""


SERVE_ENVIRONMENT = """Environment (all settings: README "Settings"):

\b
  TACHYON_API_KEY       the API key (else $ARGUS_DATA_DIR/api_key, made by --generate-key)
  ARGUS_DATA_DIR        data directory: SQLite database, generated key [./var]
  ARGUS_DATABASE_URL    SQLAlchemy URL [sqlite:///$ARGUS_DATA_DIR/argus.db]; postgresql://...
  ARGUS_MODEL_DIR       trained models and their CURRENT pointer [./models]
  ARGUS_LOG_LEVEL       log level of every process [INFO]
  ARGUS_DEVICE          auto, cpu or cuda for the model [auto]
  ARGUS_RATE_LIMITS     per-group limits, e.g. feed=600/minute
  ARGUS_RECORDS_RETENTION_DAYS  records older are refused and purged [35]
  ARGUS_MAX_CLOCK_SKEW_S        how far ahead of the clock a record may be [300]
  ARGUS_MAX_BODY_BYTES          request body limit [10485760]
"""


@cli.command(epilog=SERVE_ENVIRONMENT)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Gunicorn workers.")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256), help="Threads per worker.")
@click.option("--generate-key", is_flag=True, help="Create and print an API key if none is configured.")
@click.option("--no-engine", is_flag=True, help="Web workers only (another host runs the engine).")
def serve(host: str, port: int, workers: int, threads: int, generate_key: bool, no_engine: bool) -> None:
    """Run the HTTP API under gunicorn and the engine process, supervised together."""
    from argus.entrypoints.supervisor import Supervisor, prepare

    check_port_free(host, port)
    settings = _settings()
    _reach_database(settings)
    try:
        prepare(settings, generate_key=generate_key, echo=click.echo)
    except ConfigurationError as ex:
        raise click.ClickException(str(ex)) from None
    code = Supervisor(settings, host=host, port=port, workers=workers, threads=threads, engine=not no_engine).run()
    sys.exit(code)


@cli.command()
def engine() -> None:
    """Run only the engine process (it waits as a standby while another engine leads)."""
    from argus.entrypoints.engine import run_engine

    _reach_database(_settings())
    run_engine()


@cli.command()
def migrate() -> None:
    """Create or upgrade the database schema, then exit."""
    from argus.adapters.sql.database import create_db_engine
    from argus.adapters.sql.database import migrate as run_migrations

    settings = _settings()
    _reach_database(settings)
    db = create_db_engine(settings.database_url)
    run_migrations(db)
    db.dispose()
    click.echo("database is up to date")


@cli.command()
@click.option("--markdown", is_flag=True, help="Render docs/api.md's Markdown instead of the JSON document.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default="-", show_default=True,
              help="Where to write it.")
def openapi(markdown: bool, output: str) -> None:
    """Print the API's OpenAPI document (what GET /openapi.json serves), or its Markdown reference."""
    import json

    from argus.adapters.http.api_markdown import render_markdown
    from argus.adapters.http.openapi import openapi_document

    doc = openapi_document()
    text = render_markdown(doc) if markdown else json.dumps(doc, indent=2) + "\n"
    with click.open_file(output, "w", encoding="utf-8") as handle:
        handle.write(text)


def check_port_free(host: str, port: int) -> None:
    """Fail with one line naming --port when the address is taken (not gunicorn's traceback and retries)."""
    import errno
    import socket

    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as ex:
        raise click.ClickException(f"cannot bind {host}:{port}: {ex.strerror} (check --host)") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds: TIME_WAIT is no conflict
        try:
            probe.bind(address)
        except OSError as ex:
            if ex.errno == errno.EADDRINUSE:
                raise click.ClickException(f"port {port} on {host} is already in use (another Argus?): "
                                           f"choose another with --port, e.g. --port {port + 1}") from None
            raise click.ClickException(f"cannot bind {host}:{port}: {ex.strerror}") from None


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigurationError as ex:
        raise click.ClickException(str(ex)) from None


CONNECT_TIMEOUT_S = 10


def _reach_database(settings: Settings) -> None:
    """Connect once before starting anything; when that fails, exit with one line, not a traceback.

    The line names the URL (password hidden) and the driver's error in a phrase.
    """
    import sqlalchemy as sa

    from argus.adapters.sql.database import create_db_engine

    try:
        url = sa.make_url(settings.database_url)
    except sa.exc.ArgumentError:
        raise click.ClickException("ARGUS_DATABASE_URL is not a database URL (e.g. postgresql://user:password@"
                                   "host/argus or sqlite:////var/lib/argus/argus.db)") from None
    try:
        db = create_db_engine(settings.database_url)
        if db.dialect.name == "postgresql":  # an unreachable host otherwise hangs for the OS's TCP timeout
            sa.event.listen(db, "do_connect", _with_connect_timeout)
        try:
            with db.connect():
                pass
        finally:
            db.dispose()
    except (sa.exc.SQLAlchemyError, OSError, ImportError) as ex:
        shown = url.render_as_string(hide_password=True)
        raise click.ClickException(f"Cannot reach the database {shown}: {_phrase(ex, url.password)}") from None


def _with_connect_timeout(_dialect, _record, _args, params) -> None:
    params.setdefault("connect_timeout", CONNECT_TIMEOUT_S)  # returning anything would replace the connection


def _phrase(ex: BaseException, password: str | None) -> str:
    """The first line of the driver's own message (SQLAlchemy wraps it), the password masked if it shows."""
    cause = getattr(ex, "orig", None) or ex
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    text = (lines[0] if lines else type(cause).__name__).removeprefix("connection failed: ")
    return text.replace(password, "***") if password and len(password) >= 4 else text


def _register_optional_commands() -> None:
    """Commands owned by other modules (model training and evaluation, feed, demo)."""
    import importlib
    import importlib.util

    for module in ("argus.entrypoints.model_cli", "argus.entrypoints.feed_cli", "argus.entrypoints.demo_cli",
                   "argus.entrypoints.bench_cli"):
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module).register(cli)


_register_optional_commands()


def main() -> None:
    cli(prog_name="argus")


if __name__ == "__main__":
    main()
