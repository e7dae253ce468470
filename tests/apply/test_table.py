"""DispatchTable: ranking per key from traces, and the unseen-key lookup."""

from __future__ import annotations

from kernelarena.apply import ApplyConfig, DispatchTable, RoutingPolicy
from kernelarena.schema import Status

from .tiny_dataset import DEFINITION, make_dataset, marking, trace


def table_of(tmp_path, traces, policy=RoutingPolicy(), solutions=("a", "b", "c")):
    dataset = make_dataset(tmp_path / "ds", [marking(s, i) for i, s in enumerate(solutions)], traces)
    return DispatchTable.build(dataset, ApplyConfig(default=policy)).get(DEFINITION)


def test_ranks_fastest_first_by_mean_latency_over_the_keys_workloads(tmp_path):
    table = table_of(tmp_path, [
        trace("a", 4, 1.0, uid="w4a"), trace("a", 4, 3.0, uid="w4b"),  # mean 2.0
        trace("b", 4, 1.5, uid="w4a"), trace("b", 4, 1.5, uid="w4b"),  # mean 1.5
    ])
    assert [c.solution for c in table.ranked[(4,)]] == ["b", "a"]
    assert table.ranked[(4,)][1].latency_ms == 2.0 and table.ranked[(4,)][1].workloads == 2
    assert table.lookup((4,)).how == "exact"


def test_a_failure_at_a_key_disqualifies_there_only(tmp_path):
    table = table_of(tmp_path, [
        trace("a", 4, 0.1, uid="w4a"), trace("a", 4, 0.1, uid="w4b", status=Status.INCORRECT_NUMERICAL),
        trace("a", 8, 0.1), trace("b", 4, 0.5, uid="w4a"),
    ])
    assert [c.solution for c in table.ranked[(4,)]] == ["b"]
    assert [c.solution for c in table.ranked[(8,)]] == ["a"]


def test_only_the_newest_trace_of_a_solution_and_workload_counts(tmp_path):
    table = table_of(tmp_path, [
        trace("a", 4, 0.1, status=Status.RUNTIME_ERROR, timestamp="2026-11-23T00:00:00Z"),
        trace("a", 4, 0.2, timestamp="2026-11-24T00:00:00Z"),
        trace("b", 4, 0.1, timestamp="2026-11-23T00:00:00Z"),
        trace("b", 4, 0.1, status=Status.TIMEOUT, timestamp="2026-11-24T00:00:00Z"),
    ])
    assert [c.solution for c in table.ranked[(4,)]] == ["a"]


def test_error_limits_reject_traces_beyond_them(tmp_path):
    traces = [trace("a", 4, 0.1, abs_error=0.3), trace("b", 4, 0.2, abs_error=0.01)]
    assert table_of(tmp_path, traces, RoutingPolicy(max_abs_error=0.1)).lookup((4,)).candidates == ("b",)


def test_nearest_key_compares_ratios_and_prefers_the_larger_on_a_tie(tmp_path):
    table = table_of(tmp_path, [trace("a", 1, 0.1), trace("b", 64, 0.1), trace("c", 4, 0.1)],
                     RoutingPolicy(unseen="nearest"))
    assert table.nearest_key((2,)) == (1,)  # |log2 3 - log2 2| < |log2 5 - log2 3|
    assert table.nearest_key((40,)) == (64,)
    assert table.nearest_key((3,)) == (4,)
    assert table.lookup((40,)).candidates == ("b",) and table.lookup((40,)).how.startswith("nearest")


def test_rows_for_printing(tmp_path):
    rows = DispatchTable.build(make_dataset(tmp_path / "ds", [marking("a", 1)], [trace("a", 4, 0.5)])).rows()
    assert rows == [{"definition": DEFINITION, "key": "rows=4", "solution": "a", "latency_ms": 0.5,
                     "speedup": 2.0, "candidates": 1, "unseen": "fallback"}]


def test_only_traces_of_this_machines_hardware_count_unless_another_is_chosen(tmp_path):
    from kernelarena.apply.config import ANY_HARDWARE
    from kernelarena.bench.environment import local_hardware

    gpu = "NVIDIA H100 80GB HBM3"
    dataset = make_dataset(tmp_path / "ds", [marking(s, i) for i, s in enumerate("abc")], [
        trace("a", 4, 0.1, hardware=gpu), trace("b", 4, 5.0), trace("c", 8, 0.1, hardware=gpu)])
    here = DispatchTable.build(dataset, ApplyConfig())
    assert here.hardware == local_hardware()
    assert {k: [c.solution for c in v] for k, v in here.get(DEFINITION).ranked.items()} == {(4,): ["b"]}
    there = DispatchTable.build(dataset, ApplyConfig(hardware=gpu)).get(DEFINITION)
    assert {k: [c.solution for c in v] for k, v in there.ranked.items()} == {(4,): ["a"], (8,): ["c"]}
    every = DispatchTable.build(dataset, ApplyConfig(hardware=ANY_HARDWARE)).get(DEFINITION)
    assert [c.solution for c in every.ranked[(4,)]] == ["a", "b"]
