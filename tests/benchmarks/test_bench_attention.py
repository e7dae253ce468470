"""benchmarks/bench_attention.py --prefill-sweep (issue #18): the grid the issue asks for, flop counts with and
without a mask and over ragged K/V, and the sweep's rows from a tiny run on the CPU (Triton's interpreter)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks import bench_attention as bench

ROOT = Path(__file__).resolve().parents[2]


def test_the_sweep_covers_1_to_16_requests_512_to_8192_queries_and_kv_to_16384():
    assert {b for b, _, _ in bench.PREFILL_SWEEP} == {1, 4, 16}
    assert {q for _, q, _ in bench.PREFILL_SWEEP} == {512, 2048, 8192}
    assert max(kv for _, _, kv in bench.PREFILL_SWEEP) == 16384
    assert all(kv >= q for _, q, kv in bench.PREFILL_SWEEP)
    assert (16, 8192, 16384) in bench.PREFILL_SWEEP and (1, 512, 512) in bench.PREFILL_SWEEP


def test_flops_count_the_pairs_each_mask_keeps():
    cache = torch.zeros(64, 2, bench.PAGE, bench.HKV, bench.D, dtype=torch.bfloat16)
    per_pair = 4.0 * bench.D * bench.HQ
    square = bench.Problem(cache, 2, 3, 3, seed=0)  # causal, 3 queries over 3 keys: 1 + 2 + 3 pairs per request
    assert square.causal_flops() == per_pair * 6 * 2
    tail = bench.Problem(cache, 1, 2, 5, seed=0)  # queries aligned to the end: 4 + 5 pairs
    assert tail.causal_flops() == per_pair * 9
    assert bench.Problem(cache, 2, 3, 5, seed=0, causal=False).causal_flops() == per_pair * 15 * 2
    ragged = bench.RaggedProblem((2, 1), (5, 3), "cpu", seed=0)  # (4 + 5) + 3 pairs
    assert ragged.causal_flops() == per_pair * 12
    assert (ragged.batch, ragged.qo_len, ragged.kv_len) == (2, 3, 8)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU smoke run; on a GPU the script itself is the run")
def test_a_quick_sweep_on_the_cpu_prints_the_causal_unmasked_and_ragged_rows():
    env = dict(os.environ, TRITON_INTERPRET="1")
    env.pop("OUT", None)
    result = subprocess.run([sys.executable, "-m", "benchmarks.bench_attention", "--device", "cpu", "--quick",
                             "--prefill-sweep"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| prefill")]
    kinds = [line.split("|")[1].strip() for line in rows]
    assert kinds.count("prefill") >= 4 and "prefill (no mask)" in kinds and "prefill (ragged)" in kinds
    assert any("3 ragged, 32 in all" in line for line in rows)


def test_the_prefill_tables_carry_the_tilelang_column_where_it_ran():
    row = {"kind": "prefill", "batch": 4, "qo_len": 1024, "kv_len": 4096, "flops": 1e12, "ours_us": 600.0,
           "ours_plan_us": 20.0, "fi_us": 450.0, "fi_backend": "fa3", "fi_plan_us": 200.0, "err_vs_fi": 1e-3}
    plain = bench.table_rows([row])[0]
    assert plain["TileLang us"] == "-" and plain["TileLang / FI"] == "-"
    assert bench.table_lines([row], 4.0)[-1].rstrip().endswith("| - | - |")
    timed = {**row, "tl_us": 500.0, "tl_plan_us": 21.0, "err_tl_vs_ours": 2e-3}
    cells = bench.table_rows([timed])[0]
    assert cells["TileLang us"] == 500.0 and cells["TileLang / FI"] == "0.90x"
    assert bench.table_lines([timed], 4.0)[-1].rstrip().endswith("| 500.0 (0.90x, 2.0e-03) | - |")
    # Back to back (short calls): the TileLang path's host time per call beside the time until the GPU is done.
    paid = {**timed, "tl_b2b_host_us": 14.5, "tl_b2b_us": 501.2}
    assert bench.table_lines([paid], 4.0)[-1].rstrip().endswith("| 500.0 (0.90x, 2.0e-03) | 14.5 / 501.2 |")
    assert set(bench.PREFILL_COLUMNS) - set(bench.COLUMNS) == {"TileLang us", "TileLang / FI"}
    # Only where it can run: a CUDA device with TileLang importable.
    assert bench.tilelang_prefill_config(torch.device("cpu")) is None
    assert bench.TILELANG_PREFILL.language == "tilelang" and not bench.TILELANG_PREFILL.pack_gqa


def test_measure_in_turn_times_every_implementation_and_leaves_out_only_a_backend_allowed_to_fail():
    calls = []

    def make(name, fail=False):
        def setup():
            if fail:
                raise RuntimeError(f"{name}: module not built")
            return (lambda: calls.append(("plan", name)), lambda: calls.append(("run", name)), name)
        return setup

    timed = bench.measure_in_turn({"ours": make("ours"), "fa2": make("fa2", fail=True), "fa3": make("fa3")},
                                  quick=True, plan_reps=2, may_fail=("fa2", "fa3"))
    assert sorted(timed) == ["fa3", "ours"]  # the backend that could not be set up is reported and left out
    assert all(us >= 0 and plan_us >= 0 for us, plan_us, _ in timed.values())
    assert {name: out for name, (_, _, out) in timed.items()} == {"ours": "ours", "fa3": "fa3"}
    assert ("run", "ours") in calls and ("run", "fa3") in calls and ("plan", "fa3") in calls
    with pytest.raises(RuntimeError, match="ours: module not built"):  # ours failing is never skipped
        bench.measure_in_turn({"ours": make("ours", fail=True)}, quick=True, plan_reps=1, may_fail=("fa2", "fa3"))
