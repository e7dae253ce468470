"""Paged attention: kernelarena's wrappers side by side with FlashInfer's, on one GPU, in one run. 'ours' is the
wrappers' default path: on sm90 with TileLang, prefill takes the TileLang Hopper kernel (KERNELARENA_HOPPER_PREFILL
unset: auto); elsewhere the portable Triton kernels, and decode as the backend table picks.

Sweep (issue #6): bf16, 32 query / 8 KV heads, head_dim 128, page 16, pages in random order.
  decode   batch 1, 16, 64, 128, 256 x KV length 1024, 2048, 4096, 8192
  prefill  causal, 4 x 1024 and 16 x 512 queries over KV 4096 (queries aligned to the end of the KV)
  --prefill-sweep (issue #18), prefill only: causal at 1, 4, 16 requests x 512, 2048, 8192 queries over KV of the
           queries' length, 4096 and 16384 (KV at least the queries); a row without a mask (4 x 1024 over 4096) and a
           ragged row (contiguous K/V, 8 requests of 128-2048 queries over 512-4096 keys); the ceiling is the bf16
           matmul rate measured in the same run; where TileLang imports on a GPU, a TileLang column (TILELANG_PREFILL)
Device time is kernelarena.bench.timing.ColdL2Timer's median (L2 flushed before each call), the implementations
of one row timed in turn within each repetition (ours, the TileLang column, FlashInfer's backends), so that a drift
of the GPU's clocks over the run reaches them alike (timed one after the other with triton's do_bench, one grid
point read 0.94x in a run where three runs of it in turn read 1.06-1.12x, H200 2026-12-04). Decode reports TB/s of K/V
read against the device-to-device copy bandwidth measured in the same run; prefill reports TFLOP/s
(4 * head_dim flops per visible query-key pair per head) against 790 TFLOP/s (bf16 dense). plan() host
cost is the median wall time of one call with host (CPU) indptr tensors, for both libraries. run() host cost
back to back (host_cost.py): run() called repeatedly on the same inputs with no sleep ahead, per call the
host's time ("b2b host") and the time until the GPU is done ("b2b"), decode up to batch 16 and prefill, both
libraries in the same run. FlashInfer
runs only with settings whose kernels benchmarks/gpu_env.sh unpacks prebuilt (NHD, bf16, no soft-cap or
window); for decode and prefill the better of its two backends is the baseline.

    python3 -m benchmarks.bench_attention --out $OUT      # GPU: full sweep; attention_latest.{md,json}, attention.md
    python3 -m benchmarks.bench_attention --quick             # GPU: small cases only, a few minutes
    python3 -m benchmarks.bench_attention --sweep             # also time kernel-config variants (tuning)
    python3 -m benchmarks.bench_attention --prefill-sweep --out $OUT   # prefill only, the grid above
    python3 -m benchmarks.bench_attention --tune              # sweep first, then the table with the best configs
    TRITON_INTERPRET=1 python3 -m benchmarks.bench_attention --device cpu --quick   # smoke test of the script
    python3 -m benchmarks.bench_attention --compile-sm90      # no GPU: compile for sm_90, print registers/spills
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import statistics
import time
from dataclasses import asdict

import torch

from benchmarks.common import add_out_argument, publish, stamp
from benchmarks.host_cost import back_to_back_us
from benchmarks.read_floor import empty_kernel_us, read_floor_us
from kernelarena.bench.timing import ColdL2Timer
from kernelarena.kernels.attention import (
    BatchDecodeWithPagedKVCacheWrapper,
    BatchPrefillWithPagedKVCacheWrapper,
    BatchPrefillWithRaggedKVCacheWrapper,
    HopperPrefillConfig,
    KernelConfig,
    build_page_table,
    prefill_hopper,
)
from kernelarena.kernels.attention.paged_kernel import PagedAttentionLauncher
from kernelarena.kernels.attention.prefill_hopper import TILELANG_CONFIG

HQ, HKV, D, PAGE = 32, 8, 128, 16
DECODE_BATCHES = (1, 16, 64, 128, 256)
DECODE_LENS = (1024, 2048, 4096, 8192)
PREFILL_CASES = ((4, 1024, 4096), (16, 512, 4096))  # (batch, queries per request, KV per request)
# The prefill sweep's TileLang column (--tilelang-schedule): persistent blocks taking tiles from a counter, built with
# fast math; "plain" (each warpgroup's GEMMs and softmax in turn) or "fa3" (FA3's overlap and ping-pong, the
# default). In sweep_prefill_hopper on the H200 (2026-12-04) plain read 2-3 points higher on paged K/V before the
# output store lost its branches, fa3 3-6 points higher on paged and 9 on ragged K/V after.
TILELANG_SCHEDULES = {
    "plain": HopperPrefillConfig(128, 128, 8, 2, pack_gqa=False, use_tma=True, language="tilelang", persistent=True),
    "fa3": TILELANG_CONFIG,  # what KERNELARENA_HOPPER_PREFILL=1 picks
}
TILELANG_PREFILL = TILELANG_SCHEDULES["fa3"]
PREFILL_SWEEP = tuple((b, q, kv) for b in (1, 4, 16) for q in (512, 2048, 8192) for kv in sorted({q, 4096, 16384})
                      if kv >= q)
NO_MASK_CASE = (4, 1024, 4096)
RAGGED_CASE = ((1024, 512, 2048, 256, 768, 1536, 128, 1024), (4096, 2048, 4096, 512, 1024, 4096, 4096, 2048))
QUICK_RAGGED_CASE = ((9, 20, 3), (30, 20, 41))
BF16_PEAK_TFLOPS = 790.0
# Decode variants around the default (16, 128, 4 warps, 2 stages, 2 programs/SM, chunks >= 256, split only
# below one item per program); benchmarks/sweep_attention.py has the wider sweep (and the item schedule).
SWEEP_DECODE = [KernelConfig(16, bn, w, st, c, mc, sf) for bn, w, st, c, mc, sf in (
    (128, 4, 2, 2, 256, 1), (128, 4, 2, 2, 256, 2), (128, 4, 3, 2, 256, 1), (64, 4, 3, 3, 128, 4))]
SWEEP_PREFILL = [KernelConfig(bm, bn, w, st, c, 512, 1) for bm, bn, w, st, c in (
    (128, 64, 8, 6, 1), (128, 64, 8, 7, 1), (128, 64, 4, 3, 2), (128, 128, 8, 5, 1))]
B2B_BELOW_US = 2000.0  # prefill rows time run() back to back only below this device time (1000 calls a library)
SMALL_BATCH = 16  # decode rows at or under this batch also time the run() host cost and Triton's own launch


KERNELS: dict = {}  # the last wrapper's runner, to read its kernel's register and spill counts


def kernel_resources() -> dict:
    kernel = getattr(KERNELS.get("last"), "last_kernel", None)
    return {"regs": getattr(kernel, "n_regs", None), "spills": getattr(kernel, "n_spills", None)}


# ------------------------------------------------------------------------------------------ compile check
COMPILE_CASES = (  # (label, GROUP, HEAD_DIM, BLOCK_M, BLOCK_N, warps, stages, causal, window, soft-cap, split)
    ("decode default", 4, 128, 16, 128, 4, 2, False, False, False, True),
    ("decode unsplit", 4, 128, 16, 128, 4, 2, False, False, False, False),
    ("decode bn64 s3", 4, 128, 16, 64, 4, 3, False, False, False, True),
    ("decode bn32 s4", 4, 128, 16, 32, 4, 4, False, False, False, True),
    ("decode small batch", 4, 128, 16, 128, 4, 5, False, False, False, True),
    ("prefill default", 4, 128, 128, 64, 8, 6, True, False, False, False),
    ("prefill split", 4, 128, 128, 64, 8, 6, True, False, False, True),
    ("prefill 4 warps s3", 4, 128, 128, 64, 4, 3, True, False, False, False),
    ("decode d256 cap+window", 1, 256, 16, 32, 4, 3, False, True, True, True),
)


def compile_sm90() -> None:
    """Compile the attention kernel for sm_90 without a GPU (Triton's bundled ptxas) and print resources."""
    import subprocess
    import tempfile

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.backends.nvidia.compiler import get_ptxas
    from triton.compiler.compiler import ASTSource

    from kernelarena.kernels.attention.paged_kernel import MERGE_ROWS, merge_chunks, paged_attention_kernel

    fn = paged_attention_kernel
    pointers = {"Q": "*bf16", "K": "*bf16", "V": "*bf16", "O": "*bf16", "LSE": "*fp32", "O_PART": "*fp32",
                "LSE_PART": "*fp32", "WORK": "*i32", "KV_INDICES": "*i32"}
    ptxas = get_ptxas(90)
    ptxas = getattr(ptxas, "path", ptxas)
    print(f"triton {triton.__version__}, ptxas {ptxas}")
    for label, group, dim, bm, bn, warps, stages, causal, window, cap, split in COMPILE_CASES:
        consts = dict(GROUP=group, HEAD_DIM=dim, PAGE_SIZE=16, BLOCK_M=bm, BLOCK_N=bn, CAUSAL=causal,
                      USE_WINDOW=window, USE_SOFT_CAP=cap, WRITE_LSE=True, UPCAST=False, SPLIT=split,
                      SCHEDULE=0, MERGE_ROWS=MERGE_ROWS, MERGE_CHUNKS=merge_chunks(dim))
        sig = {n: pointers.get(n) or ("constexpr" if n in consts else "fp32" if n.endswith("scale") else "i32")
               for n in fn.arg_names}
        attrs = {(fn.arg_names.index(n),): [["tt.divisibility", 16]] for n in fn.arg_names
                 if n in pointers or (n.startswith("stride") and n != "stride_lt")}
        kernel = triton.compile(ASTSource(fn, sig, consts, attrs), target=GPUTarget("cuda", 90, 32),
                                options={"num_warps": warps, "num_stages": stages})
        with tempfile.NamedTemporaryFile("w", suffix=".ptx") as f:
            f.write(kernel.asm["ptx"])
            f.flush()
            report = subprocess.run([ptxas, "-v", "--gpu-name=sm_90a", f.name, "-o", "/dev/null"],
                                    capture_output=True, text=True).stderr
        info = "; ".join(line.split("info    :")[-1].strip() for line in report.splitlines()
                         if "registers" in line or "spill" in line)
        print(f"{label:24s} shared {kernel.metadata.shared:6d} B  {info}")


# ------------------------------------------------------------------------------------------ timing
def device_time_us(fn, quick: bool) -> float:
    return device_times_us({"fn": fn}, quick)["fn"]


def device_times_us(fns: dict, quick: bool) -> dict:
    """name -> median device us of ``fns[name]()`` (ColdL2Timer: the L2 flushed before each call, the functions
    timed in turn within each repetition); on the CPU, the wall time of one call each."""
    timer = ColdL2Timer("cuda" if torch.cuda.is_available() else "cpu", budget_s=0.05 if quick else 0.25)
    return timer.median_us_each({name: (lambda _set, fn=fn: fn()) for name, fn in fns.items()}, [None],
                                min_reps=5 if quick else 20)


def host_time_us(fn, n: int) -> float:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples)


def matmul_tflops(device, quick: bool) -> float:
    """The bf16 dense matmul rate (8192 x 8192 x 8192, torch.matmul) under this timer: prefill's ceiling."""
    a = torch.randn(8192, 8192, device=device).to(torch.bfloat16)
    b = torch.randn(8192, 8192, device=device).to(torch.bfloat16)
    us = device_time_us(lambda: a @ b, quick)
    return 2.0 * 8192 ** 3 / us / 1e6


def copy_bandwidth_tbs(device) -> float:
    """Device-to-device copy bandwidth, bytes read plus written, over 1 GiB."""
    if device.type != "cuda":
        return float("nan")
    src = torch.empty(1 << 29, dtype=torch.int16, device=device).random_()
    dst = torch.empty_like(src)
    us = device_time_us(lambda: dst.copy_(src), quick=False)
    return 2 * src.numel() * 2 / us / 1e6


# ------------------------------------------------------------------------------------------ cases
class Problem:
    """One benchmark problem: page table (host + device), queries, and the cache it reads."""

    def __init__(self, cache, batch: int, qo_len: int, kv_len: int, seed: int, causal: bool = True):
        self.causal = causal
        gen = torch.Generator().manual_seed(seed)
        device = cache.device
        self.table = build_page_table([kv_len] * batch, PAGE, num_pages=cache.shape[0], shuffle=True,
                                      generator=gen, device=device)
        self.indptr_host = self.table.kv_indptr.cpu()
        self.last_host = self.table.kv_last_page_len.cpu()
        self.qo_host = torch.arange(batch + 1, dtype=torch.int32) * qo_len
        self.q = torch.randn(batch * qo_len, HQ, D, device=device, dtype=cache.dtype)
        self.batch, self.qo_len, self.kv_len = batch, qo_len, kv_len
        self.cache = cache

    def kv_bytes(self) -> int:
        return self.batch * self.kv_len * HKV * D * 2 * self.cache.element_size()

    def causal_flops(self) -> float:
        """4 x head_dim flops per (query, key) pair the mask keeps, per query head (every pair without a mask)."""
        if not self.causal:
            return 4.0 * D * HQ * self.qo_len * self.kv_len * self.batch
        shift = self.kv_len - self.qo_len
        pairs = sum(min(i + shift + 1, self.kv_len) for i in range(self.qo_len)) * self.batch
        return 4.0 * D * HQ * pairs


class RaggedProblem:
    """Prefill over contiguous (ragged) K/V: per request query and key counts, causal, queries aligned to the end
    of their keys."""

    causal = True

    def __init__(self, qo_lens, kv_lens, device, seed: int):
        gen = torch.Generator(device=device).manual_seed(seed)
        self.qo_lens, self.kv_lens = qo_lens, kv_lens
        self.qo_host = torch.tensor([0, *qo_lens], dtype=torch.int32).cumsum(0, dtype=torch.int32)
        self.kv_host = torch.tensor([0, *kv_lens], dtype=torch.int32).cumsum(0, dtype=torch.int32)
        self.batch, self.qo_len, self.kv_len = len(qo_lens), sum(qo_lens), sum(kv_lens)
        self.q = torch.randn(self.qo_len, HQ, D, device=device, generator=gen).to(torch.bfloat16)
        self.k = torch.randn(self.kv_len, HKV, D, device=device, generator=gen).to(torch.bfloat16)
        self.v = torch.randn(self.kv_len, HKV, D, device=device, generator=gen).to(torch.bfloat16)

    def causal_flops(self) -> float:
        pairs = sum(sum(min(i + kv - qo + 1, kv) for i in range(qo)) for qo, kv in zip(self.qo_lens, self.kv_lens))
        return 4.0 * D * HQ * pairs


def tilelang_prefill_config(device: torch.device, schedule: str = "fa3"):
    """The prefill sweep's TileLang column's config (TILELANG_SCHEDULES), or None where it cannot run (not CUDA, or
    TileLang not importable: said once)."""
    if device.type != "cuda":
        return None
    try:
        import tilelang  # noqa: F401
    except ImportError as exc:
        print(f"TileLang not importable ({exc}): no TileLang column")
        return None
    return TILELANG_SCHEDULES[schedule]


def ours_decode(p: Problem, ws, config=None):
    w = BatchDecodeWithPagedKVCacheWrapper(ws, "NHD", config=config)
    KERNELS["last"] = w._runner
    plan = lambda: w.plan(p.indptr_host, p.table.kv_indices, p.last_host, HQ, HKV, D, PAGE,  # noqa: E731
                          q_data_type=p.q.dtype)
    plan()
    out = torch.empty_like(p.q)
    return plan, lambda: w.run(p.q, p.cache, out=out), out


def ours_prefill(p: Problem, ws, config=None):
    w = BatchPrefillWithPagedKVCacheWrapper(ws, "NHD", config=config)
    KERNELS["last"] = w._runner
    plan = lambda: w.plan(p.qo_host, p.indptr_host, p.table.kv_indices, p.last_host, HQ, HKV, D, PAGE,  # noqa
                          causal=p.causal, q_data_type=p.q.dtype)
    plan()
    out = torch.empty_like(p.q)
    return plan, lambda: w.run(p.q, p.cache, out=out), out


def flashinfer_decode(p: Problem, ws, tensor_cores: bool):
    import flashinfer

    w = flashinfer.BatchDecodeWithPagedKVCacheWrapper(ws, "NHD", use_tensor_cores=tensor_cores)
    plan = lambda: w.plan(p.indptr_host, p.table.kv_indices, p.last_host, HQ, HKV, D, PAGE,  # noqa: E731
                          q_data_type=p.q.dtype, kv_data_type=p.cache.dtype)
    plan()
    out = torch.empty_like(p.q)
    return plan, lambda: w.run(p.q, p.cache, out=out), out


def flashinfer_prefill(p: Problem, ws, backend: str):
    import flashinfer

    w = flashinfer.BatchPrefillWithPagedKVCacheWrapper(ws, "NHD", backend=backend)
    plan = lambda: w.plan(p.qo_host, p.indptr_host, p.table.kv_indices, p.last_host, HQ, HKV, D, PAGE,  # noqa
                          causal=p.causal, q_data_type=p.q.dtype, kv_data_type=p.cache.dtype)
    plan()
    out = torch.empty_like(p.q)
    return plan, lambda: w.run(p.q, p.cache, out=out), out


def ours_ragged_prefill(p: RaggedProblem, ws, config=None):
    w = BatchPrefillWithRaggedKVCacheWrapper(ws, config=config)
    KERNELS["last"] = w._runner
    plan = lambda: w.plan(p.qo_host, p.kv_host, HQ, HKV, D, causal=True, q_data_type=p.q.dtype)  # noqa: E731
    plan()
    out = torch.empty_like(p.q)
    return plan, lambda: w.run(p.q, p.k, p.v, out=out), out


def flashinfer_ragged_prefill(p: RaggedProblem, ws, backend: str):
    import flashinfer

    w = flashinfer.BatchPrefillWithRaggedKVCacheWrapper(ws, "NHD", backend=backend)
    plan = lambda: w.plan(p.qo_host, p.kv_host, HQ, HKV, D, causal=True, q_data_type=p.q.dtype,  # noqa: E731
                          kv_data_type=p.k.dtype)
    plan()
    out = torch.empty_like(p.q)
    return plan, lambda: w.run(p.q, p.k, p.v, out=out), out


def rel_err(a, b) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def measure(make, quick: bool, plan_reps: int):
    return measure_in_turn({"it": make}, quick, plan_reps)["it"]


def measure_in_turn(makes: dict, quick: bool, plan_reps: int, may_fail: tuple = ()) -> dict:
    """name -> (device us of run(), host us of plan(), output) for each ``makes[name]()`` -> (plan, run, out), the
    runs timed in turn (device_times_us). A name in ``may_fail`` whose setup raises is reported and left out (one
    of FlashInfer's backends may be unavailable)."""
    made = {}
    for name, make in makes.items():
        try:
            plan, run, out = make()
            run()
        except Exception as exc:
            if name not in may_fail:
                raise
            print(f"{name} failed: {exc!r}")
            continue
        made[name] = (plan, run, out)
    times = device_times_us({name: run for name, (_, run, _) in made.items()}, quick)
    return {name: (times[name], host_time_us(plan, plan_reps), out) for name, (plan, _, out) in made.items()}


def graph_time_us(make, quick: bool) -> float:
    """Device time of run() replayed from a CUDA graph: the launch's host cost left out."""
    _, run, _ = make()
    run()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        run()
    return device_time_us(graph.replay, quick)


def run_host_us(make, reps: int = 200) -> float:
    """Median host time of one run() call (the launch path: argument handling and the launch itself)."""
    _, run, _ = make()
    run()
    torch.cuda.synchronize()
    t = host_time_us(run, reps)
    torch.cuda.synchronize()
    return t


def run_b2b(make) -> tuple[float, float]:
    """(host, wall) us per run() call, called back to back on the same inputs (host_cost.py)."""
    _, run, _ = make()
    calls, rounds = (200, 5) if torch.cuda.is_available() else (2, 1)
    return tuple(back_to_back_us(run, calls=calls, rounds=rounds))


def triton_launch_variant(fn):
    """Run ``fn`` with the launcher's direct path off (every launch through Triton's JIT)."""
    PagedAttentionLauncher.fast_launch = False
    try:
        return fn()
    finally:
        PagedAttentionLauncher.fast_launch = True


# ------------------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="few sizes, short timing (smoke test)")
    parser.add_argument("--sweep", action="store_true", help="also time kernel-config variants")
    parser.add_argument("--tune", action="store_true",
                        help="time the config variants first and run the table with the best per kind")
    parser.add_argument("--no-flashinfer", action="store_true")
    parser.add_argument("--prefill-sweep", action="store_true",
                        help="prefill only: the grid of requests x queries x KV, a row without a mask, a ragged row")
    parser.add_argument("--tilelang-schedule", choices=sorted(TILELANG_SCHEDULES), default="fa3",
                        help="the prefill sweep's TileLang column: persistent blocks, plain or with FA3's schedule")
    add_out_argument(parser)
    parser.add_argument("--compile-sm90", action="store_true", help="compile for sm_90 on any machine and stop")
    args = parser.parse_args()
    if args.compile_sm90:
        compile_sm90()
        return
    device = torch.device(args.device)
    use_fi = device.type == "cuda" and not args.no_flashinfer
    batches, lens = ((1, 2), (64,)) if args.quick else (DECODE_BATCHES, DECODE_LENS)
    prefill_cases = ((2, 16, 64),) if args.quick else PREFILL_CASES
    extra_prefill = []  # (kind, problem maker): the sweep's rows without a mask and with ragged K/V
    if args.prefill_sweep:
        batches = ()
        prefill_cases = ((1, 16, 16), (2, 16, 64)) if args.quick else PREFILL_SWEEP
        no_mask = (2, 16, 64) if args.quick else NO_MASK_CASE
        ragged = QUICK_RAGGED_CASE if args.quick else RAGGED_CASE
        extra_prefill = [("prefill (no mask)", lambda c=no_mask: Problem(cache, *c, seed=5, causal=False)),
                         ("prefill (ragged)", lambda c=ragged: RaggedProblem(*c, device, seed=6))]
    plan_reps = 20 if args.quick else 200

    max_tokens = max(max((b * n for b in batches for n in lens), default=0),
                     max(b * n for b, _, n in prefill_cases))
    cache = torch.empty(max_tokens // PAGE, 2, PAGE, HKV, D, dtype=torch.bfloat16, device=device).normal_()
    ws = torch.empty(256 << 20, dtype=torch.uint8, device=device)
    fi_ws = torch.empty(256 << 20, dtype=torch.uint8, device=device) if use_fi else None
    bandwidth = copy_bandwidth_tbs(device)
    floors = {}
    if device.type == "cuda":
        floors["empty_kernel_us"] = empty_kernel_us(lambda fn: device_time_us(fn, args.quick), device)
    ceiling = matmul_tflops(device, args.quick) if args.prefill_sweep and device.type == "cuda" else None
    tilelang_config = tilelang_prefill_config(device, args.tilelang_schedule) if args.prefill_sweep else None
    if ceiling:
        floors["bf16_matmul_tflops"] = ceiling
    rows, sweep_rows = [], []
    chosen = {"decode": None, "prefill": None}  # None: the wrappers' default (scheduler.choose_config)
    if args.tune:
        sweep_rows = run_sweep(cache, ws, args.quick, bandwidth)
        chosen = best_configs(sweep_rows)
        print(f"configs chosen by the sweep: {chosen}")

    for batch in batches:
        for kv_len in lens:
            p = Problem(cache, batch, 1, kv_len, seed=batch * 7 + kv_len)
            row = {"kind": "decode", "batch": batch, "qo_len": 1, "kv_len": kv_len, "bytes": p.kv_bytes()}
            makes = {"ours": lambda: ours_decode(p, ws, chosen["decode"])}
            if use_fi:
                makes.update({tc: lambda tc=tc: flashinfer_decode(p, fi_ws, tc) for tc in (False, True)})
            timed = measure_in_turn(makes, args.quick, plan_reps)
            row["ours_us"], row["ours_plan_us"], out = timed.pop("ours")
            if device.type == "cuda":
                row["read_floor_us"] = read_floor_us(lambda fn: device_time_us(fn, args.quick), cache, p.kv_bytes())
                row["ours_graph_us"] = graph_time_us(lambda: ours_decode(p, ws, chosen["decode"]), args.quick)
                if batch <= SMALL_BATCH:
                    row["ours_run_host_us"] = run_host_us(lambda: ours_decode(p, ws, chosen["decode"]))
                    row["ours_b2b_host_us"], row["ours_b2b_us"] = run_b2b(lambda: ours_decode(p, ws, chosen["decode"]))
                    row["ours_triton_launch_us"], _, _ = triton_launch_variant(
                        lambda: measure(lambda: ours_decode(p, ws, chosen["decode"]), args.quick, 1))
                    row["ours_triton_launch_run_host_us"] = triton_launch_variant(
                        lambda: run_host_us(lambda: ours_decode(p, ws, chosen["decode"])))
            if use_fi:
                fi = timed
                best = min(fi, key=lambda tc: fi[tc][0])
                row.update(fi_us=fi[best][0], fi_backend="tensor_cores" if best else "cuda_cores",
                           fi_plan_us=fi[best][1], fi_us_cuda_cores=fi[False][0], fi_us_tensor_cores=fi[True][0],
                           err_vs_fi=rel_err(out, fi[best][2]))
                if batch <= SMALL_BATCH:
                    row["fi_run_host_us"] = run_host_us(lambda: flashinfer_decode(p, fi_ws, best))
                    row["fi_b2b_host_us"], row["fi_b2b_us"] = run_b2b(lambda: flashinfer_decode(p, fi_ws, best))
            rows.append(row)
            print_row(row, bandwidth)
    problems = [("prefill", lambda c=c: Problem(cache, c[0], c[1], c[2], seed=c[0] + c[1])) for c in prefill_cases]
    for kind, make_problem in problems + extra_prefill:
        p = make_problem()
        ours, theirs = ((ours_ragged_prefill, flashinfer_ragged_prefill) if isinstance(p, RaggedProblem)
                        else (ours_prefill, flashinfer_prefill))
        row = {"kind": kind, "batch": p.batch, "qo_len": p.qo_len, "kv_len": p.kv_len, "flops": p.causal_flops()}
        if ceiling:
            row["ceiling_tflops"] = ceiling
        makes = {"ours": lambda: ours(p, ws, chosen["prefill"])}
        if tilelang_config is not None:
            makes["tl"] = lambda: ours(p, ws, tilelang_config)
        if use_fi:
            makes.update({backend: lambda b=backend: theirs(p, fi_ws, b) for backend in ("fa2", "fa3")})
        timed = measure_in_turn(makes, args.quick, plan_reps, may_fail=("fa2", "fa3"))
        row["ours_us"], row["ours_plan_us"], out = timed.pop("ours")
        # Back to back (1000 calls) only where a call is short: at 16 x 8192 queries over 16384 a call takes ~50 ms.
        b2b = device.type == "cuda" and row["ours_us"] < B2B_BELOW_US
        if b2b:
            row["ours_b2b_host_us"], row["ours_b2b_us"] = run_b2b(lambda: ours(p, ws, chosen["prefill"]))
        if tilelang_config is not None:
            row["tl_us"], row["tl_plan_us"], tl_out = timed.pop("tl")
            row["err_tl_vs_ours"] = rel_err(tl_out, out)
            if b2b:  # what a user of the TileLang path pays per call: the host's time, and until the GPU is done
                row["tl_b2b_host_us"], row["tl_b2b_us"] = run_b2b(lambda: ours(p, ws, tilelang_config))
        if use_fi:
            fi = timed
            if fi:
                best = min(fi, key=lambda b: fi[b][0])
                row.update(fi_us=fi[best][0], fi_backend=best, fi_plan_us=fi[best][1],
                           **{f"fi_us_{b}": fi[b][0] for b in fi}, err_vs_fi=rel_err(out, fi[best][2]))
                if b2b:
                    row["fi_b2b_host_us"], row["fi_b2b_us"] = run_b2b(lambda: theirs(p, fi_ws, best))
        rows.append(row)
        print_row(row, bandwidth)

    configs = {k: asdict(v) if v else "default" for k, v in chosen.items()}
    name = "attention_prefill" if args.prefill_sweep else "attention"
    write_results(rows, sweep_rows, bandwidth, device, args.out, configs, floors, name)  # even if a later sweep runs
    if args.sweep and not args.tune:
        sweep_rows = run_sweep(cache, ws, args.quick, bandwidth)
        write_results(rows, sweep_rows, bandwidth, device, args.out, configs, floors, name)


def best_configs(sweep_rows: list[dict]) -> dict:
    """Per kind, the config with the smallest geometric-mean time over the sweep's cases (all cases timed)."""
    best = {}
    for kind in ("decode", "prefill"):
        scores: dict = {}
        for r in sweep_rows:
            if r["kind"] == kind:
                key = tuple(r["config"].values())
                scores.setdefault(key, []).append(math.log(r["us"]))
        cases = max((len(v) for v in scores.values()), default=0)
        complete = {k: sum(v) for k, v in scores.items() if len(v) == cases}
        best[kind] = KernelConfig(*min(complete, key=complete.get)) if complete else None
    return best


def run_sweep(cache, ws, quick: bool, bandwidth: float) -> list[dict]:
    """Time each kernel-config variant on representative sizes (tuning data, not the headline table)."""
    decode_cases = ((1, 1, 64),) if quick else tuple((b, 1, n) for b, n in (
        (1, 4096), (16, 1024), (16, 4096), (64, 1024), (64, 4096), (256, 8192)))
    prefill_cases = ((2, 16, 64),) if quick else PREFILL_CASES
    return (_sweep_kind("decode", SWEEP_DECODE, decode_cases, ours_decode, cache, ws, quick, seed=1)
            + _sweep_kind("prefill", SWEEP_PREFILL, prefill_cases, ours_prefill, cache, ws, quick, seed=2))


def _sweep_kind(kind, configs, cases, make, cache, ws, quick, seed) -> list[dict]:
    """Time every config on every (batch, qo_len, kv_len) case; a config that fails is reported and skipped."""
    results = []
    for config in configs:
        for batch, qo_len, kv_len in cases:
            p = Problem(cache, batch, qo_len, kv_len, seed=seed)
            try:
                us, _, _ = measure(lambda: make(p, ws, config), quick, 1)
            except Exception as exc:
                print(f"sweep {config} failed: {exc!r}")
                break
            row = {"kind": kind, "config": asdict(config), "batch": batch, "qo_len": qo_len, "kv_len": kv_len,
                   "us": us, **kernel_resources()}
            if kind == "decode":
                row["tbs"] = p.kv_bytes() / us / 1e6
                speed = f"{row['tbs']:.2f} TB/s"
            else:
                row["tflops"] = p.causal_flops() / us / 1e6
                speed = f"{row['tflops']:.0f} TFLOP/s"
            results.append(row)
            print(f"sweep {kind} {batch}x{qo_len}x{kv_len} {config}: {us:.1f} us {speed} {kernel_resources()}")
    return results


def rate(row: dict, bandwidth: float) -> tuple[str, str]:
    if row["kind"] == "decode":
        tbs = row["bytes"] / row["ours_us"] / 1e6
        return f"{tbs:.2f} TB/s", f"{tbs / bandwidth:.0%}" if bandwidth == bandwidth else "-"
    tflops = row["flops"] / row["ours_us"] / 1e6
    return f"{tflops:.0f} TFLOP/s", f"{tflops / row.get('ceiling_tflops', BF16_PEAK_TFLOPS):.0%}"


def table_lines(rows: list[dict], bandwidth: float) -> list[str]:
    head = ("| kind | batch x q | kv | ours us | rate | of ceiling | FlashInfer us (backend) | ours/FI speed "
            "| plan us ours | plan us FI | err vs FI | ours graph us | run() host us ours / FI "
            "| run() b2b host us/call ours / FI | run() b2b us/call ours / FI "
            "| ours us, Triton launch (host us) | K/V read floor us | TileLang us (FI/TileLang, err vs ours) "
            "| TileLang b2b host us/call / b2b us/call |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        value, share = rate(r, bandwidth)
        fi = f"{r['fi_us']:.1f} ({r['fi_backend']})" if "fi_us" in r else "-"
        speed = f"{r['fi_us'] / r['ours_us']:.2f}x" if "fi_us" in r else "-"
        fi_plan = f"{r['fi_plan_us']:.0f}" if "fi_plan_us" in r else "-"
        err = f"{r['err_vs_fi']:.1e}" if "err_vs_fi" in r else "-"
        graph = f"{r['ours_graph_us']:.1f}" if "ours_graph_us" in r else "-"
        host = (f"{r['ours_run_host_us']:.0f} / {r.get('fi_run_host_us', float('nan')):.0f}"
                if "ours_run_host_us" in r else "-")
        b2b_host = (f"{r['ours_b2b_host_us']:.1f} / {r.get('fi_b2b_host_us', float('nan')):.1f}"
                    if "ours_b2b_host_us" in r else "-")
        b2b = f"{r['ours_b2b_us']:.1f} / {r.get('fi_b2b_us', float('nan')):.1f}" if "ours_b2b_us" in r else "-"
        slow = (f"{r['ours_triton_launch_us']:.1f} ({r['ours_triton_launch_run_host_us']:.0f})"
                if "ours_triton_launch_us" in r else "-")
        floor = f"{r['read_floor_us']:.1f}" if "read_floor_us" in r else "-"
        tl = (f"{r['tl_us']:.1f} ({tilelang_vs_fi(r)}, {r['err_tl_vs_ours']:.1e})" if "tl_us" in r else "-")
        tl_b2b = f"{r['tl_b2b_host_us']:.1f} / {r['tl_b2b_us']:.1f}" if "tl_b2b_us" in r else "-"
        shape = (f"{r['batch']} ragged, {r['qo_len']} in all" if "ragged" in r["kind"]
                 else f"{r['batch']} x {r['qo_len']}")
        lines.append(f"| {r['kind']} | {shape} | {r['kv_len']} | {r['ours_us']:.1f} | {value} "
                     f"| {share} | {fi} | {speed} | {r['ours_plan_us']:.0f} | {fi_plan} | {err} | {graph} | {host} "
                     f"| {b2b_host} | {b2b} | {slow} | {floor} | {tl} | {tl_b2b} |")
    return lines


def tilelang_vs_fi(r: dict) -> str:
    """FlashInfer's time over the TileLang kernel's (> 1: faster), or "-"."""
    return f"{r['fi_us'] / r['tl_us']:.2f}x" if "fi_us" in r and "tl_us" in r else "-"


def print_row(row: dict, bandwidth: float) -> None:
    print(table_lines([row], bandwidth)[-1], flush=True)


KEY = ["kind", "case"]
COLUMNS = [*KEY, "ours us", "FlashInfer us", "ours / FI", "read floor us", "ours plan us"]
PREFILL_COLUMNS = [*COLUMNS, "TileLang us", "TileLang / FI"]
TITLE = """# Paged attention: device time per run()

`python3 -m benchmarks.bench_attention --out $OUT` (bf16, 32 q / 8 KV heads, head_dim 128, page 16): median
CUDA-event us of one run() with a cold L2, the implementations timed in turn within each repetition, ours beside
FlashInfer's wrappers (its better backend); "ours / FI" is
FlashInfer's time over ours (> 1: faster); "read floor" the time this timer gives a kernel that only reads the same
K/V bytes; "ours plan us" plan()'s host time. Decode cases are batch x KV tokens, prefill batch x query / KV tokens.
One row per machine, kind and case, the latest run of each; the latest run's full output (rates, host cost back to
back, CUDA graph, errors) is `attention_latest.md` beside this file, with `attention_latest.json`."""


PREFILL_SWEEP_TITLE = """# Prefill sweep: device time per run() (issue #18)

`python3 -m benchmarks.bench_attention --prefill-sweep --out $OUT` (bf16, 32 q / 8 KV heads, head_dim 128, page
16): median CUDA-event us of one run() with a cold L2, the implementations timed in turn within each repetition, ours
beside FlashInfer's prefill wrappers (the better of fa2 and fa3); "ours / FI" is FlashInfer's time over ours (> 1:
faster); "TileLang" the TileLang kernels (`HopperPrefillConfig(language="tilelang")`, prefill_tilelang.py) where
TileLang imports. Causal at 1-16 requests x 512-8192 queries over KV of up to 16384 (queries aligned to the end of
the KV), a row without a mask and a ragged row (contiguous K/V).
The run's full output, with TFLOP/s against the bf16 matmul rate measured in the same run, is
`attention_prefill_latest.md` beside this file."""


def table_rows(rows: list[dict]) -> list[dict]:
    """The results table's rows of a run's rows."""
    out = []
    for r in rows:
        case = (f"{r['batch']} x {r['kv_len']}" if r["kind"] == "decode"
                else f"{r['batch']} ragged, {r['qo_len']} / {r['kv_len']} in all" if "ragged" in r["kind"]
                else f"{r['batch']} x {r['qo_len']} / {r['kv_len']}")
        out.append({"kind": r["kind"], "case": case, "ours us": r["ours_us"], "FlashInfer us": r.get("fi_us", "-"),
                    "ours / FI": f"{r['fi_us'] / r['ours_us']:.2f}x" if "fi_us" in r else "-",
                    "read floor us": r.get("read_floor_us", "-"), "ours plan us": r["ours_plan_us"],
                    "TileLang us": r.get("tl_us", "-"), "TileLang / FI": tilelang_vs_fi(r)})
    return out


def write_results(rows, sweep_rows, bandwidth, device, out_dir, configs, floors, results="attention") -> None:
    """Print the run's table and, with ``out_dir``, publish it as ``results`` (the results table
    ``<results>.md``, the run's ``<results>_latest.md`` and ``<results>_latest.json``)."""
    run = stamp(str(device))
    name = run.machine
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    meta = {"date": when, "device": name, "torch": torch.__version__, "copy_bandwidth_tbs": bandwidth,
            "bf16_peak_tflops": BF16_PEAK_TFLOPS, "kernel_configs": configs, **floors}
    try:
        import triton

        meta["triton"] = triton.__version__
        import flashinfer

        meta["flashinfer"] = flashinfer.__version__
    except ImportError:
        pass
    lines = [f"# Paged attention: kernelarena vs FlashInfer ({name}, {when})", "",
             f"bf16, {HQ} q / {HKV} kv heads, head_dim {D}, page {PAGE}; copy bandwidth {bandwidth:.2f} TB/s; "
             f"versions {json.dumps({k: v for k, v in meta.items() if k in ('torch', 'triton', 'flashinfer')})}", "",
             f"kernelarena kernel configs: {json.dumps(configs)}; prefill on sm90: "
             f"KERNELARENA_HOPPER_PREFILL mode '{prefill_hopper.mode}' ('auto': our TileLang kernel where it serves "
             "the plan, so 'ours' and the TileLang column run the same kernel)", "",
             *([f"Floors under this timer: an empty kernel {floors['empty_kernel_us']:.1f} us; 'K/V read floor' is the "
                "fastest plain streaming read of the batch's K/V bytes (benchmarks/read_floor.py).", ""]
               if "empty_kernel_us" in floors else []),
             *([f"Prefill's ceiling ('of ceiling'): the bf16 matmul rate measured in this run, "
                f"{floors['bf16_matmul_tflops']:.0f} TFLOP/s (8192^3, torch.matmul).", ""]
               if "bf16_matmul_tflops" in floors else []),
             *table_lines(rows, bandwidth)]
    text = "\n".join(lines)
    print("\n" + text)
    if out_dir is None:
        return
    title, columns = (TITLE, COLUMNS) if results == "attention" else (PREFILL_SWEEP_TITLE, PREFILL_COLUMNS)
    path = publish(results, out_dir, text, title, key=KEY, columns=columns, rows=table_rows(rows), run=run)
    with open(out_dir / f"{results}_latest.json", "w") as f:
        json.dump({"meta": meta, "rows": rows, "sweep": sweep_rows}, f, indent=1)
    print(f"wrote {path} and {out_dir / f'{results}_latest.md'}")


if __name__ == "__main__":
    main()
