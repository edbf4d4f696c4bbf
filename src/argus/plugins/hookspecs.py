"""Hook specifications: the public plugin API of Argus (every hook is prefixed ``argus_``)."""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from argus.domain.profiles import ServerProfile
from argus.plugins import PROJECT

hookspec = pluggy.HookspecMarker(PROJECT)


@hookspec
def argus_server_profiles() -> Iterable[ServerProfile]:
    """Contribute server profiles (name, display name, resource limits, name prefixes).

    Called once at start-up in every process; the results of all plugins are merged, and a
    duplicate profile name fails start-up. The built-in plugin contributes the reference's
    profiles (Database, ML Compute, Web API, Conductor Mgmt, ETL/Ingest, Risk Analytics, Generic).
    """


@hookspec(firstresult=True)
def argus_classify_server(server_name: str) -> str | None:
    """Name the profile of ``server_name``, or return None to pass.

    The first non-None answer wins; when every plugin passes, the profiles' name prefixes decide,
    and "generic" is last. Called once per server per process (the answer is cached), so it may
    be moderately expensive but must not block on the network.
    """
