"""One of several engines: the Engine run over the partitions this engine's leases hold.

The leases are renewed elsewhere (a thread, through the database); here, between two steps of
the engine loop, the windows follow them: windows of partitions given up are dropped, partitions
gained (or re-gained under a new token) are loaded from storage with their open alerts, and a
tick is requested so the new servers are forecast at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from argus.domain.alerts import ActiveAlert
from argus.domain.channel import EngineRequest
from argus.domain.ingestion import ServerHistory
from argus.domain.metrics import MetricsWindow, Record
from argus.domain.partitions import Ownership

if TYPE_CHECKING:  # the domain names ports only for the type checker (see tests/test_architecture.py)
    from argus.domain.services import Engine, EngineStatus
    from argus.ports.channel import Accept, EngineChannel
    from argus.ports.storage import EngineFeed

log = logging.getLogger(__name__)


class OwnedFeed:
    """An engine feed that passes on only the servers of the partitions this engine has loaded."""

    def __init__(self, feed: EngineFeed, ownership: Ownership, server_names: Callable[[], Sequence[str]],
                 histories: Callable[[Sequence[str], int | None], Iterable[ServerHistory]]) -> None:
        self.feed = feed
        self.ownership = ownership
        self.server_names = server_names
        self.histories = histories

    def batches_after(self, batch_id: int, limit: int = 1000) -> list[tuple[int, float]]:
        return self.feed.batches_after(batch_id, limit)

    def last_batch_id(self) -> int:
        return self.feed.last_batch_id()

    def records_in_batches(self, batch_ids: Sequence[int]) -> list[Record]:
        return [r for r in self.feed.records_in_batches(batch_ids) if self.ownership.owns(r.server_name)]

    def server_histories(self, limit_per_server: int | None, partitions: Iterable[int] | None = None
                         ) -> Iterator[ServerHistory]:
        """Histories of the loaded partitions' servers (or of ``partitions`` only)."""
        wanted = set(self.ownership.tokens if partitions is None else partitions)
        names = [n for n in self.server_names() if self.ownership.of(n) in wanted]
        return iter(self.histories(names, limit_per_server))


class PartitionedEngine:
    """Runs ``engine`` over the partitions ``held()`` names, reloading what changes hands."""

    def __init__(self, engine: Engine, ownership: Ownership, held: Callable[[], Mapping[int, int]], feed: OwnedFeed,
                 alerts_in: Callable[[Iterable[int]], list[ActiveAlert]]) -> None:
        self.engine = engine
        self.ownership = ownership
        self.held = held
        self.feed = feed
        self.alerts_in = alerts_in

    def start(self) -> None:
        """Load the partitions held now, then start the engine over them (windows, open alerts)."""
        self.ownership.tokens = dict(self.held())
        self.engine.start()
        log.info("engine follows %d partitions, %d servers", len(self.ownership.tokens),
                 len(self.engine.keeper.windows))

    def step(self) -> int:
        self.follow()
        return self.engine.step()

    @property
    def status(self) -> EngineStatus:
        return self.engine.status

    def publish_status(self) -> None:
        self.engine.publish_status()

    def follow(self) -> bool:
        """Apply lease changes to the windows and the alert tracker; return whether anything changed."""
        held = dict(self.held())
        gained, lost = self.ownership.changes(held)
        if not gained and not lost:
            return False
        keeper = self.engine.keeper
        for window in [w for w in keeper.windows if self.ownership.of(w.server_name) in lost]:
            keeper.windows.discard(window.server_name)
        self.ownership.tokens = held
        loaded = 0
        for history in self.feed.server_histories(keeper.windows.capacity, partitions=gained):
            window = MetricsWindow.from_arrays(history.server_name, keeper.windows.capacity, history.timestamps,
                                               history.values, history.statuses)
            if len(window):
                keeper.windows.put(window)
                loaded += len(window)
        predictor = self.engine.predictor
        if predictor is not None:
            kept = [a for a in predictor.tracker.active() if self.ownership.of(a.server_name) not in lost | gained]
            predictor.tracker.restore(kept + self.alerts_in(gained))
        self.engine.request_tick()
        log.info("partitions: %d gained, %d given up; now %d partitions, %d servers (%d records loaded)",
                 len(gained), len(lost), len(held), len(keeper.windows), loaded)
        return True


class OwnedRequests:
    """The request channel as one sharded engine sees it: explanations of the servers it holds, and the
    admin requests (reload, training) when it holds partition 0; everything else stays for the others."""

    def __init__(self, channel: EngineChannel, ownership: Ownership) -> None:
        self.channel = channel
        self.ownership = ownership

    def accepts(self, kind: str, payload: Mapping[str, Any]) -> bool:
        if kind == "explain":
            return self.ownership.owns(str(payload.get("server_name", "")))
        return 0 in self.ownership.tokens

    def claim(self, limit: int, now: float, accept: Accept | None = None) -> list[EngineRequest]:
        if accept is None:
            return self.channel.claim(limit, now, accept=self.accepts)
        return self.channel.claim(limit, now, accept=lambda kind, payload: self.accepts(kind, payload)
                                  and accept(kind, payload))

    def answer(self, request: int, result: dict[str, Any]) -> None:
        self.channel.answer(request, result)

    def fail(self, request: int, code: str, message: str) -> None:
        self.channel.fail(request, code, message)
