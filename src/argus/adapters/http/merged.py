"""One answer across sharded engines: /predictions/current, /alerts/active and /status merged from partitions.

Sharded engines (ARGUS_ENGINE_SHARDING=1, PostgreSQL) each publish the partitions they hold, one
row per partition, and their own status. ``ShardedPublished`` stands where the web workers read
published bodies: when the partition rows are newer than what a single engine published, it
serves their union, sorted as one engine would, with the fleet summary computed over every
partition's servers; otherwise (a single engine, SQLite) it passes reads through unchanged.
"""

from __future__ import annotations

import threading

import orjson

from argus.adapters.http.snapshots import insufficient_body, predictions_body, render_alerts
from argus.domain.ingestion import WARMUP_MIN_RECORDS, PublishedItem
from argus.domain.risk import summarize

MERGED_KEYS = ("predictions", "alerts")
STATUS_SUMS = ("servers_tracked", "window_records", "servers_ready")


class ShardedPublished:
    """PublishedResults for web workers: the single engine's bodies, or the union of the partitions when newer."""

    def __init__(self, published, shards, stale_after_s: float = 30.0) -> None:
        self.published = published
        self.shards = shards
        self.stale_after_s = stale_after_s
        self._cache: dict[str, PublishedItem] = {}
        self._lock = threading.Lock()

    def publish(self, items: dict[str, str]) -> None:
        self.published.publish(items)

    def published_version(self, key: str) -> float | None:
        return self._source(key)[1]

    def read_published(self, key: str) -> PublishedItem | None:
        merged, version = self._source(key)
        if not merged:
            return self.published.read_published(key)
        cached = self._cache.get(key)
        if cached is not None and cached.updated_at == version:
            return cached
        body = self._status() if key == "status" else self._predictions() if key == "predictions" else self._alerts()
        item = PublishedItem(key=key, body=orjson.dumps(body).decode(), updated_at=version)
        with self._lock:
            self._cache[key] = item
        return item

    def _source(self, key: str) -> tuple[bool, float | None]:
        """(whether to merge the shards, the version) for ``key``: the newer of the two sources wins."""
        base = self.published.published_version(key)
        if key in MERGED_KEYS:
            shard = self.shards.snapshot_version()
        elif key == "status":
            shard = self.shards.status_version()
        else:
            return False, base
        if shard is not None and (base is None or shard > base):
            return True, shard
        return False, base

    def _statuses(self) -> list[tuple[str, dict, float, int]]:
        return [(engine, orjson.loads(body), at, held)
                for engine, body, at, held in self.shards.statuses(self.stale_after_s)]

    def _predictions(self) -> dict:
        rows = self.shards.snapshots()
        statuses = [s for _, s, _, _ in self._statuses()]
        predictions: dict = {}
        for row in rows:
            predictions.update(orjson.loads(row.servers))
        if not predictions:
            have = sum(int(s.get("window_records") or 0) for s in statuses)
            return insufficient_body(have, max((r.min_history_steps for r in rows), default=12))
        newest = max(rows, key=lambda r: r.at)
        summary = summarize([scored for row in rows for scored in row.scored()])
        warming = sum(int(s.get("servers_tracked") or 0) - int(s.get("servers_ready") or 0) for s in statuses)
        return predictions_body(dict(sorted(predictions.items())), summary, max(0, warming), self._active(),
                                 newest.at, newest.model)

    def _alerts(self) -> dict:
        rows = self.shards.snapshots()
        return render_alerts(self._active(), max((r.at for r in rows), default=0.0))

    def _active(self):
        return sorted(self.shards.active_alerts(), key=lambda a: (-a.level.rank, -a.risk_score, a.server_name))

    def _status(self) -> dict:
        statuses = self._statuses()
        merged = dict(statuses[0][1])  # the newest engine's fields, then the sums and extremes over all
        bodies = [s for _, s, _, _ in statuses]
        for name in STATUS_SUMS:
            merged[name] = sum(int(b.get(name) or 0) for b in bodies)
        merged["model_loaded"] = all(b.get("model_loaded") for b in bodies)
        predictions = [b["last_prediction"] for b in bodies if b.get("last_prediction")]
        merged["last_prediction"] = max(predictions) if predictions else None
        merged["started_at"] = min((b["started_at"] for b in bodies if b.get("started_at")), default=None)
        merged["warmup_complete"] = merged["window_records"] >= WARMUP_MIN_RECORDS
        merged["engines"] = [{"engine_id": engine, "partitions": held, "servers_tracked": b.get("servers_tracked"),
                              "heartbeat_at": at} for engine, b, at, held in statuses]
        return merged
