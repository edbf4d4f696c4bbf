"""Sharing the fleet between engines: servers hashed into partitions, partitions leased to engines.

Pure rules, no I/O: which partition a server is in, and what an engine should renew, claim and
release given the lease table as it reads it (the SQL adapter carries the plan out with
conditional updates, so two engines racing for one partition cannot both win).

A lease carries a fencing token that grows by one every time the partition changes hands; an
engine publishes a partition only while the token it loaded the partition's windows with is still
the lease's token, so a paused engine that lost its lease cannot overwrite its successor's results.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping

import attrs

from argus.domain.alerts import AlertLevel

#: Fixed per database: every engine must hash servers into the same partitions.
PARTITIONS = 64


def body_key(partition: int) -> str:
    """The published-body key under which a sharded engine hands over one partition's prediction entries."""
    return f"partition:{partition}"


def partition_of(server_name: str, partitions: int = PARTITIONS) -> int:
    """Return the partition of ``server_name``: a stable hash (CRC-32 of its UTF-8), the same in every process."""
    return zlib.crc32(server_name.encode()) % partitions


@attrs.frozen
class Lease:
    """One partition's row of the lease table; ``owner`` is None when nobody holds it."""

    partition: int
    owner: str | None
    token: int
    expires_at: float

    def free_at(self, now: float) -> bool:
        return self.owner is None or self.expires_at <= now


@attrs.frozen
class LeasePlan:
    """What one engine does on one lease round: renew (partition -> token), claim, release (partition -> token)."""

    renew: Mapping[int, int]
    claim: tuple[int, ...]
    release: Mapping[int, int]


def fair_share(partitions: int, engines: int) -> int:
    """The most partitions one engine keeps while ``engines`` share ``partitions`` (rounded up: none left over)."""
    return math.ceil(partitions / max(1, engines))


def plan_leases(leases: Iterable[Lease], me: str, engines: int, now: float, partitions: int = PARTITIONS) -> LeasePlan:
    """Plan a lease round for engine ``me`` among ``engines`` live engines.

    Keep (renew) up to the fair share of what ``me`` holds, even past its expiry: the unchanged token
    proves nobody held it in between. Release the rest (highest partitions first), so a newly
    joined engine finds free partitions. Claim free or expired partitions up to the share, starting
    at an offset derived from ``me`` so engines starting together rarely race for the same rows.
    """
    by_partition = {lease.partition: lease for lease in leases}
    share = fair_share(partitions, engines)
    mine = sorted(p for p, lease in by_partition.items() if lease.owner == me)
    keep, drop = mine[:share], mine[share:]
    start = partition_of(me, partitions)
    order = [(start + i) % partitions for i in range(partitions)]
    free = [p for p in order if p not in by_partition or (by_partition[p].owner != me and by_partition[p].free_at(now))]
    return LeasePlan(
        renew={p: by_partition[p].token for p in keep},
        claim=tuple(free[: max(0, share - len(keep))]),
        release={p: by_partition[p].token for p in drop},
    )


@attrs.define
class Ownership:
    """The partitions an engine has loaded (partition -> fencing token); what it follows, forecasts and publishes."""

    partitions: int = PARTITIONS
    tokens: dict[int, int] = attrs.field(factory=dict)

    def owns(self, server_name: str) -> bool:
        return partition_of(server_name, self.partitions) in self.tokens

    def of(self, server_name: str) -> int:
        return partition_of(server_name, self.partitions)

    def changes(self, held: Mapping[int, int]) -> tuple[set[int], set[int]]:
        """Return (gained, lost) partitions going from what is loaded to ``held``; a new token is both."""
        lost = {p for p, token in self.tokens.items() if held.get(p) != token}
        gained = {p for p, token in held.items() if self.tokens.get(p) != token}
        return gained, lost


@attrs.frozen
class ScoredServer:
    """What the fleet summary needs of one assessed server (a published partition keeps these, unrounded)."""

    level: AlertLevel
    score: float
    prob_30m: float
    prob_8h: float
