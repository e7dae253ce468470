"""Example 01: a paged KV cache, its CSR page table, and plan/run attention for decode and prefill.

    python examples/01_attention_basics/attention_basics.py

On a CPU the Triton kernels run under Triton's interpreter (set below) with tiny shapes; on a GPU the shapes
are Llama-3.1-8B's (32 query heads, 8 KV heads, head_dim 128) and FlashInfer runs beside ours when installed.
"""

import importlib.util
import math
import os

import torch

GPU = torch.cuda.is_available()
if not GPU:
    os.environ.setdefault("TRITON_INTERPRET", "1")  # must be set before any Triton kernel is defined

from kernelarena.kernels.attention import (  # noqa: E402
    BatchDecodeWithPagedKVCacheWrapper,
    BatchPrefillWithPagedKVCacheWrapper,
    append_paged_kv_cache,
    build_page_table,
)
from kernelarena.kernels.attention.reference import batch_attention_reference  # noqa: E402

DEVICE = "cuda" if GPU else "cpu"
HQ, HKV, D, PAGE = (32, 8, 128, 16) if GPU else (4, 2, 64, 4)
KV_LENS = [1000, 37, 4096, 513] if GPU else [5, 9, 1]
DTYPE = torch.bfloat16
SCALE = 1 / math.sqrt(D)
generator = torch.Generator().manual_seed(0)


def section(title: str) -> None:
    print(f"\n== {title}")


def max_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.double() - ref.double()).abs().max())


def time_ms(fn, reps: int = 50) -> float:
    """Mean GPU time of fn() in ms over ``reps`` back-to-back calls (CUDA events; L2 stays warm)."""
    fn()
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    begin.record()
    for _ in range(reps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return begin.elapsed_time(end) / reps


section("1. the paged KV cache and its CSR page table")
# Each request owns whole pages, in any order; kv_indices lists them request after request, kv_indptr[b] is
# where request b's pages start, and kv_last_page_len[b] says how full its last page is.
num_pages = sum(-(-n // PAGE) for n in KV_LENS) + 2  # two spare pages: the pool is larger than the batch
table = build_page_table(KV_LENS, PAGE, num_pages=num_pages, shuffle=True, generator=generator, device=DEVICE)
print(f"kv lengths {KV_LENS}, page size {PAGE}")
print("kv_indptr       ", table.kv_indptr.tolist())
print("kv_indices      ", table.kv_indices.tolist()[:16], "..." if table.kv_indices.numel() > 16 else "")
print("kv_last_page_len", table.kv_last_page_len.tolist())
k_cache = torch.zeros(num_pages, PAGE, HKV, D, dtype=DTYPE, device=DEVICE)  # NHD: [pages, page, heads, dim]
v_cache = torch.zeros_like(k_cache)
# Fill the cache the way a server does after prefill: append every request's tokens at its positions.
total = sum(KV_LENS)
append_indptr = torch.tensor([0] + list(torch.tensor(KV_LENS).cumsum(0)), dtype=torch.int32, device=DEVICE)
new_k = torch.randn(total, HKV, D, generator=generator).to(DTYPE).to(DEVICE)
new_v = torch.randn(total, HKV, D, generator=generator).to(DTYPE).to(DEVICE)
append_paged_kv_cache(new_k, new_v, append_indptr, (k_cache, v_cache), table)
print(f"cache {tuple(k_cache.shape)} (NHD) per K and V, {total} tokens written through the page table")

section("2. decode: one new query token per request (plan once per batch, run per layer)")
workspace = torch.empty(128 << 20 if GPU else 8 << 20, dtype=torch.uint8, device=DEVICE)
decode = BatchDecodeWithPagedKVCacheWrapper(workspace, "NHD")
# plan() schedules on the host; pass indptr and last_page_len as CPU tensors so it needs no device sync.
decode.plan(table.kv_indptr.cpu(), table.kv_indices, table.kv_last_page_len.cpu(), HQ, HKV, D, PAGE,
            q_data_type=DTYPE, sm_scale=SCALE)
q = torch.randn(len(KV_LENS), HQ, D, generator=generator).to(DTYPE).to(DEVICE)
out, lse = decode.run(q, (k_cache, v_cache), return_lse=True)
qo_indptr = torch.arange(len(KV_LENS) + 1, device=DEVICE)
ref_out, ref_lse = batch_attention_reference(q, k_cache, v_cache, qo_indptr, table.kv_indptr, table.kv_indices,
                                             table.kv_last_page_len, sm_scale=SCALE)
print(f"out {tuple(out.shape)}, lse {tuple(lse.shape)} (base 2); max |error| vs float64 reference: "
      f"out {max_error(out, ref_out):.2e} (bf16 output), lse {max_error(lse, ref_lse):.2e} (float32)")
# Which kernel plan() chose (an internal attribute, read here to show the rule): on a GPU, decode batches with
# fewer (request, KV head) pairs than SMs go to a CUDA kernel made for latency; everything else, and every
# CPU run, to the persistent Triton kernel.
kernel = "CUDA small-batch decode" if getattr(decode._runner, "_small", None) is not None else "persistent Triton"
print(f"kernel chosen by plan(): {kernel} ({len(KV_LENS)} requests x {HKV} KV heads = {len(KV_LENS) * HKV} pairs)")

section("3. prefill: many query tokens per request, causal")
q_lens = [min(n, 64 if GPU else 3) for n in KV_LENS]  # the last q_len tokens of each request are the new ones
prefill_indptr = torch.tensor([0] + list(torch.tensor(q_lens).cumsum(0)), dtype=torch.int32)
prefill = BatchPrefillWithPagedKVCacheWrapper(workspace, "NHD")
prefill.plan(prefill_indptr, table.kv_indptr.cpu(), table.kv_indices, table.kv_last_page_len.cpu(), HQ, HKV, D,
             PAGE, causal=True, q_data_type=DTYPE, sm_scale=SCALE)
q_pre = torch.randn(sum(q_lens), HQ, D, generator=generator).to(DTYPE).to(DEVICE)
out_pre = prefill.run(q_pre, (k_cache, v_cache))
ref_pre, _ = batch_attention_reference(q_pre, k_cache, v_cache, prefill_indptr.to(DEVICE), table.kv_indptr,
                                       table.kv_indices, table.kv_last_page_len, causal=True, sm_scale=SCALE)
print(f"query lengths {q_lens}: out {tuple(out_pre.shape)}, max |error| {max_error(out_pre, ref_pre):.2e}")
# On an H100/H200 with TileLang installed, prefill with pages of 16+ tokens goes to the TileLang Hopper kernel (its
# first call compiles it, 10-30 s); elsewhere to the persistent Triton kernel.
kernel = "TileLang Hopper prefill" if getattr(prefill._runner, "_hopper", None) is not None else "persistent Triton"
print(f"prefill kernel chosen by plan(): {kernel}")

section("4. the same calls on FlashInfer, side by side")
if not GPU or importlib.util.find_spec("flashinfer") is None:
    print("skipped: FlashInfer needs a GPU and the flashinfer package "
          f"({'no GPU here' if not GPU else 'flashinfer is not installed'})")
else:
    import flashinfer

    fi_decode = flashinfer.BatchDecodeWithPagedKVCacheWrapper(workspace, "NHD")
    fi_decode.plan(table.kv_indptr, table.kv_indices, table.kv_last_page_len, HQ, HKV, D, PAGE,
                   q_data_type=DTYPE, sm_scale=SCALE)
    fi_out = fi_decode.run(q, (k_cache, v_cache))
    print(f"decode: ours vs FlashInfer max |difference| {max_error(out, fi_out):.2e}")
    ours_ms = time_ms(lambda: decode.run(q, (k_cache, v_cache)))
    theirs_ms = time_ms(lambda: fi_decode.run(q, (k_cache, v_cache)))
    print(f"decode run(): ours {ours_ms * 1e3:.1f} us, FlashInfer {theirs_ms * 1e3:.1f} us (mean of 50, warm L2)")
print("\nok")
