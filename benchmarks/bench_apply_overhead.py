"""Per-call cost of apply() dispatch on this CPU, beside calling the solution directly and beside
FlashInfer-Bench 0.1.2's apply, on the same definition and dataset.

    python3 -m benchmarks.bench_apply_overhead [--rounds 300] [--batch 200] [--out benchmarks/results]

The sweep: one tiny definition (y = x + w on float32 rows of 64) with one python solution, a PASSED trace
at rows=4, so both dispatchers route a (4, 64) call to the same function. The kernel is a single small
torch op, so its cost is small and stable and the difference between rows is the dispatch. Variants are
timed round-robin (one batch of calls each per round, so drift hits all alike); a row's figure is the
median over rounds of the mean call time in a batch. Overhead = row minus "solution called directly".
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import torch

from benchmarks.common import add_out_argument, markdown_table, publish, stamp
from kernelarena.bench.environment import local_hardware
from kernelarena.schema import (
    Correctness,
    Definition,
    Environment,
    Evaluation,
    Performance,
    Solution,
    Trace,
    Workload,
)
from kernelarena.store import TraceSet

DEFINITION = "bench_add_h64"
SOURCE = "import torch\n\n\ndef run(x, w):\n    return torch.add(x, w)\n"


def write_dataset(root: Path) -> None:
    """The benchmark dataset: definition, solution, one workload and its PASSED trace."""
    dataset = TraceSet(root)
    dataset.add_definition(Definition.model_validate({
        "name": DEFINITION, "op_type": "bench",
        "axes": {"rows": {"type": "var"}, "hidden": {"type": "const", "value": 64}},
        "inputs": {"x": {"shape": ["rows", "hidden"], "dtype": "float32"},
                   "w": {"shape": ["hidden"], "dtype": "float32"}},
        "outputs": {"y": {"shape": ["rows", "hidden"], "dtype": "float32"}},
        "reference": SOURCE}))
    dataset.add_solution(Solution.model_validate({
        "name": "bench_add_python", "definition": DEFINITION, "author": "bench",
        "spec": {"language": "python", "target_hardware": ["cpu", "cuda"], "entry_point": "main.py::run",
                 "destination_passing_style": False},
        "sources": [{"path": "main.py", "content": SOURCE}]}))
    workload = Workload(uuid="bench-rows-4", axes={"rows": 4}, inputs={"x": {"type": "random"},
                                                                      "w": {"type": "random"}})
    dataset.add_workloads([Trace(definition=DEFINITION, workload=workload)])
    dataset.add_traces([Trace(
        definition=DEFINITION, workload=workload, solution="bench_add_python",
        evaluation=Evaluation(status="PASSED", environment=Environment(hardware=local_hardware()),
                              timestamp="2026-01-01T00:00:00",
                              correctness=Correctness(),
                              performance=Performance(latency_ms=0.002, reference_latency_ms=0.002,
                                                      speedup_factor=1.0)))])


def time_per_call(fn, args, batch: int) -> float:
    """Mean seconds per call over one batch of ``batch`` calls."""
    start = time.perf_counter_ns()
    for _ in range(batch):
        fn(*args)
    return (time.perf_counter_ns() - start) / batch / 1e9


def measure(variants: dict, args, rounds: int, batch: int) -> dict:
    for fn in variants.values():  # warm every path: first-seen keys, builds, caches
        for _ in range(100):
            fn(*args)
    samples = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            samples[name].append(time_per_call(fn, args, batch))
    return {name: median(values) * 1e6 for name, values in samples.items()}


def kernelarena_variants(root: Path, args) -> dict:
    import kernelarena
    from kernelarena.build import build_solution
    from kernelarena.tracing import FirstN, disable_tracing, enable_tracing

    dataset = TraceSet.load(root)
    entry = build_solution(dataset.solutions["bench_add_python"], device="cpu").entry

    @kernelarena.apply(DEFINITION)
    def routed(x, w):
        return x + w  # the fallback; never run while the table routes rows=4

    @kernelarena.apply(DEFINITION)
    def unrouted(x, w):
        return torch.add(x, w)

    runtime = kernelarena.enable_apply(dataset, warmup=True)
    kernelarena.disable_apply(runtime)
    variants = {"solution called directly": entry, "kernelarena: apply off (fallback)": unrouted}
    out = measure(variants, args, ROUNDS, BATCH)
    kernelarena.enable_apply(dataset, warmup=True)
    assert routed(*args).equal(entry(*args)) and runtime.table.get(DEFINITION).ranked
    out.update(measure({"solution called directly (again)": entry, "kernelarena: apply on": routed}, args,
                       ROUNDS, BATCH))
    with tempfile.TemporaryDirectory() as trace_root:
        traced = TraceSet(trace_root)
        traced.add_definition(dataset.definitions[DEFINITION])
        enable_tracing(traced, FirstN(1))
        out.update(measure({"kernelarena: apply on + tracing (key saturated)": routed}, args, ROUNDS, BATCH))
        disable_tracing()
    kernelarena.disable_apply()
    return out


def flashinfer_bench_variants(root: Path, args) -> dict:
    """FlashInfer-Bench 0.1.2's apply over the same dataset; {} when it is not installed."""
    try:
        import flashinfer_bench as fib
        from flashinfer_bench.apply import ApplyConfig
    except ImportError as e:
        print(f"flashinfer-bench not importable ({e}); its rows are skipped", file=sys.stderr)
        return {}

    @fib.apply(DEFINITION)
    def routed(x, w):
        return x + w

    fib.enable_apply(str(root), ApplyConfig())
    try:
        return measure({"flashinfer-bench 0.1.2: apply on": routed}, args, ROUNDS, BATCH)
    finally:
        fib.disable_apply()


def main() -> None:
    global ROUNDS, BATCH
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--batch", type=int, default=200)
    add_out_argument(parser)
    opts = parser.parse_args()
    ROUNDS, BATCH = opts.rounds, opts.batch
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    args = (torch.randn(4, 64), torch.randn(64))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "dataset"
        write_dataset(root)
        results = kernelarena_variants(root, args)
        results.update(flashinfer_bench_variants(root, args))
    direct = min(results["solution called directly"], results["solution called directly (again)"])
    rows = [{"variant": name, "us per call": us, "overhead vs direct (us)": us - direct}
            for name, us in results.items()]
    run = stamp("cpu")
    header = (f"apply() dispatch overhead, {run.date}, {run.machine}, Python {platform.python_version()}, "
              f"torch {torch.__version__}, 1 torch thread; median over {ROUNDS} rounds of {BATCH} calls; "
              "y = x + w on (4, 64) float32 CPU tensors")
    columns = ["variant", "us per call", "overhead vs direct (us)"]
    text = header + "\n\n" + markdown_table(columns, rows)
    print(text)
    if opts.out:
        table = publish("apply_overhead", opts.out, text, TITLE, key=["variant"], columns=columns, rows=rows, run=run)
        print(f"results table: {table}")

ROUNDS, BATCH = 300, 200
TITLE = """# apply() dispatch overhead

Microseconds per call of a tiny CPU solution (y = x + w on (4, 64) float32), one torch thread: called directly,
through apply() off, on, and on with tracing, and through flashinfer-bench's apply. "overhead vs direct" is the
row minus the direct call: the cost of the dispatch. One row per machine and variant, the latest run of each;
`apply_overhead_latest.md` holds the latest run's full output. Made by `python3 -m benchmarks.bench_apply_overhead`."""

if __name__ == "__main__":
    main()
