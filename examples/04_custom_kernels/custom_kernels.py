"""Example 04: one RMSNorm written three times (Triton, CUDA C++, TileLang), each built, verified and timed
through kernelarena on the example dataset's rmsnorm_h4096 definition.

    python examples/04_custom_kernels/custom_kernels.py

On a CPU, the Triton kernel runs interpreted; the run skips the CUDA and TileLang kernels with the reason
(they need a GPU), and --compile builds them anyway, which checks that they compile (nvcc for CUDA: minutes
on a small CPU) without running them.
"""

import argparse
import shutil
import tempfile
from pathlib import Path

import torch

from kernelarena.bench import RunConfig, TimingConfig, run
from kernelarena.build import build_solution
from kernelarena.errors import BuildError
from kernelarena.schema import Solution
from kernelarena.store import TraceSet

HERE = Path(__file__).resolve().parent
EXAMPLE_DATASET = HERE.parent / "dataset"
DEFINITION = "rmsnorm_h4096"
GPU = torch.cuda.is_available()

# language, entry point, binding, hardware, source files (in kernels/)
KERNELS = {
    "triton": ("triton", "rmsnorm_triton.py::run", None, ["cpu", "cuda"], ["rmsnorm_triton.py"]),
    "cuda": ("cuda", "rmsnorm_cuda.cu::run", "torch", ["cuda"], ["rmsnorm_cuda.cu"]),
    "tilelang": ("tilelang", "rmsnorm_tilelang.py::run", None, ["cuda"], ["rmsnorm_tilelang.py"]),
}


def solution(kind: str) -> Solution:
    """A Solution record of one of kernels/: the files embedded verbatim, destination-passing."""
    language, entry, binding, hardware, files = KERNELS[kind]
    return Solution.model_validate({
        "name": f"example04_rmsnorm_{kind}", "definition": DEFINITION, "author": "example 04",
        "spec": {"language": language, "target_hardware": hardware, "entry_point": entry, "binding": binding,
                 "destination_passing_style": True},
        "sources": [{"path": f, "content": (HERE / "kernels" / f).read_text()} for f in files]})


def why(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    return lines[-1][:160] if lines else ""


def main(root: Path, compile_on_cpu: bool) -> None:
    dataset = TraceSet.load(root)
    for kind in KERNELS:
        dataset.add_solution(solution(kind))
    names = [f"example04_rmsnorm_{kind}" for kind in KERNELS]
    # CPU: batch 1 only (the Triton interpreter is slow); GPU: every workload (batch 1, 32, 1024, 8192).
    report = run(dataset, RunConfig(correctness_rounds=2, timing=TimingConfig(checked_calls=1)),
                 definitions=[DEFINITION], solutions=names, smallest=None if GPU else 1)
    for skipped in report.skipped:
        print(f"{skipped.solution}: skipped: {skipped.reason}")
        if compile_on_cpu:
            try:
                built = build_solution(dataset.solutions[skipped.solution], device="cpu")
                print(f"  --compile: built; {built.unavailable_reason or 'runs here'}")
            except BuildError as e:
                print(f"  --compile: the build failed: {e}\n{e.log[-2000:]}")
    print(f"{'solution':<28} {'batch':>6} {'status':<14} {'latency us':>11} {'vs reference':>12}  note")
    for t in sorted(report.traces, key=lambda t: (t.workload.axes["batch_size"], t.solution)):
        p = t.evaluation.performance
        latency = f"{p.latency_ms * 1e3:.1f}" if p else "-"
        speedup = f"{p.speedup_factor:.3g}x" if p else "-"
        note = "" if t.passed else why(t.evaluation.log or "")
        print(f"{t.solution:<28} {t.workload.axes['batch_size']:>6} {t.evaluation.status.value:<14} "
              f"{latency:>11} {speedup:>12}  {note}")
    device = torch.cuda.get_device_name() if GPU else "CPU (Triton interpreted; timings are not GPU speed)"
    print(f"\nmeasured on {device}; latency is the median, speedup is over the definition's PyTorch reference")
    print("ok")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compile", action="store_true",
                        help="On a CPU, build the CUDA and TileLang kernels the run skips (checks they compile).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kernelarena-example-04-") as tmp:
        root = Path(tmp) / "dataset"
        shutil.copytree(EXAMPLE_DATASET, root, ignore=shutil.ignore_patterns(".*.lock", "traces", "solutions"))
        main(root, args.compile)
