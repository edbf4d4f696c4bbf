"""Partition assignment and the lease rules, with a fake clock and an in-memory lease table."""

from __future__ import annotations

import zlib
from collections import Counter

from argus.domain.partitions import PARTITIONS, Lease, Ownership, fair_share, partition_of, plan_leases

TTL_S = 10.0


class FakeLeaseTable:
    """The lease table's conditional updates, in memory: what SqlPartitionLeases does in SQL."""

    def __init__(self, partitions: int = PARTITIONS) -> None:
        self.rows = {p: Lease(p, None, 0, 0.0) for p in range(partitions)}
        self.seen: dict[str, float] = {}
        self.partitions = partitions

    def round(self, me: str, now: float) -> dict[int, int]:
        self.seen[me] = now
        engines = sum(1 for at in self.seen.values() if at > now - TTL_S)
        plan = plan_leases(self.rows.values(), me, engines, now, self.partitions)
        held = {}
        for p, token in plan.release.items():
            if self.rows[p].owner == me and self.rows[p].token == token:
                self.rows[p] = Lease(p, None, token, 0.0)
        for p, token in plan.renew.items():
            if self.rows[p].owner == me and self.rows[p].token == token:
                self.rows[p] = Lease(p, me, token, now + TTL_S)
                held[p] = token
        for p in plan.claim:
            row = self.rows[p]
            if row.free_at(now):
                self.rows[p] = Lease(p, me, row.token + 1, now + TTL_S)
                held[p] = row.token + 1
        return held


def test_a_server_always_lands_in_the_same_partition_in_every_process():
    assert partition_of("ppdb001") == zlib.crc32(b"ppdb001") % 64 == partition_of("ppdb001")
    assert partition_of("ppdb001", 8) == zlib.crc32(b"ppdb001") % 8


def test_ten_thousand_servers_spread_evenly_over_the_partitions():
    counts = Counter(partition_of(f"srv{i:05d}") for i in range(10_000))
    assert len(counts) == PARTITIONS
    assert max(counts.values()) < 2 * 10_000 / PARTITIONS


def test_a_lone_engine_claims_every_free_partition():
    plan = plan_leases([Lease(p, None, 0, 0.0) for p in range(PARTITIONS)], "a", engines=1, now=100.0)
    assert sorted(plan.claim) == list(range(PARTITIONS))
    assert not plan.renew and not plan.release


def test_a_live_lease_of_another_engine_is_never_claimed():
    leases = [Lease(p, "b", 3, 105.0) for p in range(PARTITIONS)]
    plan = plan_leases(leases, "a", engines=2, now=100.0)
    assert plan.claim == ()


def test_an_expired_lease_is_claimed_and_my_own_lapsed_one_is_renewed_with_its_token():
    leases = [Lease(0, "dead", 4, 99.0), Lease(1, "a", 7, 99.0)]
    plan = plan_leases(leases, "a", engines=1, now=100.0, partitions=2)
    assert plan.claim == (0,)
    assert plan.renew == {1: 7}  # the unchanged token proves nobody held it in between


def test_when_a_second_engine_joins_the_first_gives_back_what_is_above_its_share():
    leases = [Lease(p, "a", 1, 110.0) for p in range(PARTITIONS)]
    plan = plan_leases(leases, "a", engines=2, now=100.0)
    assert len(plan.renew) == fair_share(PARTITIONS, 2) == 32
    assert len(plan.release) == 32 and not set(plan.release) & set(plan.renew)


def test_a_new_token_means_the_partition_is_reloaded():
    ownership = Ownership(tokens={1: 5, 2: 7})
    gained, lost = ownership.changes({1: 5, 2: 8, 3: 1})
    assert gained == {2, 3} and lost == {2}


def test_three_engines_share_every_partition_once_and_a_dead_ones_move_within_the_lease():
    table, now = FakeLeaseTable(), 0.0
    engines = ["a", "b", "c"]
    held: dict[str, dict[int, int]] = {}
    for _ in range(8):  # rounds every ttl/4, as LeaseRenewer runs them
        for engine in engines:
            held[engine] = table.round(engine, now)
        now += TTL_S / 4
    owners = Counter(p for h in held.values() for p in h)
    assert set(owners) == set(range(PARTITIONS)) and set(owners.values()) == {1}
    assert all(20 <= len(h) <= 22 for h in held.values())

    died_at, orphans = now, dict(held.pop("c"))
    moved_at = None
    while moved_at is None:
        now += TTL_S / 4
        for engine in ("a", "b"):
            held[engine] = table.round(engine, now)
        taken = {p for h in held.values() for p in h}
        assert not set(held["a"]) & set(held["b"])  # never two owners
        if set(orphans) <= taken:
            moved_at = now
    assert moved_at - died_at <= TTL_S + TTL_S / 4 + 1e-9
    for engine in ("a", "b"):  # the orphans changed hands: their tokens moved on (c's publishes are refused)
        assert all(token > orphans[p] for p, token in held[engine].items() if p in orphans)
