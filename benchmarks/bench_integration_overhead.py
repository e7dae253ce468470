"""Host cost the FlashInfer integration adds to a norm call, on this CPU: a patched flashinfer.norm.rmsnorm
beside the apply()-decorated site it calls and beside the solution called directly.

    python3 -m benchmarks.bench_integration_overhead [--rounds 200] [--batch 500] [--out DIR]

The solution returns its input (``run(x, w): return x``), so what is timed is dispatch, not arithmetic. The
definition is the example dataset's rmsnorm re-made for hidden 64. Variants are timed round-robin, one batch
of calls each per round; a row's figure is the median over rounds of the mean call time in a batch. With
``--out`` (default $OUT) writes integration_overhead_latest.md there and upserts the rows into the results
table integration_overhead.md (``--out benchmarks/results`` publishes in place).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import torch

from benchmarks.common import add_out_argument, publish, stamp
from kernelarena.schema import Solution
from kernelarena.serving.dataset import derive_dataset, named_routing
from kernelarena.store import TraceSet

ROOT = Path(__file__).resolve().parents[1]
KEY = ["variant"]
COLUMNS = [*KEY, "us per call", "over the solution (us)"]
TITLE = """# FlashInfer integration: host cost per norm call

`python3 -m benchmarks.bench_integration_overhead --out benchmarks/results` (CPU, one thread; (4, 64) bf16 tensors;
the routed solution returns its input, so dispatch alone is timed): median over rounds of the mean us per call of
the solution called directly, an apply()-decorated site, and the patched `flashinfer.norm.rmsnorm`; "over the
solution" subtracts the direct call. One row per machine and variant, the latest run of each; the latest run's full
output is `integration_overhead_latest.md` beside this file."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--batch", type=int, default=500)
    add_out_argument(parser)
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
    run = stamp("cpu")
    lines = [f"FlashInfer integration host cost, {run.date}, {run.machine}, Python {platform.python_version()}, "
             f"torch {torch.__version__}, FlashInfer "
             f"{flashinfer.__version__}; median over {options.rounds} rounds of {options.batch} calls; (4, 64) bf16 "
             "CPU tensors; script benchmarks/bench_integration_overhead.py", "",
             "| variant | us per call | over the solution (us) |", "|---|---|---|"]
    lines += [f"| {name} | {median(s):.2f} | {median(s) - base:.2f} |" for name, s in samples.items()]
    print("\n".join(lines))
    if options.out is not None:
        rows = [{"variant": name, "us per call": median(s), "over the solution (us)": median(s) - base}
                for name, s in samples.items()]
        path = publish("integration_overhead", options.out, "\n".join(lines), TITLE, key=KEY, columns=COLUMNS,
                       rows=rows, run=run)
        print(f"wrote {path} and {options.out / 'integration_overhead_latest.md'}")
    ka_flashinfer.uninstall()
    return 0


if __name__ == "__main__":
    sys.exit(main())
