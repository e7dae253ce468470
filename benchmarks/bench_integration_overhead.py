"""Host cost the FlashInfer integration adds, on this CPU: per norm call, per decode plan() and per decode run(),
each beside the same work done without the integration.

    python3 -m benchmarks.bench_integration_overhead [--rounds 200] [--batch 500] [--out DIR]

Three groups, each with its baseline first ("over the baseline" subtracts it):

- rmsnorm: the routed solution returns its input (``run(x, w): return x``), so dispatch alone is timed; the
  solution called directly, an apply()-decorated site, the patched ``flashinfer.norm.rmsnorm``. Definition: the
  example dataset's rmsnorm re-made for hidden 64; (4, 64) bf16 tensors.
- decode plan: Llama-3-8B decode shapes (32 query / 8 KV heads of 128, pages of 16), a batch of 16 requests of
  1025 tokens; kernelarena's own ``BatchDecodeWithPagedKVCacheWrapper.plan`` called directly, and FlashInfer's
  wrapper's ``plan()`` patched and routed to the dataset's Triton decode solution (which plans that same wrapper):
  the difference is the adapter's work per plan (parsing the call, choosing the solution).
- decode run: a one-call solution that returns q (so no kernel runs; on a CPU our planned wrapper's run() would
  run the Triton interpreter), 4 query / 2 KV heads of 64, batch 3: the solution called directly, and the
  patched FlashInfer wrapper's ``run()`` routed to it: the adapter's work per run.

Variants are timed round-robin, one batch of calls each per round (plans: a tenth of ``--batch``); a row's figure
is the median over rounds of the mean call time in a batch. With ``--out`` (default $OUT) writes
integration_overhead_latest.md there and upserts the rows into the results table integration_overhead.md
(``--out benchmarks/results`` publishes in place).
"""

from __future__ import annotations

import argparse
import os
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
COLUMNS = [*KEY, "us per call", "over the baseline (us)"]
TITLE = """# FlashInfer integration: host cost per call

`python3 -m benchmarks.bench_integration_overhead --out benchmarks/results` (CPU, one thread): median over rounds
of the mean us per call; three groups, each with its baseline first and "over the baseline" subtracting it:
rmsnorm (a solution that returns its input, called directly, through an apply() site, through the patched
`flashinfer.norm.rmsnorm`), decode plan (kernelarena's decode wrapper planned directly, and FlashInfer's wrapper
patched and routed to the Triton solution that plans it; Llama-3-8B decode shapes, batch 16 x 1025 tokens), decode
run (a one-call solution that returns q, called directly and through the patched wrapper's run()). One row per
machine and variant, the latest run of each; the latest run's full output is `integration_overhead_latest.md`
beside this file."""

DECODE_SOLUTION = "kernelarena_triton_gqa_paged_decode_h32_kv8_d128_ps16"
IDENTITY_SOURCE = {
    "rmsnorm_h64": "def run(x, w):\n    return x\n",
    "gqa_paged_decode_h4_kv2_d64_ps16":
        "def run(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale):\n    return q, q\n",
}


def make_dataset(root: Path) -> None:
    """The example dataset's definitions for the Llama-3-8B decode shapes (with our Triton decode solution) and
    for tiny shapes (with the identity solutions above)."""
    source = TraceSet.load(ROOT / "examples" / "dataset")
    derive_dataset(source, root, dict(H=4096, Hq=32, Hkv=8, D=128, P=16), [DECODE_SOLUTION])
    derive_dataset(source, root, dict(H=64, Hq=4, Hkv=2, D=64, P=16), ())
    target = TraceSet.load(root)
    for definition, code in IDENTITY_SOURCE.items():
        target.add_solution(Solution.model_validate({
            "name": f"{definition}_identity", "definition": definition, "author": "bench",
            "spec": {"language": "python", "target_hardware": ["cpu"], "entry_point": "main.py::run",
                     "destination_passing_style": False},
            "sources": [{"path": "main.py", "content": code}]}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--batch", type=int, default=500)
    add_out_argument(parser)
    options = parser.parse_args()
    # Our decode wrapper's module defines Triton kernels; without a GPU they need Triton's interpreter (nothing is
    # launched here, but the definitions are read at import).
    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")
    import flashinfer

    from kernelarena.apply import apply, current_runtime
    from kernelarena.integrations import flashinfer as ka_flashinfer
    from kernelarena.kernels import attention as ours

    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp())
    make_dataset(root)
    ka_flashinfer.install(root, config=named_routing({
        "rmsnorm_h64": "rmsnorm_h64_identity", "gqa_paged_decode_h32_kv8_d128_ps16": DECODE_SOLUTION,
        "gqa_paged_decode_h4_kv2_d64_ps16": "gqa_paged_decode_h4_kv2_d64_ps16_identity"}))
    runtime = current_runtime()

    x, w = torch.randn(4, 64, dtype=torch.bfloat16), torch.ones(64, dtype=torch.bfloat16)
    site = apply("rmsnorm_h64")(lambda x, w: x)
    patched_norm = flashinfer.norm.rmsnorm
    assert patched_norm(x, w) is x and site(x, w) is x  # both routed to the identity solution
    direct_norm = runtime.runnable("rmsnorm_h64_identity", "cpu").entry

    workspace = torch.empty(1 << 24, dtype=torch.uint8)
    big = ours.build_page_table([1025] * 16, 16, num_pages=16 * 65)
    plan_args = (big.kv_indptr, big.kv_indices, big.kv_last_page_len, 32, 8, 128, 16)
    patched_decode = flashinfer.BatchDecodeWithPagedKVCacheWrapper(workspace, "NHD")
    our_decode = ours.BatchDecodeWithPagedKVCacheWrapper(workspace, "NHD")
    patched_decode.plan(*plan_args, q_data_type=torch.bfloat16)
    assert ka_flashinfer.routed_solution(patched_decode) == DECODE_SOLUTION

    small = ours.build_page_table([23, 16, 1], 16, num_pages=8)
    k = torch.zeros(8, 16, 2, 64, dtype=torch.bfloat16)
    q = torch.zeros(3, 4, 64, dtype=torch.bfloat16)
    one_call = flashinfer.BatchDecodeWithPagedKVCacheWrapper(workspace, "NHD")
    one_call.plan(small.kv_indptr, small.kv_indices, small.kv_last_page_len, 4, 2, 64, 16, q_data_type=torch.bfloat16)
    assert ka_flashinfer.routed_solution(one_call) == "gqa_paged_decode_h4_kv2_d64_ps16_identity"
    direct_decode = runtime.runnable("gqa_paged_decode_h4_kv2_d64_ps16_identity", "cpu").entry
    kv, tables = (k, k), (small.kv_indptr, small.kv_indices, small.kv_last_page_len)
    assert one_call.run(q, kv) is q

    plans = max(1, options.batch // 10)
    groups = {
        "rmsnorm": [("solution called directly", lambda: direct_norm(x, w), options.batch),
                    ("apply() site (decorator)", lambda: site(x, w), options.batch),
                    ("patched flashinfer.norm.rmsnorm", lambda: patched_norm(x, w), options.batch)],
        "decode plan": [("kernelarena wrapper's plan() directly",
                         lambda: our_decode.plan(*plan_args, q_data_type=torch.bfloat16), plans),
                        ("patched FlashInfer wrapper's plan()",
                         lambda: patched_decode.plan(*plan_args, q_data_type=torch.bfloat16), plans)],
        "decode run": [("solution called directly", lambda: direct_decode(q, k, k, *tables, 0.125), options.batch),
                       ("patched FlashInfer wrapper's run()", lambda: one_call.run(q, kv), options.batch)],
    }
    samples = {(group, name): [] for group, variants in groups.items() for name, _, _ in variants}
    for _ in range(options.rounds):
        for group, variants in groups.items():
            for name, fn, calls in variants:
                start = time.perf_counter()
                for _ in range(calls):
                    fn()
                samples[group, name].append((time.perf_counter() - start) / calls * 1e6)
    ka_flashinfer.uninstall()

    rows = []
    for group, variants in groups.items():
        base = median(samples[group, variants[0][0]])
        for name, _, _ in variants:
            us = median(samples[group, name])
            rows.append({"variant": f"{group}: {name}", "us per call": f"{us:.2f}",
                         "over the baseline (us)": f"{us - base:.2f}"})
    run = stamp("cpu")
    lines = [f"FlashInfer integration host cost, {run.date}, {run.machine}, Python {platform.python_version()}, "
             f"torch {torch.__version__}, FlashInfer {flashinfer.__version__}; median over {options.rounds} rounds "
             f"of {options.batch} calls ({plans} plans); CPU tensors, one thread; script "
             "benchmarks/bench_integration_overhead.py", "",
             "| variant | us per call | over the baseline (us) |", "|---|---|---|"]
    lines += [f"| {r['variant']} | {r['us per call']} | {r['over the baseline (us)']} |" for r in rows]
    print("\n".join(lines))
    if options.out is not None:
        path = publish("integration_overhead", options.out, "\n".join(lines), TITLE, key=KEY, columns=COLUMNS,
                       rows=rows, run=run)
        print(f"wrote {path} and {options.out / 'integration_overhead_latest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
