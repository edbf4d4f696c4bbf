"""A simulated fleet for ``argus demo``: daily rhythm, noise and injected incidents, as API records.

Pure numpy and deterministic: the records of step ``k`` depend only on the seed, the fleet size,
the start time and ``k`` (noise comes from a generator seeded with ``(seed, k)``), so any step can
be produced again, in any order. Step 0 is the first record; scenarios are scheduled relative to
``live_step`` (where the demo stops backfilling and starts feeding in accelerated real time).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import attrs
import numpy as np

from argus.domain.metrics import STEP_SECONDS
from argus.domain.profiles import Limits, ProfileResolver

#: (name prefix, digits, share of the 45-server reference fleet), after the reference's naming.
LAYOUT: tuple[tuple[str, int, int], ...] = (
    ("ppdb", 3, 8), ("ppml", 4, 8), ("ppweb", 3, 8), ("ppapi", 3, 6),
    ("ppcon", 3, 4), ("ppetl", 3, 6), ("pprisk", 3, 5),
)
#: Which metric each scenario drives, and the name prefixes it is injected into.
SCENARIO_METRIC = {"memory_leak": "mem_pct", "cpu_runaway": "cpu_pct", "disk_filling": "disk_pct",
                   "swap_storm": "swap_pct"}
SCENARIO_TARGETS = {"memory_leak": ("ppweb", "ppapi", "ppml"), "cpu_runaway": ("pprisk", "ppetl", "ppcon"),
                    "disk_filling": ("ppetl", "ppdb"), "swap_storm": ("ppdb", "ppml")}
#: One wave of incidents, in 5-minute steps relative to the wave's start:
#: (kind, ramp starts, limit reached, back to normal). Waves repeat every WAVE_STEPS on other servers.
WAVE: tuple[tuple[str, int, int, int], ...] = (
    ("memory_leak", -48, 42, 66),   # a slow leak (8 h of climb): a warning with its time to issue for hours
    ("cpu_runaway", -3, 9, 30),     # a runaway process: over the CPU limit within the first hour
    ("disk_filling", -72, 54, 84),  # logs filling a disk over ten hours
    ("swap_storm", -24, 36, 54),    # memory pressure spilling into swap, building up over five hours
)
WAVE_STEPS = 96  # a new wave every 8 simulated hours


@attrs.frozen
class Scenario:
    """An injected incident: ``metric`` ramps from normal at ``start`` to the limit at ``cross``, then on."""

    kind: str
    server_name: str
    start: int
    cross: int
    end: int

    @property
    def metric(self) -> str:
        return SCENARIO_METRIC[self.kind]

    def extra(self, step: int, normal: float, limit: float) -> float:
        """How far above ``normal`` the scenario pushes the metric at ``step`` (0 outside it)."""
        if not self.start <= step < self.end:
            return 0.0
        slope = (limit + 0.5 - normal) / max(1, self.cross - self.start)
        return max(0.0, slope * (step - self.start))


def fleet_names(servers: int = 45) -> list[str]:
    """Server names after the reference (ppdb001, ppml0001, ...): LAYOUT's shares scaled to ``servers``."""
    total = sum(share for _, _, share in LAYOUT)
    exact = [servers * share / total for _, _, share in LAYOUT]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(LAYOUT)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: servers - sum(counts)]:
        counts[i] += 1
    return [f"{prefix}{n:0{digits}d}" for (prefix, digits, _), count in zip(LAYOUT, counts, strict=True)
            for n in range(1, count + 1)]


class FleetSimulator:
    """Records for a fleet of ``servers`` from ``start``, one 5-minute step at a time."""

    def __init__(self, servers: int = 45, *, seed: int = 7, start: datetime | None = None,
                 live_step: int = 72, waves: int = 6) -> None:
        self.names = fleet_names(servers)
        self.start = (start or datetime(2025, 1, 15, 4, 0, tzinfo=UTC)).astimezone(UTC)
        self.live_step = live_step
        resolver = ProfileResolver()
        self.limits: dict[str, Limits] = {name: resolver.profile_for(name).limits for name in self.names}
        self._params = _server_params(self.names, np.random.default_rng(seed))
        self._seed = seed
        self.scenarios = _schedule(self.names, live_step, waves, np.random.default_rng(seed + 1))

    def timestamp(self, step: int) -> datetime:
        return self.start + timedelta(seconds=STEP_SECONDS * step)

    def records(self, step: int) -> list[dict]:
        """Every server's record at ``step``, in the API's wire form."""
        base = _normal(self._params, self.timestamp(step), np.random.default_rng((self._seed, step)))
        for scenario in self.scenarios:
            if scenario.start <= step < scenario.end:
                _inject(base, self.names.index(scenario.server_name), scenario, step,
                        self.limits[scenario.server_name])
        iso = self.timestamp(step).replace(tzinfo=None).isoformat(timespec="seconds")
        return [_record(iso, name, {k: v[i] for k, v in base.items()}, self.limits[name], self._params, i)
                for i, name in enumerate(self.names)]

    def steps(self, first: int, last: int) -> Iterator[list[dict]]:
        """Records of steps ``first`` .. ``last - 1``, one list per step."""
        for step in range(first, last):
            yield self.records(step)

def _server_params(names: list[str], rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = len(names)
    prefix = np.array([next(p for p, _, _ in LAYOUT if name.startswith(p)) for name in names])
    cpu_base = rng.uniform(10, 25, n) + np.where(np.isin(prefix, ("ppml", "pprisk", "ppetl")), 12, 0)
    cpu_amp = rng.uniform(12, 30, n)
    mem_base = np.where(prefix == "ppdb", rng.uniform(68, 80, n), rng.uniform(38, 62, n))
    return {
        "cpu_base": cpu_base, "cpu_amp": cpu_amp, "mem_base": mem_base, "mem_amp": rng.uniform(2, 8, n),
        "disk_base": rng.uniform(35, 68, n), "swap_base": rng.uniform(0.5, 6, n),
        "net_base": rng.uniform(2, 40, n), "phase_h": rng.uniform(-1.5, 1.5, n),
        "cores": np.where(np.isin(prefix, ("ppdb", "ppml")), 8.0, 4.0),
        "java": np.isin(prefix, ("ppweb", "ppapi", "ppcon")).astype(float),
        "web": np.isin(prefix, ("ppweb", "ppapi")).astype(float),
        "uptime0": rng.integers(3, 200, n).astype(float),
    }


def _normal(params: dict[str, np.ndarray], at: datetime, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The fleet's ordinary behaviour at ``at``: a business-day rhythm peaking mid-afternoon, plus noise."""
    n = len(params["cpu_base"])
    hour = at.hour + at.minute / 60 + params["phase_h"]
    day = 0.5 * (1 + np.cos(2 * np.pi * (hour - 14) / 24)) ** 1.5  # 0 at night, 1 at 14:00
    # Secondary metrics are smooth: the shipped model learnt them from a trace where they hardly move, and
    # white noise on them would sit outside its bands (an "anomaly") on half the fleet.
    cpu_noise = rng.normal(0, 1.5, n)
    busy = params["cpu_base"] + params["cpu_amp"] * day
    return {
        "cpu_pct": np.clip(busy + cpu_noise, 4.0, 99.0),
        "cpu_smooth": np.clip(busy, 4.0, 99.0),
        "mem_pct": np.clip(params["mem_base"] + params["mem_amp"] * day + rng.normal(0, 0.6, n), 1, 99.5),
        "disk_pct": np.clip(params["disk_base"] + rng.normal(0, 0.05, n), 1, 99.5),
        "swap_pct": np.clip(params["swap_base"] + rng.normal(0, 0.03, n), 0, 100),
        "iowait_pct": np.clip(1.0 + 1.5 * day + rng.normal(0, 0.05, n), 0, 100),
        "net": np.clip(params["net_base"] * (0.3 + day) + rng.normal(0, 1.0, n), 0, None),
        "uptime": params["uptime0"] + (at - datetime(2025, 1, 1, tzinfo=UTC)).total_seconds() / 86400 % 100,
        "close_wait": np.clip(params["web"] * (8 + 25 * day) + rng.normal(0, 2, n), 0, None),
    }


def _limit(limits: Limits, metric: str) -> float:
    return float(getattr(limits, metric))


def _inject(base: dict[str, np.ndarray], i: int, scenario: Scenario, step: int, limits: Limits) -> None:
    metric = scenario.metric
    limit = _limit(limits, metric)
    normal = float(base[metric][i])
    base[metric][i] = min(99.5, normal + scenario.extra(step, normal, limit))
    if metric == "cpu_pct":
        base["cpu_smooth"][i] = base[metric][i]
    if scenario.kind == "swap_storm":  # memory pressure first, then paging: I/O wait and load follow
        base["mem_pct"][i] = max(base["mem_pct"][i], min(99.0, 0.9 * limits.mem_pct))
        paging = min(20.0, base["swap_pct"][i] / 4)
        base["iowait_pct"][i] += paging
        base["cpu_pct"][i] = min(99.0, base["cpu_pct"][i] + paging)
        base["cpu_smooth"][i] = min(99.0, base["cpu_smooth"][i] + paging)


def _record(iso: str, name: str, v: dict, limits: Limits, params: dict[str, np.ndarray], i: int) -> dict:
    total = float(v["cpu_pct"])  # user + sys + iowait: what the limits call CPU (100 - idle)
    iowait = float(np.clip(v["iowait_pct"], 0, min(60.0, total)))
    busy = total - iowait
    user, sys_ = round(0.78 * busy, 2), round(0.22 * busy, 2)
    iowait = round(iowait, 2)
    idle = round(max(0.0, 100 - user - sys_ - iowait), 2)
    java = round(user * (0.65 if params["java"][i] else 0.05), 2)
    load = float(params["cores"][i]) * (float(v["cpu_smooth"]) + iowait) / 100 * 0.9
    cpu_total = 100 - idle
    over = (cpu_total >= limits.cpu_pct or v["mem_pct"] >= limits.mem_pct or v["swap_pct"] >= limits.swap_pct
            or v["disk_pct"] >= limits.disk_pct)
    if over:
        status = "critical_issue"
    elif cpu_total >= 80 or v["mem_pct"] >= 90:
        status = "heavy_load"
    elif cpu_total < 5:
        status = "idle"
    else:
        status = "healthy"
    return {
        "timestamp": iso, "server_name": name, "status": status,
        "cpu_user_pct": user, "cpu_sys_pct": sys_, "cpu_iowait_pct": iowait, "cpu_idle_pct": idle,
        "java_cpu_pct": java, "mem_used_pct": round(float(v["mem_pct"]), 2),
        "swap_used_pct": round(float(v["swap_pct"]), 2), "disk_usage_pct": round(float(v["disk_pct"]), 2),
        "net_in_mb_s": round(float(v["net"]) * 0.6, 3), "net_out_mb_s": round(float(v["net"]) * 0.4, 3),
        "back_close_wait": int(v["close_wait"]), "front_close_wait": int(v["close_wait"] / 3),
        "load_average": round(load, 2), "uptime_days": int(min(365, v["uptime"])),
    }


def _schedule(names: list[str], live_step: int, waves: int, rng: np.random.Generator) -> list[Scenario]:
    """Waves of incidents on servers of the fitting profiles; one incident per server at a time."""
    scenarios: list[Scenario] = []
    for wave in range(waves):
        offset = live_step + wave * WAVE_STEPS
        busy = {s.server_name for s in scenarios if s.end > offset + min(w[1] for w in WAVE)}
        for kind, start, cross, end in WAVE:
            candidates = [n for prefix in SCENARIO_TARGETS[kind] for n in names
                          if n.startswith(prefix) and n not in busy]
            if not candidates:
                continue
            server = candidates[0] if wave == 0 else str(rng.choice(candidates))
            busy.add(server)
            scenarios.append(Scenario(kind, server, max(0, offset + start), offset + cross, offset + end))
    return scenarios
