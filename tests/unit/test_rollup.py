"""The rollup: hand-made counters and gauges with known answers, resets, missing fields, step closing."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from argus.domain.rollup import Observation as O  # noqa: N817 - the tables below read better short
from argus.domain.rollup import (
    RollupPolicy,
    is_real_filesystem,
    is_real_interface,
    missing_required,
    parse_disk_mountpoints,
    roll_up,
    step_end_s,
)

END = 1_800_000_000  # a step end (a multiple of 300)
POLICY = RollupPolicy(step_s=300)
MS = 1000


def at(seconds_before_end: float) -> int:
    return int((END - seconds_before_end) * MS)


def host(*extra: O, server: str = "web1") -> list[O]:
    """A host whose step is complete: gauges at the end, counters at the step's start and end."""
    base = [
        O(server, "mem_total_bytes", "", at(10), 16e9), O(server, "mem_available_bytes", "", at(10), 4e9),
        O(server, "swap_total_bytes", "", at(10), 2e9), O(server, "swap_free_bytes", "", at(10), 1.5e9),
        O(server, "fs_size_bytes", "/", at(10), 100e9), O(server, "fs_avail_bytes", "/", at(10), 60e9),
        O(server, "fs_size_bytes", "/data", at(10), 1000e9), O(server, "fs_avail_bytes", "/data", at(10), 100e9),
        O(server, "load1", "", at(100), 3.0), O(server, "load1", "", at(10), 2.5),
        O(server, "boot_time_s", "", at(10), END - 3.5 * 86400),
    ]
    for cpu in ("0", "1"):  # 300 s per CPU: user 90, system 30, iowait 15, idle 150, steal 15
        for mode, seconds in (("user", 90), ("system", 30), ("iowait", 15), ("idle", 150), ("steal", 15)):
            base += [O(server, f"cpu.{mode}", cpu, at(300), 1000.0), O(server, f"cpu.{mode}", cpu, at(0), 1000.0 + seconds)]
    return base + list(extra)


def field(record, name: str) -> float:
    return record.value(name)


def test_cpu_modes_become_shares_of_all_cpu_time_summed_over_cpus():
    record = roll_up("web1", END, host(), POLICY)
    assert field(record, "cpu_user_pct") == pytest.approx(30.0)
    assert field(record, "cpu_sys_pct") == pytest.approx(10.0)
    assert field(record, "cpu_iowait_pct") == pytest.approx(5.0)
    assert field(record, "cpu_idle_pct") == pytest.approx(50.0)  # steal (5 %) counts in the total only


def test_gauges_memory_swap_disk_load_and_uptime():
    record = roll_up("web1", END, host(), POLICY)
    assert field(record, "mem_used_pct") == pytest.approx(75.0)
    assert field(record, "swap_used_pct") == pytest.approx(25.0)
    assert field(record, "disk_usage_pct") == pytest.approx(90.0)  # the fullest real filesystem: /data
    assert field(record, "load_average") == 2.5  # the step's last value
    assert field(record, "uptime_days") == 3.0
    assert record.epoch_s == END and record.server_name == "web1"


def test_a_chosen_mountpoint_is_the_disk_and_a_missing_one_leaves_the_disk_missing():
    chosen = RollupPolicy(step_s=300, disk_mountpoints=(("web*", "/"), ("db1", "/srv")))
    assert field(roll_up("web1", END, host(), chosen), "disk_usage_pct") == pytest.approx(40.0)
    record = roll_up("db1", END, host(server="db1"), chosen)
    assert math.isnan(field(record, "disk_usage_pct"))
    assert missing_required(record) == ["disk_usage_pct"]


def test_fields_no_signal_gives_are_missing_never_invented():
    record = roll_up("web1", END, host(), POLICY)
    for name in ("java_cpu_pct", "back_close_wait", "front_close_wait", "net_in_mb_s", "net_out_mb_s"):
        assert math.isnan(field(record, name)), name
    assert missing_required(record) == []
    with_tcpstat = roll_up("web1", END, host(O("web1", "tcp_connections", "close_wait", at(5), 7.0),
                                             O("web1", "tcp_connections", "listen", at(5), 12.0)), POLICY)
    assert field(with_tcpstat, "back_close_wait") == 7.0 and math.isnan(field(with_tcpstat, "front_close_wait"))


def test_a_source_counting_only_close_wait_sockets_gives_them_directly():
    record = roll_up("web1", END, host(O("web1", "close_wait_back", "", at(5), 4.0)), POLICY)
    assert field(record, "back_close_wait") == 4.0


def test_close_wait_is_zero_when_other_tcp_states_were_counted_without_it():
    # node_exporter's tcpstat sends only states that hold sockets: an absent close_wait is 0 at that time.
    record = roll_up("web1", END, host(O("web1", "tcp_connections", "close_wait", at(60), 3.0),
                                       O("web1", "tcp_connections", "listen", at(60), 12.0),
                                       O("web1", "tcp_connections", "established", at(5), 40.0),
                                       O("web1", "tcp_connections", "listen", at(5), 12.0)), POLICY)
    assert field(record, "back_close_wait") == 0.0


def test_network_counters_become_mb_per_second_summed_over_interfaces():
    record = roll_up("web1", END, host(
        O("web1", "net_rx_bytes", "eth0", at(300), 1e9), O("web1", "net_rx_bytes", "eth0", at(0), 1e9 + 300e6),
        O("web1", "net_rx_bytes", "eth1", at(300), 0.0), O("web1", "net_rx_bytes", "eth1", at(0), 150e6),
        O("web1", "net_tx_bytes", "eth0", at(150), 5e6), O("web1", "net_tx_bytes", "eth0", at(0), 5e6 + 150e6),
    ), POLICY)
    assert field(record, "net_in_mb_s") == pytest.approx(1.5)  # 1.0 + 0.5 MB/s
    assert field(record, "net_out_mb_s") == pytest.approx(1.0)


def test_a_counter_reset_counts_from_zero_and_never_goes_negative():
    # 1000 -> 3000 (+2000), reset -> 500 (+500), -> 1500 (+1000): 3500 bytes in 300 s.
    points = [(300, 1000.0), (200, 3000.0), (100, 500.0), (0, 1500.0)]
    record = roll_up("web1", END, host(*(O("web1", "net_rx_bytes", "eth0", at(s), v) for s, v in points)), POLICY)
    assert field(record, "net_in_mb_s") == pytest.approx(3500 / 300 / 1e6)


def test_the_previous_steps_last_value_is_the_baseline():
    # Samples every 60 s: the one 30 s before the step began makes the increase span the whole step.
    points = [(600, 0.0), (330, 27e6), (240, 36e6), (0, 60e6)]  # 100 kB/s throughout
    record = roll_up("web1", END, host(*(O("web1", "net_rx_bytes", "eth0", at(s), v) for s, v in points)), POLICY)
    assert field(record, "net_in_mb_s") == pytest.approx(0.1)


def test_a_cpu_counter_stepping_back_is_not_counted_as_a_restart():
    # Linux's iowait counter may step back a little; read as a reset it would add its whole value.
    extra = [O("web1", "cpu.iowait", "0", at(150), 5_000_000.0), O("web1", "cpu.iowait", "0", at(0), 4_999_990.0)]
    observations = [o for o in host() if not (o.signal == "cpu.iowait" and o.series == "0")] + extra
    record = roll_up("web1", END, observations, POLICY)
    assert 0.0 <= field(record, "cpu_iowait_pct") <= 100.0
    total = field(record, "cpu_user_pct") + field(record, "cpu_sys_pct") + field(record, "cpu_idle_pct")
    assert total + field(record, "cpu_iowait_pct") <= 100.0 + 1e-9


def test_no_swap_is_zero_percent_used():
    observations = [o for o in host() if o.signal != "swap_free_bytes"]
    observations = [O(o.server, o.signal, o.series, o.ts_ms, 0.0) if o.signal == "swap_total_bytes" else o
                    for o in observations]
    assert field(roll_up("web1", END, observations, POLICY), "swap_used_pct") == 0.0


def test_a_step_without_observations_is_no_record_and_later_ones_are_ignored():
    previous_step_only = [O("web1", "load1", "", at(400), 1.0)]
    assert roll_up("web1", END, previous_step_only, POLICY) is None
    later = roll_up("web1", END, host(O("web1", "load1", "", at(-10), 99.0)), POLICY)
    assert field(later, "load_average") == 2.5


def test_a_gauge_only_in_the_previous_step_is_missing_here():
    observations = [o for o in host() if o.signal != "load1"] + [O("web1", "load1", "", at(301), 4.0)]
    record = roll_up("web1", END, observations, POLICY)
    assert math.isnan(field(record, "load_average")) and missing_required(record) == ["load_average"]


def test_values_are_clipped_into_the_field_table():
    record = roll_up("web1", END, host(O("web1", "boot_time_s", "", at(5), END - 900 * 86400)), POLICY)
    assert field(record, "uptime_days") == 365.0


def test_steps_are_half_open_and_end_aligned():
    assert step_end_s(END * MS, 300) == END
    assert step_end_s(END * MS + 1, 300) == END + 300
    assert step_end_s((END - 300) * MS + 1, 300) == END


def test_a_step_closes_after_the_grace_or_when_the_server_went_quiet():
    closed = END - 300
    assert POLICY.grace_s == 60
    assert POLICY.closable_through(closed, (END + 59) * MS, quiet_for_s=1) == closed
    assert POLICY.closable_through(closed, (END + 60) * MS, quiet_for_s=1) == END
    assert POLICY.closable_through(closed, (END + 10) * MS, quiet_for_s=300) == END + 300
    assert POLICY.closable_through(END + 600, END * MS, quiet_for_s=1000) == END + 600  # never goes back


def test_real_filesystems_and_interfaces():
    assert is_real_filesystem("ext4", "/") and is_real_filesystem("xfs", "/data")
    assert not is_real_filesystem("tmpfs", "/run") and not is_real_filesystem("overlay", "/")
    assert not is_real_filesystem("squashfs", "/snap/core/1") and not is_real_filesystem("ext4", "/var/lib/docker/x")
    assert is_real_interface("eth0") and is_real_interface("ens5") and is_real_interface("bond0")
    assert not any(map(is_real_interface, ("lo", "veth12ab", "docker0", "br-1f2e", "cni0", "flannel.1", "ifb0")))


def test_disk_mountpoint_settings_parse_or_fail():
    assert parse_disk_mountpoints(" db*=/data, web1=/srv ") == (("db*", "/data"), ("web1", "/srv"))
    assert parse_disk_mountpoints("") == ()
    for bad in ("db1", "db1=data", "=/data"):
        with pytest.raises(ValueError):
            parse_disk_mountpoints(bad)


@given(st.lists(st.tuples(st.sampled_from(["user", "nice", "system", "iowait", "idle", "irq", "softirq", "steal"]),
                          st.sampled_from(["0", "1", "2"]), st.floats(0, 1e7), st.floats(0, 1e7)), min_size=1))
def test_cpu_shares_stay_within_0_and_100_whatever_the_counters_do(counters):
    observations = [o for c in counters for o in (O("h", f"cpu.{c[0]}", c[1], at(300), c[2]),
                                                  O("h", f"cpu.{c[0]}", c[1], at(0), c[3]))]
    record = roll_up("h", END, observations, POLICY)
    shares = [field(record, f) for f in ("cpu_user_pct", "cpu_sys_pct", "cpu_iowait_pct", "cpu_idle_pct")]
    if not any(math.isnan(s) for s in shares):
        assert all(0.0 <= s <= 100.0 for s in shares)
        assert sum(shares) <= 100.0 + 1e-6
