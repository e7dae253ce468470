"""Example 03: apply() routes a call to the fastest verified solution; tracing records the calls it sees.

    python examples/03_apply/apply_basics.py

Benchmarks two RMSNorm solutions of the example dataset (a copy in a temporary folder), then routes calls
through the dispatch table built from those traces.
"""

import os
import shutil
import tempfile
from pathlib import Path

import torch
from rich.console import Console

GPU = torch.cuda.is_available()
if not GPU:
    os.environ.setdefault("TRITON_INTERPRET", "1")  # the Triton solution runs interpreted on the CPU

import kernelarena  # noqa: E402
from kernelarena.apply import ApplyConfig, DispatchTable, RoutingPolicy  # noqa: E402
from kernelarena.apply.render import render_dispatch_table  # noqa: E402
from kernelarena.bench import RunConfig, TimingConfig, run  # noqa: E402
from kernelarena.store import TraceSet  # noqa: E402
from kernelarena.tracing import disable_tracing, enable_tracing  # noqa: E402

EXAMPLE_DATASET = Path(__file__).resolve().parents[1] / "dataset"
DEFINITION = "rmsnorm_h4096"
SOLUTIONS = ["rmsnorm_h4096_pytorch", "rmsnorm_h4096_kernelarena_triton"]
DEVICE = "cuda" if GPU else "cpu"


def section(title: str) -> None:
    print(f"\n== {title}")


@kernelarena.apply(DEFINITION)
def rmsnorm(hidden_states, weight):
    """The serving code's own RMSNorm: the fallback, run whenever apply cannot route a call."""
    x = hidden_states.float()
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight.float()).to(hidden_states.dtype)


def inputs(batch: int, hidden: int = 4096):
    return (torch.randn(batch, hidden, dtype=torch.bfloat16, device=DEVICE),
            torch.randn(hidden, dtype=torch.bfloat16, device=DEVICE))


def routed_to(runtime, batch: int) -> str:
    return runtime.routes(DEFINITION).get((batch,)) or "the fallback"


def main(root: Path) -> None:
    section("1. benchmark two solutions (traces are what apply() routes by)")
    dataset = TraceSet.load(root)
    smallest = 2 if GPU else 1  # batch 1 (and 32 on a GPU): the Triton interpreter is slow
    report = run(dataset, RunConfig(correctness_rounds=2, timing=TimingConfig(checked_calls=1)),
                 definitions=[DEFINITION], solutions=SOLUTIONS, smallest=smallest)
    for t in report.traces:
        print(f"  {t.solution} batch_size={t.workload.axes['batch_size']}: {t.evaluation.status.value}")

    section("2. the dispatch table: per key (the variable axes' values), the solutions ranked fastest first")
    table = DispatchTable.build(TraceSet.load(root), ApplyConfig())
    Console(width=160).print(render_dispatch_table(table, f"dispatch table of {DEFINITION}", DEFINITION))

    section("3. decorator mode: the decorated function is the fallback; enabled, calls are routed")
    x, w = inputs(1)
    expected = rmsnorm(x, w)  # apply is off: this ran the function's own body
    with kernelarena.enable_apply(root) as runtime:
        y = rmsnorm(x, w)
        print(f"  batch 1 -> {routed_to(runtime, 1)}; max |difference| from the fallback "
              f"{float((y.float() - expected.float()).abs().max()):.3g}")
        rmsnorm(*inputs(5))
        print(f"  batch 5 (never benchmarked) -> {routed_to(runtime, 5)}")
        rmsnorm(torch.randn(2, 128, dtype=torch.bfloat16, device=DEVICE),
                torch.randn(128, dtype=torch.bfloat16, device=DEVICE))
        print("  a call that does not fit the definition (hidden 128, not 4096) -> the fallback, nothing excluded")

    section("4. function mode, and a policy for keys never benchmarked")
    config = ApplyConfig(overrides={DEFINITION: RoutingPolicy(unseen="nearest")})
    with kernelarena.enable_apply(root, config) as runtime:
        y = kernelarena.apply(DEFINITION, args=inputs(5), fallback=rmsnorm.__wrapped__)
        print(f"  apply('{DEFINITION}', args=..., fallback=...) with unseen='nearest': batch 5 -> "
              f"{routed_to(runtime, 5)} (the ranking of the nearest benchmarked batch)")

    section("5. tracing: record the workloads of live calls, to benchmark them next")
    before = len(TraceSet.load(root).workloads_for(DEFINITION))
    enable_tracing(root, "distinct_shapes")
    for batch in (3, 3, 17):
        rmsnorm(*inputs(batch))
    written = disable_tracing()
    after = TraceSet.load(root).workloads_for(DEFINITION)
    print(f"  3 calls with batch sizes 3, 3, 17 -> {written} new workloads "
          f"({before} -> {len(after)}): {[w.axes for w in after[before:]]}")
    print("  kernelarena run on the dataset would now benchmark them, and apply() route them")
    print("\nok")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="kernelarena-example-03-") as tmp:
        root = Path(tmp) / "dataset"
        shutil.copytree(EXAMPLE_DATASET, root, ignore=shutil.ignore_patterns(".*.lock", "traces"))
        main(root)
