"""`argus bench make`: seeded incidents on a background series, labelled the way Argus reads breaches."""

from __future__ import annotations

import gzip
import json
from datetime import datetime

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from argus.adapters.bench import (
    KINDS,
    Records,
    iso,
    make_bench,
    parse_records,
    read_records,
    risk_values,
    write_bench,
)
from argus.adapters.tft.data import load_series
from argus.adapters.tft.incidents import records_between
from argus.domain.backtest import incidents_from_labels, incidents_in_records, negatives_from_labels
from argus.domain.metrics import FIELD_INDEX, INTEGER_FIELDS, METRIC_FIELDS
from argus.domain.profiles import ProfileResolver
from argus.domain.risk import LIMIT_OF, values_from_row
from argus.entrypoints.cli import cli

T0 = 1_735_689_600  # 2025-01-01T00:00Z
NAMES = [f"{prefix}{i:03d}" for i in range(1, 7) for prefix in ("ppdb", "ppweb", "ppml", "srv-", "ppetl")]


def background(servers: int, days: int, seed: int = 0) -> Records:
    """A daily CPU cycle, slowly moving memory, disk at 50; one pegged-CPU stretch and one offline stretch."""
    rng = np.random.default_rng(seed)
    steps = np.arange(days * 288)
    names = sorted(NAMES[:servers])
    values = np.zeros((servers, len(steps), len(METRIC_FIELDS)))
    status = np.full((servers, len(steps)), "healthy", dtype=object)
    for k in range(servers):
        busy = np.clip(25 + 15 * np.sin(2 * np.pi * steps / 288 + k) + rng.normal(0, 3, len(steps)), 0, 100).round(2)
        busy[5 * 288 : 5 * 288 + 36] = 100.0 if k == 0 else busy[5 * 288 : 5 * 288 + 36]  # a background breach
        mem = np.clip(40 + 12 * np.sin(2 * np.pi * steps / 2016 + k) + rng.normal(0, 1, len(steps)), 0, 100)
        columns = {"cpu_user_pct": busy, "cpu_idle_pct": (100 - busy).round(2), "mem_used_pct": mem.round(2),
                   "disk_usage_pct": 50.0, "net_in_mb_s": 0.05, "net_out_mb_s": 0.02,
                   "load_average": (4 * busy / 100).round(2), "uptime_days": steps // 288}
        for field, column in columns.items():
            values[k, :, FIELD_INDEX[field]] = column
    status[min(1, servers - 1), 6 * 288 : 6 * 288 + 72] = "offline"
    ts = np.broadcast_to(T0 + 300 * steps, (servers, len(steps)))
    server = np.broadcast_to(np.arange(servers, dtype=np.int32)[:, None], (servers, len(steps)))
    order = np.lexsort((server.ravel(), ts.ravel()))  # a file's order: time, then server
    return Records([b""] * len(order), tuple(names), server.ravel()[order], ts.ravel()[order],
                   values.reshape(-1, len(METRIC_FIELDS))[order], status.ravel()[order])


def lines(records: Records) -> bytes:
    """The records as a JSON Lines file in the Argus schema."""
    out = []
    for i in range(len(records.ts)):
        rec = {"timestamp": iso(records.ts[i]), "server_name": records.names[records.server[i]],
               "status": records.status[i]}
        for field, value in zip(METRIC_FIELDS, records.values[i].tolist(), strict=True):
            rec[field] = int(value) if field in INTEGER_FIELDS else value
        out.append(orjson.dumps(rec) + b"\n")
    return b"".join(out)


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("bg") / "bg.jsonl.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(lines(background(servers=5, days=10)))
    return path


@pytest.fixture(scope="module")
def small_bench(small_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    records = read_records(small_file)
    write_bench(out, records, make_bench(records, seed=3, per_server=6), source=small_file.name, seed=3)
    return out


def _argus_records(path):
    """The output as Argus's evaluation reads it (float32 rows, statuses by code)."""
    series = load_series(path)
    return records_between(series, 0, 2**62)


def _labels(out):
    return json.loads((out / "labels.json").read_text())


def test_the_same_seed_gives_identical_files_and_another_seed_different_ones(small_file, tmp_path):
    runs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        records = read_records(small_file)
        write_bench(tmp_path / name, records, make_bench(records, seed=seed, per_server=6), small_file.name, seed)
        runs[name] = [(tmp_path / name / f).read_bytes() for f in ("records.jsonl.gz", "labels.json")]
    assert runs["a"] == runs["b"]
    assert runs["a"][0] != runs["c"][0] and runs["a"][1] != runs["c"][1]


def test_every_run_over_a_limit_in_the_output_is_exactly_one_labelled_window(small_bench):
    records = _argus_records(small_bench / "records.jsonl.gz")
    breaches = {(i.server_name, i.start, i.end) for i in incidents_in_records(records, ProfileResolver())}
    labelled = {(i.server_name, i.start, i.end) for i in incidents_from_labels(_labels(small_bench))}
    assert breaches == labelled
    kinds = {w["kind"] for w in _labels(small_bench)["windows"]}
    assert "background_breach" in kinds and len(kinds) > 2


def test_incidents_are_below_the_limit_from_onset_to_start_and_over_it_from_start_to_end(small_bench):
    records = _argus_records(small_bench / "records.jsonl.gz")
    by_key = {(r.server_name, r.epoch_s): r for r in records}
    profiles = ProfileResolver()
    for window in _labels(small_bench)["windows"]:
        limit = getattr(profiles.profile_for(window["server_name"]).limits, LIMIT_OF[window["metric"]])
        assert limit == window["limit"]
        onset, start, end = (_epoch(window[k]) for k in ("onset", "start", "end"))
        value = {t: values_from_row(by_key[window["server_name"], t].values)[window["metric"]]
                 for t in range(onset, end + 301, 300) if (window["server_name"], t) in by_key}
        assert all(value[t] < limit for t in range(onset, start, 300))
        assert all(value[t] >= limit for t in range(start, end + 1, 300))
        if window["class"] != "background":
            assert onset < start and value[end + 300] < limit


def test_negatives_never_reach_a_limit(small_bench):
    records = _argus_records(small_bench / "records.jsonl.gz")
    by_key = {(r.server_name, r.epoch_s): r for r in records}
    limits = {name: profile_limits(name) for name in NAMES}
    negatives = _labels(small_bench)["negatives"]
    assert negatives
    for negative in negatives:
        for t in range(_epoch(negative["start"]), _epoch(negative["end"]) + 1, 300):
            record = by_key[negative["server_name"], t]
            if record.status == "maintenance":
                assert negative["kind"] == "maintenance" and 100 - record.value("cpu_idle_pct") == 100
                continue
            now = values_from_row(record.values)
            assert all(now[m] < limit for m, limit in limits[negative["server_name"]].items())


def test_the_output_keeps_the_schema_and_changes_only_injected_fields_consistently(small_file, small_bench):
    with gzip.open(small_file, "rb") as fh:
        before = {(r["server_name"], r["timestamp"]): r for r in map(orjson.loads, fh)}
    with gzip.open(small_bench / "records.jsonl.gz", "rb") as fh:
        after = [orjson.loads(line) for line in fh]
    assert len(after) == len(before)
    assert after == sorted(after, key=lambda r: (r["timestamp"], r["server_name"]))
    changed = 0
    for rec in after:
        old = before[rec["server_name"], rec["timestamp"]]
        assert list(rec) == list(old)
        if rec != old:
            changed += 1
            assert rec["cpu_idle_pct"] == pytest.approx(100 - rec["cpu_user_pct"] - rec["cpu_sys_pct"]
                                                        - rec["cpu_iowait_pct"], abs=0.011)
            assert all(0 <= rec[f] <= 100 for f in METRIC_FIELDS if f.endswith("_pct"))
            assert rec["uptime_days"] == old["uptime_days"] and rec["net_in_mb_s"] == old["net_in_mb_s"]
    assert changed > 0


def test_labels_name_the_source_seed_and_mix_and_parse_as_incidents(small_bench):
    labels = _labels(small_bench)
    assert (labels["source"], labels["seed"], labels["generator"]) == ("bg.jsonl.gz", 3, "argus bench make")
    assert len(incidents_from_labels(labels)) == len(labels["windows"])
    assert len(negatives_from_labels(labels)) == len(labels["negatives"])
    window = next(w for w in labels["windows"] if w["class"] != "background")
    assert set(window) == {"server_name", "start", "end", "metrics_involved", "kind", "class", "metric", "limit",
                           "onset"}
    assert set(labels["negatives"][0]) == {"server_name", "start", "end", "kind", "metrics_involved"}
    counted = [w["kind"] for w in labels["windows"]] + [n["kind"] for n in labels["negatives"]]
    assert labels["mix"] == {kind: counted.count(kind) for kind in labels["mix"]}


def test_thirty_servers_for_three_weeks_give_over_300_incidents_of_every_kind():
    records = background(servers=30, days=21, seed=1)
    bench = make_bench(records, seed=0)
    incidents = [w for w in bench.windows if w["class"] != "background"]
    assert len(incidents) >= 300
    assert {kind.name for kind in KINDS} <= set(bench.mix) and all(bench.mix[k.name] > 0 for k in KINDS)
    gradual = sum(w["class"] == "gradual" for w in incidents) / len(incidents)
    assert 0.6 <= gradual <= 0.85
    assert 0.25 <= len(bench.negatives) / len(incidents) <= 0.55
    first_onset = min(_epoch(w["onset"]) for w in incidents)
    assert first_onset >= T0 + 2 * 86_400


def test_events_on_a_server_are_apart_by_eight_hours_of_background():
    records = background(servers=4, days=12, seed=2)
    bench = make_bench(records, seed=5)
    spans = {}
    for item in [w for w in bench.windows if w["class"] != "background"] + bench.negatives:
        spans.setdefault(item["server_name"], []).append((_epoch(item.get("onset", item["start"])), _epoch(item["end"])))
    for server_spans in spans.values():
        server_spans.sort()
        assert all(b[0] - a[1] > 8 * 3600 for a, b in zip(server_spans, server_spans[1:], strict=False))


def test_risk_values_match_values_from_row():
    rows = np.random.default_rng(0).uniform(0, 100, (50, len(METRIC_FIELDS))).round(2)
    vectorised = risk_values(rows)
    for i, row in enumerate(rows.astype(np.float32)):
        expected = values_from_row(row)
        assert {m: float(v[i]) for m, v in vectorised.items()} == expected


def test_a_line_without_the_schema_is_refused_with_its_number():
    with pytest.raises(ValueError, match="line 2"):
        parse_records([lines(background(1, 1)).split(b"\n")[0], b'{"timestamp": "2025-01-01T00:00:00Z"}'])


def test_the_cli_writes_the_bench_and_prints_a_summary(small_file, tmp_path):
    result = CliRunner().invoke(cli, ["bench", "make", "--data", str(small_file), "--out", str(tmp_path / "b"),
                                      "--seed", "3", "--servers", "3", "--days", "8", "--per-server", "4"])
    assert result.exit_code == 0, result.output
    assert "3 servers, 8.0 days" in result.output and "incidents" in result.output
    labels = _labels(tmp_path / "b")
    assert {w["server_name"] for w in labels["windows"]} <= set(sorted(NAMES[:5])[:3])
    assert labels["seed"] == 3


def profile_limits(name: str) -> dict[str, float]:
    limits = ProfileResolver().profile_for(name).limits
    return {m: getattr(limits, a) for m, a in LIMIT_OF.items() if getattr(limits, a) is not None}


def _epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())

