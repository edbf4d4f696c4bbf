"""The demo's fleet simulator: deterministic, valid records, scenarios crossing their limits on time."""

from __future__ import annotations

from argus.adapters.demo.fleet import WAVE, FleetSimulator, fleet_names
from argus.adapters.http.schemas import parse_feed

METRIC_OF = {"mem_pct": "mem_used_pct", "disk_pct": "disk_usage_pct", "swap_pct": "swap_used_pct"}


def _value(record: dict, metric: str) -> float:
    return 100.0 - record["cpu_idle_pct"] if metric == "cpu_pct" else record[METRIC_OF[metric]]


def _record_of(sim: FleetSimulator, step: int, server: str) -> dict:
    return next(r for r in sim.records(step) if r["server_name"] == server)


def test_the_fleet_follows_the_reference_naming_and_size():
    names = fleet_names(45)
    assert len(names) == 45 and len(set(names)) == 45
    assert {"ppdb001", "ppml0001", "ppweb001", "ppapi001", "ppcon001", "ppetl001", "pprisk001"} <= set(names)
    assert len(fleet_names(7)) == 7


def test_the_same_seed_gives_the_same_records_in_any_order():
    a, b = FleetSimulator(45, seed=3), FleetSimulator(45, seed=3)
    later = b.records(100)
    assert a.records(5) == b.records(5) and a.records(100) == later
    assert FleetSimulator(45, seed=4).records(5) != a.records(5)


def test_every_record_is_valid_for_the_api():
    sim = FleetSimulator(45)
    records = [r for step in sim.steps(0, 300) for r in step]
    assert len(parse_feed({"records": records}, len(records))) == 45 * 300


def test_a_calm_server_stays_under_its_limits_all_day():
    sim = FleetSimulator(45)
    involved = {s.server_name for s in sim.scenarios}
    calm = next(n for n in sim.names if n not in involved)
    assert all(_record_of(sim, step, calm)["status"] != "critical_issue" for step in range(0, 288, 6))


def test_each_scenario_of_the_first_wave_crosses_its_limit_at_its_step():
    sim = FleetSimulator(45, live_step=72)
    first_wave = sim.scenarios[: len(WAVE)]
    assert {s.kind for s in first_wave} == {"memory_leak", "cpu_runaway", "disk_filling", "swap_storm"}
    for scenario in first_wave:
        limit = getattr(sim.limits[scenario.server_name], scenario.metric)
        before = _value(_record_of(sim, scenario.cross - 2, scenario.server_name), scenario.metric)
        at = _value(_record_of(sim, scenario.cross, scenario.server_name), scenario.metric)
        after = _value(_record_of(sim, scenario.end, scenario.server_name), scenario.metric)
        assert before < limit <= at, scenario
        assert after < limit, scenario  # recovered (restart, clean-up)
        assert 72 < scenario.cross <= 72 + 60  # within 60 steps of going live: 5 minutes at --speed 60
