"""Server profiles: what kind of server this is and where its resources are in trouble."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import attrs

from argus.domain.metric_table import METRICS


@attrs.frozen
class Limits:
    """Levels at or over which a metric is an incident (None: never an incident on its own).

    One attribute per row of the metric table, named by its key, defaulting to the row's
    ``default_limit``; an attribute typed ``float`` needs a default (tests/unit/test_metric_table.py).
    """

    cpu_pct: float = attrs.field(default=METRICS["cpu_pct"].default_limit)
    mem_pct: float = attrs.field(default=METRICS["mem_pct"].default_limit)
    swap_pct: float = attrs.field(default=METRICS["swap_pct"].default_limit)
    iowait_pct: float = attrs.field(default=METRICS["iowait_pct"].default_limit)
    disk_pct: float = attrs.field(default=METRICS["disk_pct"].default_limit)
    load: float | None = attrs.field(default=METRICS["load"].default_limit)
    close_wait: float | None = attrs.field(default=METRICS["close_wait"].default_limit)


LIMIT_MODES = ("absolute", "learned", "both")


@attrs.frozen
class LimitPolicy:
    """How a server's limits are read: the profile's (absolute), its own history's (learned), or both.

    * ``absolute``: the profile's limits; elevation counts from half the limit.
    * ``learned``: each metric's limit is the server's *normal ceiling* N (the ``quantile`` of its last
      ``lookback_steps`` but the most recent ``recent_steps``, so a leak of the last hours does not
      become its own normal) plus a margin (``margin_points`` for percentages, ``margin_share`` of N for
      load), capped at 100 % and never below half the profile's limit; elevation counts from N.
    * ``both`` (the default): the profile's limits decide what an incident is, and elevation counts
      from N when N is above half the limit — a server whose normal is 85 % memory is not "near
      critical" every tick, but its 95 % limit still is one.

    With less than ``recent_steps + min_steps`` of history nothing is learned and the absolute limits apply.
    """

    mode: str = attrs.field(default="both", validator=attrs.validators.in_(LIMIT_MODES))
    quantile: float = 0.99
    margin_points: float = 5.0
    margin_share: float = 0.25
    lookback_steps: int = 7 * 288
    recent_steps: int = 288
    min_steps: int = 288


@attrs.frozen
class ServerProfile:
    """A named class of servers with its own limits; ``display_name`` is what the API shows."""

    name: str
    display_name: str
    limits: Limits = Limits()
    description: str = ""
    name_prefixes: tuple[str, ...] = ()
    limit_policy: LimitPolicy = LimitPolicy()

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
PolicyFn = Callable[[str, str], "LimitPolicy | None"]  # (server name, profile name) -> override or None


class ProfileResolver:
    """Maps a server name to its profile: explicit classifiers first, then name prefixes, then generic."""

    def __init__(
        self,
        profiles: Iterable[ServerProfile] = BUILTIN_PROFILES,
        classifiers: Iterable[ClassifierFn] = (),
        policies: Iterable[PolicyFn] = (),
    ) -> None:
        self._profiles: dict[str, ServerProfile] = {}
        for profile in profiles:
            if profile.name in self._profiles:
                raise ValueError(f"duplicate server profile name: {profile.name!r}")
            self._profiles[profile.name] = profile
        self._profiles.setdefault(GENERIC.name, GENERIC)
        self._classifiers = tuple(classifiers)
        self._policies = tuple(policies)
        self._cache: dict[str, ServerProfile] = {}
        self._policy_cache: dict[str, LimitPolicy] = {}

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

    def policy_for(self, server_name: str) -> LimitPolicy:
        """The limit policy of ``server_name``: a plugin's per-server override, else its profile's (cached)."""
        cached = self._policy_cache.get(server_name)
        if cached is not None:
            return cached
        profile = self.profile_for(server_name)
        policy = next((p for p in (fn(server_name, profile.name) for fn in self._policies) if p is not None),
                      profile.limit_policy)
        self._policy_cache[server_name] = policy
        return policy

    def _resolve(self, server_name: str) -> ServerProfile:
        for classify in self._classifiers:
            name = classify(server_name)
            if name is not None and name in self._profiles:
                return self._profiles[name]
        for profile in self._profiles.values():
            if profile.matches(server_name):
                return profile
        return self._profiles[GENERIC.name]
