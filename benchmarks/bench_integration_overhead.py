"""Host cost the FlashInfer integration adds to a norm call, on this CPU: a patched flashinfer.norm.rmsnorm
beside the apply()-decorated site it calls and beside the solution called directly.

    python benchmarks/bench_integration_overhead.py [--rounds 200] [--batch 500] [--out DIR]

The solution returns its input (``run(x, w): return x``), so what is timed is dispatch, not arithmetic. The
definition is the example dataset's rmsnorm re-made for hidden 64. Variants are timed round-robin, one batch
of calls each per round; a row's figure is the median over rounds of the mean call time in a batch.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kernelarena.schema import Solution  # noqa: E402
from kernelarena.serving.dataset import derive_dataset, named_routing  # noqa: E402
from kernelarena.store import TraceSet  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ROOT / "benchmarks" / "results")))
    options = parser.parse_args()
    import flashinfer

    from kernelarena.apply import apply, current_runtime
    from kernelarena.integrations import flashinfer as ka_flashinfer

    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp())
    derive_dataset(TraceSet.load(ROOT / "examples" / "dataset"), root, dict(H=64, Hq=4, Hkv=2, D=64, P=16), ())
    TraceSet.load(root).add_solution(Solution.model_validate({
        "name": "rmsnorm_h64_identity", "definition": "rmsnorm_h64", "author": "bench",
        "spec": {"language": "python", "target_hardware": ["cpu"], "entry_point": "main.py::run",
                 "destination_passing_style": False},
        "sources": [{"path": "main.py", "content": "def run(x, w):\n    return x\n"}]}))
    ka_flashinfer.install(root, config=named_routing({"rmsnorm_h64": "rmsnorm_h64_identity"}))
    x, w = torch.randn(4, 64, dtype=torch.bfloat16), torch.ones(64, dtype=torch.bfloat16)
    site = apply("rmsnorm_h64")(lambda x, w: x)
    patched = flashinfer.norm.rmsnorm
    assert patched(x, w) is x and site(x, w) is x  # both routed to the identity solution
    direct = current_runtime().runnable("rmsnorm_h64_identity", "cpu").entry
    variants = {"solution called directly": direct, "apply() site (decorator)": site,
                "patched flashinfer.norm.rmsnorm": patched}
    samples = {name: [] for name in variants}
    for _ in range(options.rounds):
        for name, fn in variants.items():
            start = time.perf_counter()
            for _ in range(options.batch):
                fn(x, w)
            samples[name].append((time.perf_counter() - start) / options.batch * 1e6)
    base = median(samples["solution called directly"])
    date = datetime.date.today().isoformat()
    lines = [f"FlashInfer integration host cost, {date}, {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} CPUs, Python {platform.python_version()}, torch {torch.__version__}, FlashInfer "
             f"{flashinfer.__version__}; median over {options.rounds} rounds of {options.batch} calls; (4, 64) bf16 "
             "CPU tensors; script benchmarks/bench_integration_overhead.py", "",
             "| variant | us per call | over the solution (us) |", "|---|---|---|"]
    lines += [f"| {name} | {median(s):.2f} | {median(s) - base:.2f} |" for name, s in samples.items()]
    options.out.mkdir(parents=True, exist_ok=True)
    path = options.out / f"integration_overhead_{date}.md"
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {path}")
    ka_flashinfer.uninstall()
    return 0


if __name__ == "__main__":
    sys.exit(main())
