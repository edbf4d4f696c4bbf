"""Seeded incident bench: labelled incidents injected into a real background series (``argus bench make``).

Each server's records become numpy arrays. Events are placed per server in time order: nothing in
the warm-up days, an hour of clean background before and after each (no limit breach, no offline or
maintenance record, no gap in time), eight hours of untouched background before the next onset.
Each kind is a small function that draws its parameters from the server's seeded Generator and
returns the new path of one risk metric; the labels are then read back from the written values the
way Argus reads them (float32 rows, ``values_from_row``, the profile's limits). See docs/bench.md.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path

import attrs
import numpy as np
import orjson

from argus.domain.metrics import FIELD_INDEX, INTEGER_FIELDS, METRIC_FIELDS, STEP_SECONDS
from argus.domain.profiles import Limits, ProfileResolver
from argus.domain.risk import LIMIT_OF

H = 3600 // STEP_SECONDS  # steps per hour
DAY = 24 * H
GUARD = H  # clean background before and after every event
SPACING = 8 * H  # untouched background after an event before the next onset
SEARCH = DAY  # how far an event may move forward past breaches before another kind is drawn
MAX_SPAN = 5 * DAY  # longest event (daily_peak_creep: 4 days and a few hours)
MARGIN = 0.1  # injected values keep this far from a limit, except during the run over it
CLIMB_START_MAX = 0.8  # a build-up starts from at most this share of the limit
NEGATIVE_SHARE = 0.4  # negatives per incident
DEFAULT_PER_SERVER = 16  # incidents per server at most
TYPICAL_EVENT_STEPS = 26 * H  # mean event plus spacing at the default mix: spreads capped servers' events
IGNORED_STATUSES = ("offline", "maintenance")  # Argus counts no breach on these records

#: Record fields behind each risk metric (cpu_pct is 100 - cpu_idle_pct; the user share carries the change).
RECORD_FIELDS = {
    "cpu_pct": ("cpu_user_pct", "cpu_idle_pct"), "mem_pct": ("mem_used_pct",), "swap_pct": ("swap_used_pct",),
    "iowait_pct": ("cpu_iowait_pct",), "disk_pct": ("disk_usage_pct",), "load": ("load_average",),
    "close_wait": ("back_close_wait", "front_close_wait"),
}
_COL = {name: FIELD_INDEX[name] for name in ("cpu_user_pct", "cpu_sys_pct", "cpu_iowait_pct", "cpu_idle_pct",
                                             "mem_used_pct", "net_in_mb_s", "net_out_mb_s", "load_average")}


# --- kinds: each returns the new path of its metric from the onset on, or None when it does not fit there ---

def memory_leak(rng: np.random.Generator, bg: np.ndarray, limit: float) -> np.ndarray | None:
    """Memory climbs linearly from the background to 1–4 points over the limit over 4–16 h (noise sd 0.3)."""
    return _climb(rng, bg, limit, int(rng.integers(4 * H, 16 * H + 1)), rng.uniform(1, 4), 1.0, 0.3, 100.0)


def disk_fill(rng: np.random.Generator, bg: np.ndarray, limit: float) -> np.ndarray | None:
    """Disk usage climbs linearly over 6–24 h to 1–3 points over the limit (noise sd 0.05)."""
    return _climb(rng, bg, limit, int(rng.integers(6 * H, 24 * H + 1)), rng.uniform(1, 3), 1.0, 0.05, 100.0)


def swap_storm(rng: np.random.Generator, bg: np.ndarray, limit: float) -> np.ndarray | None:
    """Swap usage builds up over 2–6 h, accelerating (t^2 to t^3), to 2–10 points past the limit."""
    return _climb(rng, bg, limit, int(rng.integers(2 * H, 6 * H + 1)), rng.uniform(2, 10), rng.uniform(2, 3),
                  0.2, 100.0)


def load_climb(rng: np.random.Generator, bg: np.ndarray, limit: float) -> np.ndarray | None:
    """The load average rises linearly over 3–8 h to 5–25 % over the limit (noise sd 0.1)."""
    return _climb(rng, bg, limit, int(rng.integers(3 * H, 8 * H + 1)), limit * rng.uniform(0.05, 0.25), 1.0,
                  0.1, np.inf)


def daily_peak_creep(rng: np.random.Generator, bg: np.ndarray, limit: float) -> np.ndarray | None:
    """A daily CPU bump at the onset's time of day whose peak grows linearly for 3–5 days, crossing on the last.

    The bump rises for 1–2 h, holds 30 min–3 h and falls as fast; its peak is (d + 1)/days of the way
    from the background to 1–4 points over the limit. The last day's bump holds over the limit, then
    the CPU drops back to the background (a fix). The bump is a floor: busier background shows through.
    """
    days, rise, hold = int(rng.integers(3, 6)), int(rng.integers(H, 2 * H + 1)), _over_steps(rng)
    base, target = float(np.median(bg[:H])), min(limit + rng.uniform(1, 4), 100.0)
    if not base <= CLIMB_START_MAX * limit:
        return None
    bump = np.concatenate([np.arange(1, rise + 1) / rise, np.ones(hold), np.arange(rise - 1, -1, -1) / rise])
    cross = int(np.argmax(base + (target - base) * bump[:rise] >= limit))
    last = (days - 1) * DAY
    path = bg[: last + cross + hold].copy()
    for day in range(days - 1):
        seg = slice(day * DAY, day * DAY + len(bump))
        level = base + (target - base) * (day + 1) / days * bump + rng.normal(0, 1.5, len(bump))
        path[seg] = np.minimum(np.maximum(bg[seg], level), limit - MARGIN)
    final = np.maximum(bg[last : last + rise + hold], base + (target - base) * bump[: rise + hold]
                       + rng.normal(0, 1.5, rise + hold))
    path[last:] = _cross_at(final, cross, hold, limit, 100.0)
    return path


def cpu_runaway(rng: np.random.Generator, bg: np.ndarray, limit: float) -> np.ndarray | None:
    """CPU goes from the background to 1–5 points over the limit within 5–10 min, stays 30–90 min, drops back."""
    rise, hold = int(rng.integers(1, 3)), int(rng.integers(H // 2, 3 * H // 2 + 1))
    level = min(limit + rng.uniform(1, 5), 100.0)
    climb = bg[:rise] + (level - bg[:rise]) * np.arange(1, rise + 1) / (rise + 1)
    return _cross_at(np.concatenate([climb, level + rng.normal(0, 1.0, hold)]), rise, hold, limit, 100.0)


def burst_return(rng: np.random.Generator, bg: np.ndarray, limit: float) -> np.ndarray | None:
    """CPU bursts to 70–88 % (at least 2 points under the limit) for 10–30 min, then returns."""
    steps, level = int(rng.integers(2, 7)), rng.uniform(70, 88)
    return np.minimum(np.maximum(bg[:steps], level + rng.normal(0, 1.0, steps)), limit - 2)


def restart_drop(rng: np.random.Generator, bg: np.ndarray, limit: float) -> np.ndarray | None:
    """Memory drops 20–40 points at a restart and recovers linearly to the background over 2–8 h.

    Needs at least that much memory in use at the onset (else it does not fit there).
    """
    steps, drop = int(rng.integers(2 * H, 8 * H + 1)), rng.uniform(20, 40)
    if not bg[0] >= drop:
        return None
    return np.clip(bg[:steps] - drop * (1 - np.arange(steps) / steps), 0.0, limit - MARGIN)


def maintenance(rng: np.random.Generator, bg: np.ndarray, limit: float) -> np.ndarray | None:
    """1–3 h of records with status maintenance and CPU at 100 % (Argus ignores maintenance records)."""
    steps = int(rng.integers(H, 3 * H + 1))
    return np.where(np.isnan(bg[:steps]), np.nan, 100.0)


def stable_high(rng: np.random.Generator, bg: np.ndarray, limit: float) -> np.ndarray | None:
    """Memory sits at min(88, limit − 6) ± 0.5 for 2–4 days, then returns: high, stable, no incident."""
    steps = int(rng.integers(2 * DAY, 4 * DAY + 1))
    return np.where(np.isnan(bg[:steps]), np.nan, min(88.0, limit - 6.0) + rng.uniform(-0.5, 0.5, steps))


def _over_steps(rng: np.random.Generator) -> int:
    return int(rng.integers(H // 2, 3 * H + 1))  # 30 min to 3 h over the limit


def _climb(rng: np.random.Generator, bg: np.ndarray, limit: float, ramp: int, excess: float, power: float,
           noise_sd: float, top: float) -> np.ndarray | None:
    """The background plus a build-up (share of the way ``(t/ramp)**power``) to ``limit + excess``, then held."""
    over = _over_steps(rng)
    base, target = float(np.median(bg[:H])), min(limit + excess, top)
    if not base <= CLIMB_START_MAX * limit:
        return None
    share = np.minimum(np.arange(1, ramp + over + 1) / ramp, 1.0) ** power
    cross = int(np.argmax(base + (target - base) * share >= limit))  # the planned crossing, whatever the noise
    path = bg[: ramp + over] + (target - base) * share + rng.normal(0, noise_sd, ramp + over)
    return _cross_at(path, cross, over, limit, top)


def _cross_at(path: np.ndarray, cross: int, over: int, limit: float, top: float) -> np.ndarray:
    """``path`` kept under ``limit`` before step ``cross``, over it for ``over`` steps from there, cut after."""
    out = path[: cross + over].copy()
    out[:cross] = np.minimum(out[:cross], limit - MARGIN)
    out[cross:] = np.clip(out[cross:], limit + MARGIN, top)
    return out


Shape = Callable[[np.random.Generator, np.ndarray, float], "np.ndarray | None"]


@attrs.frozen
class Kind:
    """One kind of event: its class, the risk metric it moves, its weight in the mix and its shape."""

    name: str
    cls: str  # gradual | fast | negative
    metric: str
    weight: float  # incident kinds sum to 1, negative kinds to NEGATIVE_SHARE
    shape: Shape
    status: str | None = None  # the status its records get, if any

    def applies(self, limits: dict[str, float]) -> bool:
        """Whether a server with these limits can have this kind (a limit, and room over it)."""
        return self.metric in limits and limits[self.metric] + MARGIN < (np.inf if self.metric == "load" else 100.0)


KINDS: tuple[Kind, ...] = (
    Kind("memory_leak", "gradual", "mem_pct", 0.17, memory_leak),
    Kind("disk_fill", "gradual", "disk_pct", 0.14, disk_fill),
    Kind("swap_storm", "gradual", "swap_pct", 0.16, swap_storm),
    Kind("daily_peak_creep", "gradual", "cpu_pct", 0.12, daily_peak_creep),
    Kind("load_climb", "gradual", "load", 0.16, load_climb),
    Kind("cpu_runaway", "fast", "cpu_pct", 0.25, cpu_runaway),
    Kind("burst_return", "negative", "cpu_pct", 0.12, burst_return),
    Kind("restart_drop", "negative", "mem_pct", 0.12, restart_drop),
    Kind("maintenance", "negative", "cpu_pct", 0.10, maintenance, status="maintenance"),
    Kind("stable_high", "negative", "mem_pct", 0.06, stable_high),
)


# --- records as arrays ---

@attrs.frozen
class Records:
    """A records file as arrays, one row per line; ``lines`` are kept verbatim for the rows left alone."""

    lines: list[bytes]
    names: tuple[str, ...]  # sorted; ``server`` indexes them
    server: np.ndarray  # int32
    ts: np.ndarray  # int64 epoch seconds
    values: np.ndarray  # float64 (n, len(METRIC_FIELDS))
    status: np.ndarray  # object (str)


def read_records(path: str | Path, servers: int | None = None, days: float | None = None) -> Records:
    """Read a JSONL(.gz) records file; keep the first ``servers`` servers by name and the first ``days`` days."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        return select(parse_records(fh), servers, days)


def parse_records(lines: Iterable[bytes]) -> Records:
    """Parse JSON Lines records (blank lines skipped); a line without a schema field raises ValueError."""
    kept, ts, server, status, rows = [], [], [], [], []
    when: dict[str, int] = {}
    index: dict[str, int] = {}
    fields = itemgetter(*METRIC_FIELDS)
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip(b"\r\n")
        if not line.strip():
            continue
        try:
            rec = orjson.loads(line)
            stamp = rec["timestamp"]
            ts.append(when[stamp] if stamp in when else when.setdefault(stamp, _epoch(stamp)))
            server.append(index.setdefault(rec["server_name"], len(index)))
            status.append(rec["status"])
            rows.append(fields(rec))
        except (KeyError, TypeError, ValueError) as ex:
            raise ValueError(f"line {number}: not a record of the Argus schema ({ex!r})") from None
        kept.append(line)
    names = sorted(index)
    rank = np.empty(len(index), dtype=np.int32)
    rank[[index[name] for name in names]] = np.arange(len(names), dtype=np.int32)
    return Records(kept, tuple(names), rank[np.asarray(server, dtype=np.int64)], np.asarray(ts, dtype=np.int64),
                   np.asarray(rows, dtype=np.float64).reshape(-1, len(METRIC_FIELDS)), np.asarray(status, dtype=object))


def select(records: Records, servers: int | None = None, days: float | None = None) -> Records:
    """The first ``servers`` servers (by name) and the records of the first ``days`` days."""
    keep = np.ones(len(records.ts), dtype=bool)
    if servers is not None:
        keep &= records.server < servers
    if days is not None and keep.any():
        keep &= records.ts < records.ts[keep].min() + days * 86_400
    if keep.all():
        return records
    lines = [line for line, k in zip(records.lines, keep.tolist(), strict=True) if k]
    names = records.names[:servers] if servers is not None else records.names
    return Records(lines, names, records.server[keep], records.ts[keep], records.values[keep], records.status[keep])


def _epoch(stamp: str) -> int:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return int(round((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()))


def iso(epoch_s: int) -> str:
    """``2013-07-02T10:05:00Z``."""
    return datetime.fromtimestamp(int(epoch_s), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def risk_values(values: np.ndarray) -> dict[str, np.ndarray]:
    """Every risk metric of record rows, as ``values_from_row`` computes it from Argus's float32 rows."""
    rows = np.asarray(values, dtype=np.float32).astype(np.float64)

    def col(name: str) -> np.ndarray:
        return rows[:, FIELD_INDEX[name]]

    return {
        "cpu_pct": 100.0 - col("cpu_idle_pct"), "mem_pct": col("mem_used_pct"), "swap_pct": col("swap_used_pct"),
        "iowait_pct": col("cpu_iowait_pct"), "disk_pct": col("disk_usage_pct"), "load": col("load_average"),
        "close_wait": np.maximum(col("back_close_wait"), col("front_close_wait")),
    }


def limits_of(limits: Limits) -> dict[str, float]:
    """The limit of every metric that has one, in LIMIT_OF order."""
    out = {metric: getattr(limits, attr) for metric, attr in LIMIT_OF.items()}
    return {metric: float(limit) for metric, limit in out.items() if limit is not None}


# --- one server: placing, writing and checking events ---

@attrs.define
class Server:
    """One server's records in time order (``values`` and ``status`` are copies, edited in place)."""

    name: str
    ts: np.ndarray
    values: np.ndarray
    status: np.ndarray
    limits: dict[str, float]
    cores: float  # load_average per 100 % busy CPU (the Bitbrains derivation: load = cores x busy / 100)

    def over(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        """Per metric with a limit: which of the steps lo..hi-1 are at or over it (offline/maintenance never)."""
        now = risk_values(self.values[lo:hi])
        counted = ~np.isin(self.status[lo:hi], IGNORED_STATUSES)
        return {metric: (now[metric] >= limit) & counted for metric, limit in self.limits.items()}

    def metric(self, metric: str, lo: int, hi: int) -> np.ndarray:
        """The risk metric over lo..hi-1 in natural units (float64), NaN past the end of the series."""
        field = "cpu_idle_pct" if metric == "cpu_pct" else RECORD_FIELDS[metric][0]
        column = self.values[lo:hi, FIELD_INDEX[field]]
        path = 100.0 - column if metric == "cpu_pct" else column
        return np.concatenate([path, np.full(hi - lo - len(path), np.nan)])


@attrs.frozen
class Event:
    """A placed event: records onset..stop-1 changed; incidents are over the limit from start to end."""

    kind: Kind
    onset: int
    stop: int
    involved: tuple[str, ...]
    start: int = -1
    end: int = -1


def place_events(server: Server, rng: np.random.Generator, first: int, per_server: int) -> list[Event]:
    """Place events in time order from step ``first``: draw a kind, move it past breaches, then leave SPACING.

    A kind that fits nowhere within SEARCH is not drawn again at that spot and another kind of its
    class is drawn instead (so the class shares hold); when no kind fits, the spot moves a day on.
    """
    blocked = _blocked(server)
    pool = [kind for kind in KINDS if kind.applies(server.limits)]
    events: list[Event] = []
    at, failed, cls, incidents = first, [], None, 0
    while incidents < per_server and at + GUARD < len(server.ts):
        kind = _draw(rng, pool, failed, cls)
        if kind is None:
            at, failed, cls = at + DAY, [], None
            continue
        event = _place(server, kind, at, blocked, rng)
        if event is None:
            failed, cls = failed + [kind], kind.cls
            continue
        events.append(event)
        incidents += kind.cls != "negative"
        at = event.stop + SPACING + _slack(rng, len(server.ts) - event.stop, per_server - incidents)
        failed, cls = [], None
    return events


def _draw(rng: np.random.Generator, pool: list[Kind], failed: list[Kind], cls: str | None) -> Kind | None:
    """A kind not ``failed`` here: of class ``cls`` while one is left, else of a class drawn by its share."""
    live = [kind for kind in pool if kind not in failed]
    if cls is None or all(kind.cls != cls for kind in live):
        share = {kind.cls: sum(k.weight for k in pool if k.cls == kind.cls) for kind in live}
        if not share:
            return None
        cls = list(share)[int(rng.choice(len(share), p=np.array(list(share.values())) / sum(share.values())))]
    kinds = [kind for kind in live if kind.cls == cls]
    weights = np.array([kind.weight for kind in kinds])
    return kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]


def _blocked(server: Server) -> np.ndarray:
    """Steps no event may touch or border: background breaches, offline/maintenance records, gaps in time."""
    blocked = np.any(np.stack(list(server.over(0, len(server.ts)).values())), axis=0)
    blocked |= np.isin(server.status, IGNORED_STATUSES)
    blocked[1:] |= np.diff(server.ts) != STEP_SECONDS
    return blocked


def _slack(rng: np.random.Generator, steps_left: int, incidents_left: int) -> int:
    """Extra background between events, so that a server capped by ``--per-server`` gets them spread out."""
    room = steps_left / max(incidents_left * (1 + NEGATIVE_SHARE), 1) - TYPICAL_EVENT_STEPS
    return int(rng.integers(0, 2 * room + 1)) if incidents_left > 0 and room > 0 else 0


def _place(server: Server, kind: Kind, at: int, blocked: np.ndarray, rng: np.random.Generator) -> Event | None:
    """Put ``kind`` at the first step from ``at`` (up to SEARCH later) where it fits; None if it fits nowhere."""
    n, latest = len(server.ts), at + SEARCH
    limit = server.limits[kind.metric]
    while at <= latest:
        path = kind.shape(rng, server.metric(kind.metric, at, at + MAX_SPAN), limit)
        if path is None:
            at += H
            continue
        stop = at + len(path)
        if np.isnan(path).any() or stop + GUARD > n:
            return None  # runs past the end of the series
        bad = np.flatnonzero(blocked[max(at - GUARD, 0) : stop + GUARD])
        if len(bad):
            at = max(at - GUARD, 0) + int(bad[-1]) + GUARD + 1
            continue
        event = _apply(server, kind, at, path)
        if event is not None:
            return event
        at += H
    return None


def _apply(server: Server, kind: Kind, onset: int, path: np.ndarray) -> Event | None:
    """Write ``path`` from ``onset``; keep it only if the labels hold (else restore the records, return None)."""
    stop = onset + len(path)
    saved = server.values[onset:stop].copy(), server.status[onset:stop].copy()
    _write(server, kind.metric, onset, path)
    moved = server.values[onset:stop] != saved[0]
    if kind.status is not None:
        server.status[onset:stop] = kind.status
    else:
        _restatus(server, onset, stop, moved.any(axis=1))
    lo = max(onset - GUARD, 0)
    over = server.over(lo, stop + GUARD)
    hits = np.flatnonzero(np.any(np.stack(list(over.values())), axis=0)) + lo
    involved = tuple(f for f, m in zip(METRIC_FIELDS, moved.any(axis=0), strict=True) if m)
    involved += ("status",) if kind.status else ()
    if kind.cls == "negative" and len(hits) == 0:
        return Event(kind, onset, stop, involved)
    if (kind.cls != "negative" and len(hits) and hits[-1] - hits[0] + 1 == len(hits) and onset < hits[0]
            and hits[-1] < stop and over[kind.metric][hits[0] - lo]):
        return Event(kind, onset, stop, involved, int(hits[0]), int(hits[-1]))
    server.values[onset:stop], server.status[onset:stop] = saved
    return None


def _write(server: Server, metric: str, onset: int, path: np.ndarray) -> None:
    """Put a metric path into the records (only the steps it moves; rounded to 0.01, clipped to the field's range).

    CPU moves cpu_user_pct, cpu_idle_pct = 100 - user - sys - iowait, and load_average by the server's cores.
    """
    block = server.values[onset : onset + len(path)]  # a view: edits land in server.values
    old = server.metric(metric, onset, onset + len(path))
    moved = path != old
    if metric == "cpu_pct":
        other = block[:, _COL["cpu_sys_pct"]] + block[:, _COL["cpu_iowait_pct"]]
        user = np.round(np.clip(path - other, 0.0, 100.0 - other), 2)
        load = np.round(np.maximum(block[:, _COL["load_average"]] + server.cores * (user + other - old) / 100, 0), 2)
        block[moved, _COL["cpu_idle_pct"]] = np.round(100.0 - user - other, 2)[moved]
        block[moved, _COL["cpu_user_pct"]] = user[moved]
        block[moved, _COL["load_average"]] = load[moved]
    else:
        top = np.inf if metric == "load" else 100.0
        block[moved, FIELD_INDEX[RECORD_FIELDS[metric][0]]] = np.round(np.clip(path, 0.0, top), 2)[moved]


def _restatus(server: Server, onset: int, stop: int, moved: np.ndarray) -> None:
    """Re-derive the status of moved records by the data README's rules (critical, heavy, idle, healthy)."""
    lo = max(onset - 2, 0)
    rows = server.values[lo:stop]
    busy = 100.0 - rows[:, _COL["cpu_idle_pct"]]
    mem, net = rows[:, _COL["mem_used_pct"]], rows[:, _COL["net_in_mb_s"]] + rows[:, _COL["net_out_mb_s"]]
    hot = busy >= 95
    pegged = hot & np.concatenate([[False], hot[:-1]]) & np.concatenate([[False, False], hot[:-2]])
    derived = np.select([(mem >= 98) | pegged, (busy >= 80) | (mem >= 90), (busy < 1) & (net < 0.01)],
                        ["critical_issue", "heavy_load", "idle"], "healthy")[onset - lo :]
    change = moved & (server.status[onset:stop] != "recovery")
    server.status[onset:stop][change] = derived[change]


def _cores(values: np.ndarray, status: np.ndarray) -> float:
    busy = 100.0 - values[:, _COL["cpu_idle_pct"]]
    use = (busy >= 5) & ~np.isin(status, IGNORED_STATUSES)
    return float(np.median(values[use, _COL["load_average"]] / busy[use] * 100)) if use.any() else 1.0


# --- labels ---

def label(server: Server, events: list[Event]) -> tuple[list[dict], list[dict]]:
    """(windows, negatives) of one server: every run over a limit is an incident's or a background breach."""
    ts = server.ts
    over = server.over(0, len(ts))
    hits = np.flatnonzero(np.any(np.stack(list(over.values())), axis=0))
    runs = np.split(hits, np.flatnonzero(np.diff(ts[hits]) > STEP_SECONDS) + 1) if len(hits) else []
    incidents = {(e.start, e.end): e for e in events if e.kind.cls != "negative"}
    windows = []
    for run in runs:
        first, last = int(run[0]), int(run[-1])
        event = incidents.pop((first, last), None)
        if event is None and any(e.onset - GUARD <= last and first < e.stop + GUARD for e in events):
            raise RuntimeError(f"{server.name}: a breach at {iso(ts[first])} inside an event is not its label")
        metric = event.kind.metric if event else next(m for m in over if over[m][first])
        fields = event.involved if event else tuple(f for m in over if over[m][run].any() for f in RECORD_FIELDS[m])
        windows.append({
            "server_name": server.name, "start": iso(ts[first]), "end": iso(ts[last]),
            "metrics_involved": list(fields), "kind": event.kind.name if event else "background_breach",
            "class": event.kind.cls if event else "background", "metric": metric,
            "limit": server.limits[metric], "onset": iso(ts[event.onset if event else first]),
        })
    if incidents:
        raise RuntimeError(f"{server.name}: injected runs changed after placement: {sorted(incidents)}")
    negatives = [{"server_name": server.name, "start": iso(ts[e.onset]), "end": iso(ts[e.stop - 1]),
                  "kind": e.kind.name, "metrics_involved": list(e.involved)}
                 for e in events if e.kind.cls == "negative"]
    return windows, negatives


# --- the bench ---

@attrs.frozen
class Bench:
    """The records after injection (aligned with the input rows) and their labels."""

    values: np.ndarray
    status: np.ndarray
    changed: np.ndarray  # bool per row
    windows: list[dict]
    negatives: list[dict]

    @property
    def mix(self) -> dict[str, int]:
        kinds = [w["kind"] for w in self.windows] + [n["kind"] for n in self.negatives]
        return {name: kinds.count(name) for name in [k.name for k in KINDS] + ["background_breach"]}


def make_bench(records: Records, seed: int = 0, per_server: int = DEFAULT_PER_SERVER, warmup_days: float = 2.0,
               profiles: ProfileResolver | None = None) -> Bench:
    """Inject seeded events into every server of ``records`` and label every run over a limit."""
    profiles = profiles or ProfileResolver()
    values, status = records.values.copy(), records.status.copy()
    order = np.lexsort((records.ts, records.server))
    bounds = np.searchsorted(records.server[order], np.arange(len(records.names) + 1))
    first_ts = int(records.ts.min()) + int(warmup_days * 86_400) if len(records.ts) else 0
    windows, negatives = [], []
    for k, name in enumerate(records.names):
        rows = order[bounds[k] : bounds[k + 1]]
        server = Server(name, records.ts[rows], values[rows], status[rows],
                        limits_of(profiles.profile_for(name).limits), _cores(values[rows], status[rows]))
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        events = place_events(server, rng, int(np.searchsorted(server.ts, first_ts)), per_server)
        values[rows], status[rows] = server.values, server.status
        server_windows, server_negatives = label(server, events)
        windows += server_windows
        negatives += server_negatives
    changed = np.any(values != records.values, axis=1) | (status != records.status)
    by_time = itemgetter("start", "server_name")
    return Bench(values, status, changed, sorted(windows, key=by_time), sorted(negatives, key=by_time))


def write_bench(out_dir: Path, records: Records, bench: Bench, source: str, seed: int) -> None:
    """Write DIR/records.jsonl.gz (time, then server order; gzip mtime 0) and DIR/labels.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    order = np.lexsort((records.server, records.ts)).tolist()
    with open(out_dir / "records.jsonl.gz", "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as gz:
        for chunk in range(0, len(order), 50_000):
            rows = order[chunk : chunk + 50_000]
            gz.write(b"".join(_line(records, bench, row) + b"\n" for row in rows))
    labels = {"source": source, "seed": seed, "generator": "argus bench make",
              "limits": "profile limits of each server (ProfileResolver)", "mix": bench.mix,
              "windows": bench.windows, "negatives": bench.negatives}
    (out_dir / "labels.json").write_bytes(orjson.dumps(labels, option=orjson.OPT_INDENT_2) + b"\n")


def _line(records: Records, bench: Bench, row: int) -> bytes:
    """The input line, or (for a changed row) the same object with its changed fields replaced."""
    if not bench.changed[row]:
        return records.lines[row]
    rec = orjson.loads(records.lines[row])
    for name, value in zip(METRIC_FIELDS, bench.values[row].tolist(), strict=True):
        if value != rec[name]:
            rec[name] = int(value) if name in INTEGER_FIELDS else value
    rec["status"] = bench.status[row]
    return orjson.dumps(rec)
