"""Example 05: serving code that calls FlashInfer, before and after kernelarena's FlashInfer integration.

    python examples/05_integration/integration.py

The "serving loop" is a few decode steps of a model's norm layers calling ``flashinfer.norm.rmsnorm``, as an
engine does. Before: FlashInfer's own kernel (on a GPU; FlashInfer has no CPU kernels). After
``kernelarena.integrations.flashinfer.installed(dataset)``: the same unchanged calls are routed by apply() to
the fastest solution that passed on the dataset's traces, and FlashInfer's originals are back on exit.
"""

import importlib.util
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

GPU = torch.cuda.is_available()
if not GPU:
    os.environ.setdefault("TRITON_INTERPRET", "1")  # the Triton solution runs interpreted on the CPU

from kernelarena.apply import current_runtime  # noqa: E402
from kernelarena.bench import RunConfig, TimingConfig, run  # noqa: E402
from kernelarena.store import TraceSet  # noqa: E402

EXAMPLE_DATASET = Path(__file__).resolve().parents[1] / "dataset"
DEFINITION = "rmsnorm_h4096"
SOLUTIONS = ["rmsnorm_h4096_pytorch", "rmsnorm_h4096_kernelarena_triton"]
DEVICE = "cuda" if GPU else "cpu"
BATCH = 32 if GPU else 1
LAYERS, STEPS = 4, 3


def serving_loop(flashinfer, hidden: torch.Tensor, weights) -> float:
    """STEPS decode steps through LAYERS norm layers, as the engine writes them; returns ms per step."""
    for w in weights:  # warm-up: first calls build or compile
        flashinfer.norm.rmsnorm(hidden, w, eps=1e-6)
    if GPU:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(STEPS):
        x = hidden
        for w in weights:
            x = flashinfer.norm.rmsnorm(x, w, eps=1e-6)
    if GPU:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1e3 / STEPS


def main(root: Path) -> int:
    if importlib.util.find_spec("flashinfer") is None:
        print("skipped: the flashinfer package is not installed (pip install flashinfer-python)")
        return 0
    try:
        from kernelarena.integrations import flashinfer as ka_flashinfer
    except ImportError as e:
        print(f"skipped: kernelarena.integrations.flashinfer is not in this checkout ({e})")
        return 0
    import flashinfer
    import flashinfer.norm

    print("== 1. benchmark the dataset's RMSNorm solutions (the traces the integration routes by)")
    report = run(TraceSet.load(root), RunConfig(correctness_rounds=2, timing=TimingConfig(checked_calls=1)),
                 definitions=[DEFINITION], solutions=SOLUTIONS, smallest=2 if GPU else 1)
    for t in report.traces:
        print(f"  {t.solution} batch_size={t.workload.axes['batch_size']}: {t.evaluation.status.value}")

    hidden = torch.randn(BATCH, 4096, dtype=torch.bfloat16, device=DEVICE)
    weights = [torch.randn(4096, dtype=torch.bfloat16, device=DEVICE) for _ in range(LAYERS)]
    original = flashinfer.norm.rmsnorm

    print("\n== 2. before: the serving loop on FlashInfer's own kernel")
    before = None
    if GPU:
        before = serving_loop(flashinfer, hidden, weights)
        print(f"  {before:.3f} ms per step ({LAYERS} rmsnorm calls, batch {BATCH})")
    else:  # its kernels are CUDA only; calling one here would start a JIT build that cannot run
        print("  skipped: FlashInfer's kernels need a GPU; an engine on this machine could not run this loop")

    print("\n== 3. after: the same loop with the integration installed")
    with ka_flashinfer.installed(root):
        after = serving_loop(flashinfer, hidden, weights)
        routes = current_runtime().routes(DEFINITION)
        print(f"  {after:.3f} ms per step; flashinfer.norm.rmsnorm is patched: {flashinfer.norm.rmsnorm is not original}")
        print(f"  apply() routed batch {BATCH} to: {routes.get((BATCH,), 'the original FlashInfer call')}")
    print(f"\n== 4. uninstalled: FlashInfer's original is back: {flashinfer.norm.rmsnorm is original}")
    if before is not None:
        print(f"  before {before:.3f} ms, after {after:.3f} ms per step "
              f"({'GPU' if GPU else 'CPU: interpreted Triton, not a speed comparison'})")
    print("\nok")
    return 0


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="kernelarena-example-05-") as tmp:
        root = Path(tmp) / "dataset"
        shutil.copytree(EXAMPLE_DATASET, root, ignore=shutil.ignore_patterns(".*.lock", "traces"))
        sys.exit(main(root))
