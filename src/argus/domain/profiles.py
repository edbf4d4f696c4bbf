"""Server profiles: what kind of server this is and where its resources are in trouble."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import attrs


@attrs.frozen
class Limits:
    """Levels at or over which a metric is an incident (None: never an incident on its own)."""

    cpu_pct: float = 95.0
    mem_pct: float = 95.0
    swap_pct: float = 50.0
    iowait_pct: float = 30.0
    disk_pct: float = 90.0
    load: float | None = 12.0
    close_wait: float | None = None


@attrs.frozen
class ServerProfile:
    """A named class of servers with its own limits; ``display_name`` is what the API shows."""

    name: str
    display_name: str
    limits: Limits = Limits()
    description: str = ""
    name_prefixes: tuple[str, ...] = ()

    def matches(self, server_name: str) -> bool:
        lowered = server_name.lower()
        return any(lowered.startswith(prefix) for prefix in self.name_prefixes)


GENERIC = ServerProfile("generic", "Generic", description="Any server no other profile claims.")

#: Built-in profiles, after the naming convention of the reference fleet (ppdb001, ppml0001, ...).
BUILTIN_PROFILES: tuple[ServerProfile, ...] = (
    ServerProfile(
        "database", "Database", Limits(mem_pct=98.0, iowait_pct=25.0, disk_pct=85.0),
        "Databases keep memory full by design; iowait and disk fill matter more.", ("ppdb",),
    ),
    ServerProfile(
        "ml_compute", "ML Compute", Limits(cpu_pct=98.0, mem_pct=96.0),
        "Batch ML nodes run hot on CPU for hours; memory exhaustion kills jobs.", ("ppml", "ppgpu"),
    ),
    ServerProfile("web_api", "Web API", Limits(cpu_pct=90.0, mem_pct=92.0, close_wait=200.0),
                  "Latency-sensitive front ends.", ("ppweb", "ppapi")),
    ServerProfile("conductor", "Conductor Mgmt", Limits(), "Orchestration and management.", ("ppcon",)),
    ServerProfile("etl", "ETL/Ingest", Limits(cpu_pct=97.0, iowait_pct=40.0, disk_pct=90.0),
                  "Ingestion pipelines: bursty CPU and I/O.", ("ppetl",)),
    ServerProfile("risk_analytics", "Risk Analytics", Limits(cpu_pct=97.0, mem_pct=95.0),
                  "Risk computation nodes.", ("pprisk",)),
    GENERIC,
)


ClassifierFn = Callable[[str], "str | None"]


class ProfileResolver:
    """Maps a server name to its profile: explicit classifiers first, then name prefixes, then generic."""

    def __init__(
        self,
        profiles: Iterable[ServerProfile] = BUILTIN_PROFILES,
        classifiers: Iterable[ClassifierFn] = (),
    ) -> None:
        self._profiles: dict[str, ServerProfile] = {}
        for profile in profiles:
            if profile.name in self._profiles:
                raise ValueError(f"duplicate server profile name: {profile.name!r}")
            self._profiles[profile.name] = profile
        self._profiles.setdefault(GENERIC.name, GENERIC)
        self._classifiers = tuple(classifiers)
        self._cache: dict[str, ServerProfile] = {}

    @property
    def profiles(self) -> Mapping[str, ServerProfile]:
        return self._profiles

    def profile_for(self, server_name: str) -> ServerProfile:
        """Return the profile of ``server_name`` (cached: a server keeps its profile)."""
        cached = self._cache.get(server_name)
        if cached is not None:
            return cached
        profile = self._resolve(server_name)
        self._cache[server_name] = profile
        return profile

    def _resolve(self, server_name: str) -> ServerProfile:
        for classify in self._classifiers:
            name = classify(server_name)
            if name is not None and name in self._profiles:
                return self._profiles[name]
        for profile in self._profiles.values():
            if profile.matches(server_name):
                return profile
        return self._profiles[GENERIC.name]
