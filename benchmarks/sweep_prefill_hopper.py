"""Hopper prefill sweep (issue #18): the portable Triton kernel, each HopperPrefillConfig variant, and FlashInfer.

Cases (bf16, 32 query / 8 KV heads, head_dim 128, causal, queries aligned to the end of the KV):
  4x1024   paged, page 16, pages in random order: 4 requests x 1024 queries over 4096 keys
  16x512   paged, the same: 16 x 512 over 4096
  ragged   contiguous K/V (the ragged wrapper), 8 requests of 128-2048 queries over 512-4096 keys
Each variant's output is first checked against torch SDPA in float32 (relative error < 2e-2), then timed:
median CUDA-event time with the L2 flushed before each call (kernelarena.bench.timing.ColdL2Timer).
TFLOP/s counts 4 x head_dim flops per visible (query, key) pair per query head. FlashInfer (backend "auto",
fa3 on sm90) is the baseline when it imports. The sweep keeps to ``--budget-s`` (default 65 s): variants
are compiled and timed in priority order and the rest are skipped, with a note, once a case's share is spent
(compiles are paid by the first case of each kind, so the shares are 55%, 70% and 100% of the budget).

    source benchmarks/gpu_env.sh && python3 -m benchmarks.sweep_prefill_hopper --out $OUT     # GPU (sm90)
    python3 -m benchmarks.sweep_prefill_hopper --dry-run       # CPU: tiny sizes under Triton's interpreter
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional

if __name__ == "__main__" and "--dry-run" in sys.argv:
    # Triton decides at import whether kernels are interpreted; the kernels below are imported next.
    os.environ.setdefault("TRITON_INTERPRET", "1")

import torch  # noqa: E402

from benchmarks.common import add_out_argument, markdown_table, publish, stamp  # noqa: E402
from kernelarena.bench.timing import ColdL2Timer  # noqa: E402
from kernelarena.kernels.attention import (  # noqa: E402
    BatchPrefillWithPagedKVCacheWrapper,
    BatchPrefillWithRaggedKVCacheWrapper,
    HopperPrefillConfig,
    build_page_table,
)
from kernelarena.kernels.attention.kernel_config import choose_config  # noqa: E402
from kernelarena.kernels.attention.prefill_hopper import TILELANG_CONFIG, TILELANG_CONFIG_D256  # noqa: E402

NAME = "sweep_prefill_hopper"
TOLERANCE = 2e-2  # relative (Frobenius) error against float32 SDPA; bf16 outputs land near 4e-3
# Priority order: the first ones are the most likely winners, so a short budget still times them.
# (block_m, block_n, warps, stages, pack_gqa, use_tma[, language, overlap, pingpong, persistent]). The TileLang kernels
# (prefill_tilelang.py) first: 128 x 128 tiles over two consumer warpgroups, as FlashAttention-3 for head_dim 128;
# FA3's schedule (overlap and ping-pong) and its parts. Three stages and 64-key blocks measured slower (0.83-0.84x
# and 0.70-0.71x FlashInfer against 0.89-0.90x, H200, 2026-12-03). The TileLang kernels are compiled with nvcc's
# --use_fast_math, as FlashInfer's are, and their persistent blocks take tiles from a counter; "static" variants take
# them in turn and "ieee" ones are built without fast math (both: the kernels of session 19's tables), for an A/B.
# For the Triton kernel with gathered (paged) K/V, 5+ stages are needed for two
# K/V blocks in flight (the page-index load takes a stage; shared memory 98.8 KB at 5 stages vs 65.8 KB at 3-4,
# compiled for sm_90 with Triton 3.9 on the CPU machine).
GPU_VARIANTS = [HopperPrefillConfig(*v) for v in (
    (128, 128, 8, 2, False, True, "tilelang", True, True, True),
    (128, 128, 8, 2, False, True, "tilelang", False, False, True),
    (128, 128, 8, 2, False, True, "tilelang", True, True, True, True, False),
    (128, 128, 8, 2, False, True, "tilelang", False, False, True, True, False),
    (128, 128, 8, 2, False, True, "tilelang", True, True, True, False, False),
    (128, 128, 8, 2, False, True, "tilelang", False, False, True, False, False),
    (128, 128, 8, 5, False, True),
    (128, 64, 8, 5, True, True),
    (128, 64, 8, 3, True, True),
    (128, 64, 8, 5, False, True),
    (128, 128, 8, 4, True, True),
    (128, 64, 8, 6, True, False),
    (128, 128, 8, 3, True, True),
    (128, 64, 8, 4, True, True),
    (128, 64, 8, 5, False, False),
    (64, 64, 4, 5, True, True),
)]
CPU_VARIANTS = [HopperPrefillConfig(*v) for v in (
    (32, 16, 4, 1, True, True), (16, 16, 4, 1, False, True), (32, 16, 4, 1, True, False),
    (32, 16, 4, 1, False, True, "tilelang"))]


@dataclass(frozen=True)
class Shape:
    """Head counts, head size, page size and dtype of a sweep."""

    hq: int
    hkv: int
    d: int
    page: int
    dtype: torch.dtype


GPU_SHAPE = Shape(32, 8, 128, 16, torch.bfloat16)
# --head-dim 256: the paged cases only (FlashInfer's ragged fa3 module for 256 is not among the ones carried), against
# the TileLang kernel's 64-key blocks (128-key ones do not fit shared memory at 256), FA3's schedule and plain.
D256_SHAPE = Shape(32, 8, 256, 16, torch.bfloat16)
D256_VARIANTS = [TILELANG_CONFIG_D256, HopperPrefillConfig(128, 64, 8, 2, False, True, "tilelang", persistent=True)]
# --head-dim 64: every case (FlashInfer's fa3 modules for 64, paged and ragged, come with
# `flashinfer_aot_local --only head_dim_qk_64 --out .fi-cache-d64`), the TileLang kernel's 128-key blocks with FA3's
# schedule (the config the Hopper path picks for 64) and plain.
D64_SHAPE = Shape(32, 8, 64, 16, torch.bfloat16)
D64_VARIANTS = [TILELANG_CONFIG, HopperPrefillConfig(128, 128, 8, 2, False, True, "tilelang", persistent=True)]
CPU_SHAPE = Shape(4, 2, 64, 4, torch.bfloat16)


@dataclass(frozen=True)
class Case:
    """A batch: per request query and KV lengths; ``ragged``: contiguous K/V instead of a paged cache."""

    name: str
    qo_lens: tuple
    kv_lens: tuple
    ragged: bool

    def visible_pairs(self) -> int:
        """(query, key) pairs a causal mask keeps, queries aligned to the end of the KV."""
        total = 0
        for qo, kv in zip(self.qo_lens, self.kv_lens):
            shift = kv - qo
            total += sum(min(max(i + shift + 1, 0), kv) for i in range(qo))
        return total


GPU_CASES = (
    Case("4x1024", (1024,) * 4, (4096,) * 4, False),
    Case("16x512", (512,) * 16, (4096,) * 16, False),
    Case("ragged", (1024, 512, 2048, 256, 768, 1536, 128, 1024), (4096, 2048, 4096, 512, 1024, 4096, 4096, 2048),
         True),
)
CPU_CASES = (
    Case("2x24", (24,) * 2, (56,) * 2, False),
    Case("ragged", (9, 20, 3), (30, 20, 41), True),
)
CASE_SHARES = (0.55, 0.70, 1.0)  # cumulative budget fractions by case index (compiles happen in cases 0 and 2)


class Inputs:
    """One case's tensors: queries, the paged cache (or ragged K/V), the page table, and the float32 SDPA
    reference output."""

    def __init__(self, case: Case, shape: Shape, device: str, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)  # page order (build_page_table draws on the CPU)
        data = torch.Generator(device=device).manual_seed(seed)  # tensors drawn where they live: 268 MB at 16x512
        s = shape
        self.case, self.shape = case, shape
        self.qo_indptr = _indptr(case.qo_lens)
        self.kv_indptr = _indptr(case.kv_lens)
        total_q, total_kv = int(self.qo_indptr[-1]), int(self.kv_indptr[-1])
        self.q = torch.randn(total_q, s.hq, s.d, generator=data, device=device).to(s.dtype)
        if case.ragged:
            self.k = torch.randn(total_kv, s.hkv, s.d, generator=data, device=device).to(s.dtype)
            self.v = torch.randn(total_kv, s.hkv, s.d, generator=data, device=device).to(s.dtype)
            per_request = [(self.k[a:b], self.v[a:b]) for a, b in zip(self.kv_indptr[:-1], self.kv_indptr[1:])]
        else:
            self.table = build_page_table(case.kv_lens, s.page, shuffle=True, generator=gen, device=device)
            pages = int(self.table.kv_indptr[-1])
            self.cache = torch.randn(pages, 2, s.page, s.hkv, s.d, generator=data, device=device, dtype=s.dtype)
            per_request = []
            for b, kv_len in enumerate(case.kv_lens):
                idx = self.table.kv_indices[int(self.table.kv_indptr[b]):int(self.table.kv_indptr[b + 1])].long()
                flat = self.cache[idx].transpose(0, 1).reshape(2, -1, s.hkv, s.d)[:, :kv_len]
                per_request.append((flat[0], flat[1]))
        self.reference = sdpa_reference(self.q, per_request, self.qo_indptr, s)

    def flops(self) -> float:
        return 4.0 * self.shape.d * self.shape.hq * self.case.visible_pairs()


def _indptr(lens) -> torch.Tensor:
    out = torch.zeros(len(lens) + 1, dtype=torch.int32)
    out[1:] = torch.cumsum(torch.tensor(lens, dtype=torch.int32), 0)
    return out


def sdpa_reference(q: torch.Tensor, per_request, qo_indptr: torch.Tensor, s: Shape) -> torch.Tensor:
    """Causal attention per request in float32 with torch SDPA (query i sees keys <= i + kv_len - qo_len)."""
    out = torch.zeros(q.shape, dtype=torch.float32, device=q.device)
    group = s.hq // s.hkv
    for b, (k, v) in enumerate(per_request):
        q0, q1 = int(qo_indptr[b]), int(qo_indptr[b + 1])
        qo, kv = q1 - q0, k.shape[0]
        if qo == 0 or kv == 0:
            continue
        qb = q[q0:q1].float().transpose(0, 1)  # [Hq, qo, D]
        kb = k.float().repeat_interleave(group, dim=1).transpose(0, 1)
        vb = v.float().repeat_interleave(group, dim=1).transpose(0, 1)
        keep = torch.arange(kv, device=q.device)[None, :] <= torch.arange(qo, device=q.device)[:, None] + (kv - qo)
        o = torch.nn.functional.scaled_dot_product_attention(qb, kb, vb, attn_mask=keep, scale=1 / math.sqrt(s.d))
        out[q0:q1] = torch.where(keep.any(1)[None, :, None], o, 0.0).transpose(0, 1)
    return out


# ------------------------------------------------------------------------------------------ runners
def ours(x: Inputs, ws: torch.Tensor, config) -> Callable[[], torch.Tensor]:
    """Plan our wrapper with ``config`` (a KernelConfig: the portable kernel; a HopperPrefillConfig: the Hopper
    kernel); returns a call that runs it into a fixed output."""
    s, out = x.shape, torch.empty_like(x.q)
    if x.case.ragged:
        w = BatchPrefillWithRaggedKVCacheWrapper(ws, config=config)
        w.plan(x.qo_indptr, x.kv_indptr, s.hq, s.hkv, s.d, causal=True, q_data_type=s.dtype)
        return lambda: w.run(x.q, x.k, x.v, out=out)
    t = x.table
    w = BatchPrefillWithPagedKVCacheWrapper(ws, "NHD", config=config)
    w.plan(x.qo_indptr, t.kv_indptr.cpu(), t.kv_indices, t.kv_last_page_len.cpu(), s.hq, s.hkv, s.d, s.page,
           causal=True, q_data_type=s.dtype)
    return lambda: w.run(x.q, x.cache, out=out)


def portable_config(x: Inputs, num_sms: int):
    """The portable kernel's default config for this case, fixed (so KERNELARENA_HOPPER_PREFILL cannot swap it)."""
    s = x.shape
    group = s.hq // s.hkv
    return choose_config(s.d, group, max(x.case.qo_lens) * group, x.q.is_cuda, len(x.case.qo_lens) * s.hkv,
                         num_sms)


def flashinfer(x: Inputs, ws: torch.Tensor) -> Callable[[], torch.Tensor]:
    """FlashInfer's wrapper for the case, backend "auto" (fa3 on sm90)."""
    import flashinfer as fi

    s, out = x.shape, torch.empty_like(x.q)
    qo, kv = x.qo_indptr, x.kv_indptr  # host indptrs, as a serving engine passes them
    if x.case.ragged:
        w = fi.BatchPrefillWithRaggedKVCacheWrapper(ws, "NHD", backend="auto")
        w.plan(qo, kv, s.hq, s.hkv, s.d, causal=True, q_data_type=s.dtype, kv_data_type=s.dtype)
        return lambda: w.run(x.q, x.k, x.v, out=out)
    t = x.table
    w = fi.BatchPrefillWithPagedKVCacheWrapper(ws, "NHD", backend="auto")
    w.plan(qo, t.kv_indptr.cpu(), t.kv_indices, t.kv_last_page_len.cpu(), s.hq, s.hkv, s.d, s.page, causal=True,
           q_data_type=s.dtype, kv_data_type=s.dtype)
    return lambda: w.run(x.q, x.cache, out=out)


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    return ((out.float() - ref).norm() / ref.norm().clamp_min(1e-12)).item()


# ------------------------------------------------------------------------------------------ sweep
def sweep(cases, shape: Shape, variants, device: str, budget_s: float, with_flashinfer: bool) -> list[dict]:
    """Rows (case, variant, us, TFLOP/s, vs FI, err, note) for every case and variant, in run order."""
    t0 = time.perf_counter()
    ws = torch.empty(128 << 20, dtype=torch.uint8, device=device)
    num_sms = torch.cuda.get_device_properties(device).multi_processor_count if device != "cpu" else 2
    timer = ColdL2Timer(device, budget_s=0.1)
    rows = []
    for index, case in enumerate(cases):
        deadline = t0 + budget_s * CASE_SHARES[min(index, len(CASE_SHARES) - 1)]
        if index == len(cases) - 1:
            deadline = t0 + budget_s
        x = Inputs(case, shape, device, seed=index)
        flops = x.flops()
        entries = [("ours (portable)", lambda x=x: ours(x, ws, portable_config(x, num_sms)))]
        if with_flashinfer:
            entries.append(("flashinfer", lambda x=x: flashinfer(x, ws)))
        entries += [(f"hopper {c.label}", lambda x=x, c=c: ours(x, ws, c)) for c in variants]
        case_rows = []
        for name, make in entries:
            row = {"case": case.name, "variant": name}
            case_rows.append(row)
            if time.perf_counter() > deadline and name not in ("ours (portable)", "flashinfer"):
                row["note"] = "skipped: over budget"
                continue
            try:
                run = make()
                out = run()
                if device != "cpu":
                    torch.cuda.synchronize()
                err = rel_err(out, x.reference)
                row["err"] = f"{err:.2e}"
                if not err < TOLERANCE:
                    row["note"] = "WRONG: not timed"
                    continue
                us = timer.median_us(lambda _: run(), [None], min_reps=5 if device != "cpu" else 1, max_reps=100)
            except Exception as exc:  # a config that fails to compile or launch is a result of the sweep
                row["note"] = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
                continue
            row["us"] = us
            row["TFLOP/s"] = flops / us / 1e6
        base = next((r.get("us") for r in case_rows if r["variant"] == "flashinfer"), None)
        for row in case_rows:
            if base and row.get("us"):
                row["vs FI"] = f"{base / row['us']:.2f}x"
            print(" | ".join(str(row.get(c, "-")) for c in COLUMNS), flush=True)
        rows += case_rows
    return rows


KEY = ["case", "variant"]
COLUMNS = [*KEY, "us", "TFLOP/s", "vs FI", "err", "note"]
TITLE = """# Hopper prefill sweep (issue #18)

`python3 -m benchmarks.sweep_prefill_hopper --out $OUT`: bf16, 32/8 heads, head_dim 128, causal; median CUDA-event
time with the L2 flushed before each call; vs FI = FlashInfer's time / ours (above 1: faster); err = relative
error against float32 SDPA. Variant names: m<block_m>n<block_n>w<warps>s<stages>, pack (GQA rows) or head
(one query head per tile), tma (Q/O and ragged K/V through tensor descriptors)."""


def main(argv: Optional[list] = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_out_argument(parser)
    parser.add_argument("--dry-run", action="store_true", help="CPU: tiny sizes, Triton's interpreter, no FlashInfer")
    parser.add_argument("--budget-s", type=float, default=65.0,
                        help="wall-clock budget of the sweep (imports and the table come on top: about 10 s)")
    parser.add_argument("--variants", type=int, default=None, help="time only the first N Hopper variants")
    parser.add_argument("--head-dim", type=int, choices=(64, 128, 256), default=128,
                        help="64: every case, 256: the paged cases, at that head_dim, the TileLang kernels only (GPU)")
    args = parser.parse_args(argv)
    name = NAME if args.head_dim == 128 else f"{NAME}_d{args.head_dim}"
    if args.dry_run:
        device, shape, cases, variants, with_fi = "cpu", CPU_SHAPE, CPU_CASES, CPU_VARIANTS, False
    else:
        if not torch.cuda.is_available():
            parser.error("no CUDA device: run on the GPU machine, or pass --dry-run")
        device, shape, cases, variants = "cuda", GPU_SHAPE, GPU_CASES, GPU_VARIANTS
        if args.head_dim == 256:
            shape, cases, variants = D256_SHAPE, tuple(c for c in GPU_CASES if not c.ragged), D256_VARIANTS
        elif args.head_dim == 64:
            shape, variants = D64_SHAPE, D64_VARIANTS
        try:
            import flashinfer  # noqa: F401

            with_fi = True
        except ImportError as exc:
            print(f"FlashInfer not importable ({exc}): no baseline column")
            with_fi = False
    variants = variants[: args.variants] if args.variants is not None else variants
    run = stamp(device)
    print(f"{run.machine}, {run.date}, torch {torch.__version__}, budget {args.budget_s:.0f} s")
    print(" | ".join(COLUMNS))
    start = time.perf_counter()
    rows = sweep(cases, shape, variants, device, args.budget_s, with_fi)
    title = TITLE if args.head_dim == 128 else TITLE.replace("head_dim 128", f"head_dim {args.head_dim}").replace(
        "sweep_prefill_hopper --out", f"sweep_prefill_hopper --head-dim {args.head_dim} --out")
    text = (f"{title}\n\n{run.machine}, {run.date}, torch {torch.__version__}; sweep took "
            f"{time.perf_counter() - start:.0f} s\n\n" + markdown_table(COLUMNS, rows))
    print(text)
    if args.out is not None:
        table = publish(name, args.out, text, title, KEY, COLUMNS, rows, run)
        print(f"wrote {table} and {args.out / (name + '_latest.md')}")
    return rows


if __name__ == "__main__":
    main()
