"""Paged attention on a CUDA GPU: full-size correctness against the float64 reference, and CUDA-graph replay.

The replay test captures run() once, re-plans with new sequence lengths inside the first plan's buffer
sizes, replays the graph and checks the result against the reference for the new batch.
"""

from __future__ import annotations

import pytest
import torch

from kernelarena.kernels.attention import (
    BatchDecodeWithPagedKVCacheWrapper,
    BatchPrefillWithPagedKVCacheWrapper,
    BatchPrefillWithRaggedKVCacheWrapper,
    allocate_paged_kv_cache,
    build_page_table,
)
from kernelarena.kernels.attention.page_table import pages_to_nhd
from kernelarena.kernels.attention.reference import batch_attention_reference, ragged_attention_reference

pytestmark = pytest.mark.gpu
PORTABLE_PREFILL = True  # prefill here tests the portable kernel, also on sm90 (tests/kernels/conftest.py)


def random_cache(num_pages, page, hkv, d, dtype=torch.bfloat16, layout="NHD"):
    cache = allocate_paged_kv_cache(num_pages, page, hkv, d, kv_layout=layout, dtype=dtype, device="cuda")
    return cache.normal_()


def assert_close(out, lse, ref_out, ref_lse):
    assert not torch.isnan(out).any()
    err = ((out.double() - ref_out).norm() / ref_out.norm()).item()
    assert err < 1e-2, f"relative error {err:.3g}"
    if lse is not None:
        finite = torch.isfinite(ref_lse)
        assert torch.equal(torch.isfinite(lse), finite)
        assert (lse.double()[finite] - ref_lse[finite]).abs().max().item() < 1e-2


def lengths(n, low, high, seed):
    return torch.randint(low, high + 1, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


@pytest.mark.parametrize("batch,max_len,d,hq,hkv,dtype,layout,cap,window", [
    (16, 4096, 128, 32, 8, torch.bfloat16, "NHD", 0.0, -1),
    (3, 8192, 128, 32, 8, torch.bfloat16, "HND", 0.0, -1),
    (64, 1024, 64, 32, 4, torch.float16, "NHD", 0.0, -1),
    (8, 2048, 256, 16, 16, torch.bfloat16, "NHD", 30.0, 700),
])
def test_decode_full_size(batch, max_len, d, hq, hkv, dtype, layout, cap, window):
    kv_lens = lengths(batch, 1, max_len, batch)
    kv_lens[0] = 0 if batch > 1 else kv_lens[0]
    table = build_page_table(kv_lens, 16, shuffle=True, device="cuda")
    cache = random_cache(int(table.kv_indptr[-1]) + 1, 16, hkv, d, dtype, layout)
    q = torch.randn(batch, hq, d, device="cuda", dtype=dtype)
    wrapper = BatchDecodeWithPagedKVCacheWrapper(torch.empty(128 << 20, dtype=torch.uint8, device="cuda"), layout)
    wrapper.plan(table.kv_indptr.cpu(), table.kv_indices, table.kv_last_page_len.cpu(), hq, hkv, d, 16,
                 q_data_type=dtype, logits_soft_cap=cap, window_left=window)
    out, lse = wrapper.run(q, cache, return_lse=True)
    k, v = pages_to_nhd(cache, layout)
    ref = batch_attention_reference(q, k, v, torch.arange(batch + 1), table.kv_indptr.cpu(), table.kv_indices,
                                    table.kv_last_page_len.cpu(), logits_soft_cap=cap, window_left=window)
    assert_close(out, lse, *ref)


@pytest.mark.parametrize("batch,max_q,max_kv,d,causal", [(6, 700, 3000, 128, True), (4, 300, 600, 64, False),
                                                         (3, 200, 900, 256, True)])
def test_paged_prefill_full_size(batch, max_q, max_kv, d, causal):
    kv_lens = lengths(batch, max_q, max_kv, 7)
    qo_lens = [min(q, k) for q, k in zip(lengths(batch, 1, max_q, 8), kv_lens)]
    qo = torch.tensor([0] + torch.tensor(qo_lens).cumsum(0).tolist(), dtype=torch.int32)
    table = build_page_table(kv_lens, 16, shuffle=True, device="cuda")
    cache = random_cache(int(table.kv_indptr[-1]), 16, 8, d)
    q = torch.randn(int(qo[-1]), 32, d, device="cuda", dtype=torch.bfloat16)
    wrapper = BatchPrefillWithPagedKVCacheWrapper(torch.empty(128 << 20, dtype=torch.uint8, device="cuda"))
    wrapper.plan(qo, table.kv_indptr.cpu(), table.kv_indices, table.kv_last_page_len.cpu(), 32, 8, d, 16,
                 causal=causal)
    out, lse = wrapper.run(q, cache, return_lse=True)
    k, v = pages_to_nhd(cache, "NHD")
    ref = batch_attention_reference(q, k, v, qo, table.kv_indptr.cpu(), table.kv_indices,
                                    table.kv_last_page_len.cpu(), causal=causal)
    assert_close(out, lse, *ref)


def test_ragged_prefill_full_size():
    qo = torch.tensor([0, 300, 301, 813], dtype=torch.int32)
    kv = torch.tensor([0, 300, 1300, 3348], dtype=torch.int32)
    q = torch.randn(813, 32, 128, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(3348, 8, 128, device="cuda", dtype=torch.bfloat16)
    v = torch.randn(3348, 8, 128, device="cuda", dtype=torch.bfloat16)
    wrapper = BatchPrefillWithRaggedKVCacheWrapper(torch.empty(128 << 20, dtype=torch.uint8, device="cuda"))
    wrapper.plan(qo, kv, 32, 8, 128, causal=True)
    out, lse = wrapper.run(q, k, v, return_lse=True)
    assert_close(out, lse, *ragged_attention_reference(q, k, v, qo, kv, causal=True))


@pytest.mark.parametrize("kind", ["decode", "prefill"])
def test_cuda_graph_replay_after_replan(kind):
    batch, hq, hkv, d, page = 8, 32, 8, 128, 16
    num_pages = batch * 4096 // page
    cache = random_cache(num_pages, page, hkv, d)
    ws = torch.empty(128 << 20, dtype=torch.uint8, device="cuda")
    q_len = 1 if kind == "decode" else 64
    q = torch.randn(batch * q_len, hq, d, device="cuda", dtype=torch.bfloat16)
    out = torch.empty_like(q)
    lse = torch.empty(q.shape[:2], device="cuda", dtype=torch.float32)
    if kind == "decode":
        wrapper = BatchDecodeWithPagedKVCacheWrapper(ws, use_cuda_graph=True)
    else:
        wrapper = BatchPrefillWithPagedKVCacheWrapper(ws, use_cuda_graph=True)

    def plan(kv_lens, qo_lens):
        table = build_page_table(kv_lens, page, num_pages=num_pages, shuffle=True, device="cuda")
        if kind == "decode":
            wrapper.plan(table.kv_indptr.cpu(), table.kv_indices, table.kv_last_page_len.cpu(), hq, hkv, d, page)
            qo = torch.arange(batch + 1)
        else:
            qo = torch.tensor([0] + torch.tensor(qo_lens).cumsum(0).tolist(), dtype=torch.int32)
            wrapper.plan(qo, table.kv_indptr.cpu(), table.kv_indices, table.kv_last_page_len.cpu(), hq, hkv, d,
                         page, causal=True)
        return table, qo

    # First plan: the largest batch (every buffer sized here), long sequences split into chunks.
    plan([4096] * batch, [q_len] * batch)
    wrapper.run(q, cache, out=out, lse=lse, return_lse=True)  # compiles outside the capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        wrapper.run(q, cache, out=out, lse=lse, return_lse=True)
    for seed in range(3):
        kv_lens = lengths(batch, 1, 4096, 100 + seed)
        qo_lens = [min(q_len, n) for n in kv_lens] if kind == "prefill" else [1] * batch
        table, qo = plan(kv_lens, qo_lens)
        q.normal_()
        out.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        total = int(qo[-1])
        k, v = pages_to_nhd(cache, "NHD")
        ref = batch_attention_reference(q[:total], k, v, qo, table.kv_indptr.cpu(), table.kv_indices,
                                        table.kv_last_page_len.cpu(), causal=kind == "prefill")
        assert_close(out[:total], lse[:total], *ref)
