"""Argus's own hook implementations: the built-in server profiles."""

from __future__ import annotations

from argus.domain.profiles import BUILTIN_PROFILES
from argus.plugins import hookimpl


@hookimpl
def argus_server_profiles():
    return list(BUILTIN_PROFILES)
