"""The hook implementations Argus finds through the ``argus`` entry point ``example_site``."""

from __future__ import annotations

from pathlib import Path

from argus.domain.profiles import Limits, ServerProfile
from argus.plugins import hookimpl
from argus_example_site.sink import JsonLinesFileSink

EXAMPLE_BATCH = ServerProfile(
    "example_batch",
    "Example Batch",
    Limits(cpu_pct=99.0, mem_pct=90.0, swap_pct=30.0, load=None),
    "Overnight batch nodes: CPU pinned at 100% is normal, swapping is not.",
)


@hookimpl
def argus_server_profiles():
    return [EXAMPLE_BATCH]


@hookimpl
def argus_classify_server(server_name):
    return EXAMPLE_BATCH.name if server_name.startswith("exb-") else None


@hookimpl
def argus_alert_sinks(settings):
    path = settings.get("example", {}).get("file_path")  # ARGUS_SINK_EXAMPLE_FILE_PATH
    return [JsonLinesFileSink(Path(path).expanduser())] if path else []
