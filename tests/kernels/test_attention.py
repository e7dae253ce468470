"""Paged attention on the CPU (Triton interpreter, small sizes): wrappers against the float64 reference.

Every case draws fresh random inputs, poisons the outputs with NaN before the run, and compares against
kernelarena.kernels.attention.reference. Chunk splitting is forced with ``kv_chunk_size`` so the merge
path runs at these sizes.
"""

from __future__ import annotations

import ast
import math

import numpy as np
import pytest
import torch

from kernelarena.errors import ShapeError, UnsupportedError
from kernelarena.kernels.attention import (
    BatchDecodeWithPagedKVCacheWrapper,
    BatchPrefillWithPagedKVCacheWrapper,
    BatchPrefillWithRaggedKVCacheWrapper,
    allocate_paged_kv_cache,
    append_paged_kv_cache,
    build_page_table,
    kv_view,
)
from kernelarena.kernels.attention.merge import merge_states
from kernelarena.kernels.attention.page_table import pages_to_nhd
from kernelarena.kernels.attention.paged_kernel import PagedAttentionLauncher
from kernelarena.kernels.attention.reference import (
    attention_one_request,
    batch_attention_reference,
    ragged_attention_reference,
)
from kernelarena.kernels.attention.scheduler import GROUP_FIELDS, HEADER, ITEM_FIELDS, plan_work
from kernelarena.kernels.attention.solutions import solution_records

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
PORTABLE_PREFILL = True  # prefill here tests the portable kernel, also on sm90 (tests/kernels/conftest.py)


def make_cache(kv_lens, page_size, hkv, d, *, layout="NHD", dtype=torch.bfloat16, as_tuple=False, seed=0):
    gen = torch.Generator().manual_seed(seed)
    num_pages = sum(-(-n // page_size) for n in kv_lens) + 3  # spare pages that must never be read
    table = build_page_table(kv_lens, page_size, num_pages=num_pages, shuffle=True, generator=gen, device=DEVICE)
    cache = allocate_paged_kv_cache(num_pages, page_size, hkv, d, kv_layout=layout, dtype=dtype, device=DEVICE)
    cache.copy_(torch.randn(cache.shape, generator=gen).to(dtype))
    if as_tuple:
        view = kv_view(cache, layout)
        cache = (view.k.contiguous(), view.v.contiguous())
    return table, cache


def indptr(lens):
    return torch.tensor([0, *np.cumsum(lens)], dtype=torch.int32)


def check(out, lse, ref_out, ref_lse, dtype=torch.bfloat16):
    assert not torch.isnan(out).any(), "some outputs were never written"
    tol = 2e-2 if dtype == torch.bfloat16 else 5e-3
    err = (out.double().cpu() - ref_out.cpu()).norm() / max(ref_out.norm().item(), 1e-6)
    assert err < tol, f"relative error {err:.3g}"
    if lse is not None:
        lse, ref_lse = lse.double().cpu(), ref_lse.cpu()
        finite = torch.isfinite(ref_lse)
        assert torch.equal(torch.isfinite(lse), finite), "lse -inf pattern differs"
        assert (lse[finite] - ref_lse[finite]).abs().max().item() < 2e-2 if finite.any() else True


def workspace():
    return torch.empty(8 << 20, dtype=torch.uint8, device=DEVICE)


DECODE_CASES = [
    # kv_lens, hq, hkv, d, page_size, layout, tuple, chunk, soft_cap, window
    ([5, 0, 17, 33], 4, 2, 64, 4, "NHD", False, None, 0.0, -1),
    ([40, 1, 23], 8, 2, 64, 16, "HND", False, 16, 0.0, -1),
    ([64, 9], 4, 4, 128, 16, "NHD", True, 16, 0.0, -1),
    ([31, 50, 2], 8, 1, 64, 5, "NHD", False, 16, 30.0, -1),
    ([70, 12], 4, 2, 64, 8, "HND", True, 32, 0.0, 10),
    ([1], 2, 2, 64, 1, "NHD", False, None, 0.0, -1),
    ([600, 3], 8, 2, 64, 16, "NHD", False, 16, 0.0, -1),  # 38 chunks: the merge takes several steps
]


@pytest.mark.parametrize("kv_lens,hq,hkv,d,page_size,layout,as_tuple,chunk,cap,window", DECODE_CASES)
def test_decode_matches_reference(kv_lens, hq, hkv, d, page_size, layout, as_tuple, chunk, cap, window):
    table, cache = make_cache(kv_lens, page_size, hkv, d, layout=layout, as_tuple=as_tuple, seed=len(kv_lens) + d)
    q = torch.randn(len(kv_lens), hq, d).to(torch.bfloat16).to(DEVICE)
    wrapper = BatchDecodeWithPagedKVCacheWrapper(workspace(), layout)
    wrapper.plan(table.kv_indptr.cpu(), table.kv_indices, table.kv_last_page_len.cpu(), hq, hkv, d, page_size,
                 logits_soft_cap=cap, window_left=window, kv_chunk_size=chunk, sm_scale=0.3)
    out = torch.full_like(q, float("nan"))
    lse = torch.full(q.shape[:2], float("nan"), device=DEVICE)
    wrapper.run(q, cache, out=out, lse=lse, return_lse=True)
    k, v = pages_to_nhd(cache, layout)
    ref_out, ref_lse = batch_attention_reference(
        q, k, v, torch.arange(len(kv_lens) + 1), table.kv_indptr, table.kv_indices, table.kv_last_page_len,
        sm_scale=0.3, logits_soft_cap=cap, window_left=window)
    check(out, lse, ref_out, ref_lse)


@pytest.mark.parametrize("schedule", [1, 2])
def test_decode_each_item_schedule(schedule, monkeypatch):
    """Static round robin and the shared counter give the same result (both run, whatever the item count)."""
    monkeypatch.setattr(PagedAttentionLauncher, "schedule", schedule)
    kv_lens, hq, hkv, d, page = [90, 7, 33], 8, 2, 64, 8
    table, cache = make_cache(kv_lens, page, hkv, d, seed=11)
    q = torch.randn(len(kv_lens), hq, d).to(torch.bfloat16).to(DEVICE)
    wrapper = BatchDecodeWithPagedKVCacheWrapper(workspace())
    for _ in range(2):  # a second run of the same plan: the counters were reset by the first
        wrapper.plan(table.kv_indptr.cpu(), table.kv_indices, table.kv_last_page_len.cpu(), hq, hkv, d, page,
                     kv_chunk_size=16)
        out, lse = wrapper.run(q, cache, return_lse=True)
        k, v = pages_to_nhd(cache, "NHD")
        ref_out, ref_lse = batch_attention_reference(
            q, k, v, torch.arange(len(kv_lens) + 1), table.kv_indptr, table.kv_indices, table.kv_last_page_len)
        check(out, lse, ref_out, ref_lse)


PREFILL_CASES = [
    # qo_lens, kv_lens, hq, hkv, d, page_size, causal, chunk, cap, window, layout, dtype
    ([3, 0, 9, 20], [5, 0, 17, 33], 4, 2, 64, 4, True, None, 0.0, -1, "NHD", torch.bfloat16),
    ([7, 12], [7, 40], 4, 1, 64, 16, False, 16, 0.0, -1, "HND", torch.bfloat16),
    ([12, 5], [30, 5], 4, 2, 64, 8, True, 16, 0.0, 6, "NHD", torch.float16),
    ([9], [20], 2, 2, 128, 4, True, None, 20.0, -1, "NHD", torch.bfloat16),
    ([6, 4], [3, 0], 2, 1, 64, 4, True, None, 0.0, -1, "NHD", torch.bfloat16),  # more queries than keys
]


@pytest.mark.parametrize("qo_lens,kv_lens,hq,hkv,d,page_size,causal,chunk,cap,window,layout,dtype", PREFILL_CASES)
def test_paged_prefill_matches_reference(qo_lens, kv_lens, hq, hkv, d, page_size, causal, chunk, cap, window,
                                         layout, dtype):
    table, cache = make_cache(kv_lens, page_size, hkv, d, layout=layout, dtype=dtype, seed=sum(qo_lens))
    qo = indptr(qo_lens)
    q = torch.randn(int(qo[-1]), hq, d).to(dtype).to(DEVICE)
    wrapper = BatchPrefillWithPagedKVCacheWrapper(workspace(), layout)
    wrapper.plan(qo, table.kv_indptr.cpu(), table.kv_indices, table.kv_last_page_len.cpu(), hq, hkv, d, page_size,
                 causal=causal, logits_soft_cap=cap, window_left=window, kv_chunk_size=chunk, q_data_type=dtype)
    out, lse = wrapper.run(q, cache, return_lse=True)
    k, v = pages_to_nhd(cache, layout)
    ref_out, ref_lse = batch_attention_reference(
        q, k, v, qo, table.kv_indptr, table.kv_indices, table.kv_last_page_len, causal=causal,
        logits_soft_cap=cap, window_left=window)
    check(out, lse, ref_out, ref_lse, dtype)


@pytest.mark.parametrize("causal,chunk", [(True, None), (False, 16)])
def test_ragged_prefill_matches_reference(causal, chunk):
    qo_lens, kv_lens, hq, hkv, d = [4, 11, 0], [9, 30, 5], 4, 2, 64
    qo, kv = indptr(qo_lens), indptr(kv_lens)
    q = torch.randn(int(qo[-1]), hq, d).to(torch.bfloat16).to(DEVICE)
    k = torch.randn(int(kv[-1]), hkv, d).to(torch.bfloat16).to(DEVICE)
    v = torch.randn(int(kv[-1]), hkv, d).to(torch.bfloat16).to(DEVICE)
    wrapper = BatchPrefillWithRaggedKVCacheWrapper(workspace())
    wrapper.plan(qo, kv, hq, hkv, d, causal=causal, kv_chunk_size=chunk)
    out = torch.full_like(q, float("nan"))
    wrapper.run(q, k, v, out=out)
    ref_out, _ = ragged_attention_reference(q, k, v, qo, kv, causal=causal)
    check(out, None, ref_out, None)


def test_run_without_lse_and_replan_reuses_wrapper():
    wrapper = BatchDecodeWithPagedKVCacheWrapper(workspace())
    for seed, lens in enumerate(([3, 20], [18, 1, 7])):
        table, cache = make_cache(lens, 4, 1, 64, seed=seed)
        q = torch.randn(len(lens), 2, 64).to(torch.bfloat16).to(DEVICE)
        wrapper.plan(table.kv_indptr, table.kv_indices, table.kv_last_page_len, 2, 1, 64, 4, kv_chunk_size=16)
        k, v = pages_to_nhd(cache, "NHD")
        ref, _ = batch_attention_reference(q, k, v, torch.arange(len(lens) + 1), table.kv_indptr,
                                           table.kv_indices, table.kv_last_page_len)
        for _ in range(2):  # a second run without a new plan: the kernel must have reset its item counter
            check(wrapper.run(q, cache), None, ref, None)


@pytest.mark.parametrize("kv_lens, graph, schedule", [
    ([33] * 6, False, 1),  # equal requests: the kernel compiled with the static schedule alone
    ([33] * 5 + [20], False, 0),  # unequal: the runtime choice (the counter once programs have several items)
    ([33] * 6, True, 0),  # graph mode: a later plan's items may differ, so the runtime choice stays
])
def test_equal_items_compile_the_static_schedule(kv_lens, graph, schedule, monkeypatch):
    """The plan's header word 7 says every item is as long; outside graph mode the launch then compiles SCHEDULE 1
    (no counter code), and the output is the reference's either way."""
    from kernelarena.kernels.attention import small_decode

    monkeypatch.setattr(small_decode, "enabled", False)  # on a GPU this batch would go to the small-decode kernel
    table, cache = make_cache(kv_lens, 4, 2, 64)
    wrapper = BatchDecodeWithPagedKVCacheWrapper(workspace(), use_cuda_graph=graph)
    wrapper.plan(table.kv_indptr, table.kv_indices, table.kv_last_page_len, 4, 2, 64, 4)
    launcher = wrapper._runner._launcher
    assert launcher._tail_consts[1] == schedule
    q = torch.randn(len(kv_lens), 4, 64).to(torch.bfloat16).to(DEVICE)
    k, v = pages_to_nhd(cache, "NHD")
    ref, _ = batch_attention_reference(q, k, v, torch.arange(len(kv_lens) + 1), table.kv_indptr, table.kv_indices,
                                       table.kv_last_page_len)
    check(wrapper.run(q, cache), None, ref, None)


def test_reserved_page_indices_let_a_cuda_graph_wrapper_take_a_larger_batch_later():
    wrapper = BatchDecodeWithPagedKVCacheWrapper(workspace(), use_cuda_graph=True)
    small, _ = make_cache([9], 4, 1, 64)
    table, cache = make_cache([30, 7, 12], 4, 1, 64, seed=1)  # 3 + 8 + 2 + 3 = 16 page indices
    with pytest.raises(UnsupportedError, match="first plan"):  # without a reservation the first plan fixes 3
        wrapper.plan(small.kv_indptr, small.kv_indices, small.kv_last_page_len, 2, 1, 64, 4)
        wrapper.plan(table.kv_indptr, table.kv_indices, table.kv_last_page_len, 2, 1, 64, 4)
    wrapper = BatchDecodeWithPagedKVCacheWrapper(workspace(), use_cuda_graph=True)
    wrapper.reserve_page_indices(20)
    wrapper.reserve_page_indices(5)  # smaller than reserved: nothing changes
    wrapper.plan(small.kv_indptr, small.kv_indices, small.kv_last_page_len, 2, 1, 64, 4)
    wrapper.plan(table.kv_indptr, table.kv_indices, table.kv_last_page_len, 2, 1, 64, 4)
    q = torch.randn(3, 2, 64).to(torch.bfloat16).to(DEVICE)
    k, v = pages_to_nhd(cache, "NHD")
    ref, _ = batch_attention_reference(q, k, v, torch.arange(4), table.kv_indptr, table.kv_indices,
                                       table.kv_last_page_len)
    check(wrapper.run(q, cache), None, ref, None)
    with pytest.raises(UnsupportedError, match="before the first plan"):  # a captured graph may read it
        wrapper.reserve_page_indices(64)
    with pytest.raises(ShapeError):
        BatchDecodeWithPagedKVCacheWrapper(workspace()).reserve_page_indices(0)


def test_plan_rejects_bad_arguments():
    wrapper = BatchDecodeWithPagedKVCacheWrapper(workspace())
    table, _ = make_cache([4], 4, 2, 64)
    with pytest.raises(ShapeError):
        wrapper.plan(table.kv_indptr, table.kv_indices, table.kv_last_page_len, 3, 2, 64, 4)
    with pytest.raises(UnsupportedError):
        wrapper.plan(table.kv_indptr, table.kv_indices, table.kv_last_page_len, 2, 2, 96, 4)
    with pytest.raises(UnsupportedError):
        wrapper.plan(table.kv_indptr, table.kv_indices, table.kv_last_page_len, 2, 2, 64, 4,
                     q_data_type=torch.float32)
    with pytest.raises(UnsupportedError):
        BatchDecodeWithPagedKVCacheWrapper(workspace(), "HDN")
    with pytest.raises(UnsupportedError):
        BatchDecodeWithPagedKVCacheWrapper(workspace()).run(torch.zeros(1, 2, 64), torch.zeros(1, 2, 4, 2, 64))


def test_append_in_two_steps_then_gather():
    from kernelarena.kernels.attention.page_table import PageTable
    from kernelarena.kernels.attention.reference import gather_request_kv

    page_size, hkv, d = 4, 2, 8
    old, new = [3, 0, 9], [2, 5, 4]
    table = build_page_table([a + b for a, b in zip(old, new)], page_size, num_pages=12, shuffle=True)
    full = [torch.randn(a + b, hkv, d) for a, b in zip(old, new)]
    # The table after step one: each request keeps the first pages it needs for its old tokens.
    old_pages = [-(-n // page_size) for n in old]
    before = PageTable(indptr(old_pages), torch.cat([table.kv_indices[int(table.kv_indptr[b]):][:old_pages[b]]
                                                     for b in range(3)]),
                       torch.tensor([(n - 1) % page_size + 1 if n else 0 for n in old], dtype=torch.int32), page_size)
    cache = torch.zeros(12, 2, hkv, page_size, d)  # HND
    append_paged_kv_cache(torch.cat([f[:a] for f, a in zip(full, old)]), -torch.cat([f[:a] for f, a in zip(full, old)]),
                          indptr(old), cache, before, kv_layout="HND")
    append_paged_kv_cache(torch.cat([f[a:] for f, a in zip(full, old)]), -torch.cat([f[a:] for f, a in zip(full, old)]),
                          indptr(new), cache, table, kv_layout="HND")
    k, v = pages_to_nhd(cache, "HND")
    for b in range(3):
        kb, vb = gather_request_kv(k, v, table.kv_indptr, table.kv_indices, table.kv_last_page_len, b)
        assert torch.equal(kb, full[b]) and torch.equal(vb, -full[b])


def test_schedule_covers_each_range_once():
    rng = np.random.default_rng(1)
    qo_lens, kv_lens, page, group, heads = rng.integers(0, 40, 9), rng.integers(0, 300, 9), 16, 4, 3
    qo = np.concatenate([[0], np.cumsum(qo_lens)])
    pages = -(-kv_lens // page)
    kv_indptr = np.concatenate([[0], np.cumsum(pages)])
    last = np.where(pages > 0, kv_lens - (pages - 1) * page, 0)
    out = np.zeros(1 << 16, np.int32)
    s = plan_work(out, qo, kv_indptr, last, page_size=page, group_size=group, num_kv_heads=heads, block_m=32,
                  block_n=16, causal=True, window_left=-1, target_ctas=4096, min_chunk=16)
    assert s.num_groups > 0 and out[0] == s.num_entries * heads and out[3] == heads
    items = out[HEADER:HEADER + s.num_entries * ITEM_FIELDS].reshape(-1, ITEM_FIELDS)
    groups = out[out[2]:out[2] + s.num_groups * GROUP_FIELDS].reshape(-1, GROUP_FIELDS)
    covered = {}
    for it in items:
        covered.setdefault((it[0], it[3]), []).append((it[5], it[6], it[8]))
    for (tok_base, row_start), chunks in covered.items():
        chunks.sort()
        b = int(np.searchsorted(qo, tok_base, side="right") - 1)
        assert chunks[0][0] == 0 and all(a[1] == c[0] for a, c in zip(chunks, chunks[1:]))
        assert chunks[-1][1] <= kv_lens[b]
    assert sorted(int(g[1]) for g in groups) == sorted(len(c) for c in covered.values())


def test_merge_states_equals_attention_over_union():
    q, k, v = torch.randn(5, 2, 16), torch.randn(30, 2, 16), torch.randn(30, 2, 16)
    whole, whole_lse = attention_one_request(q, k, v, causal=False, sm_scale=0.25)
    parts = [attention_one_request(q, k[a:b], v[a:b], causal=False, sm_scale=0.25)
             for a, b in ((0, 7), (7, 7), (7, 30))]
    merged, merged_lse = merge_states(torch.stack([p[0] for p in parts]), torch.stack([p[1] for p in parts]))
    assert torch.allclose(merged, whole, atol=1e-5) and torch.allclose(merged_lse.double(), whole_lse, atol=1e-5)


ALLOWED_IMPORTS = {"torch", "triton", "numpy", "math", "dataclasses", "typing", "__future__", "weakref", "functools"}
INSTALLED_WITH = {"tilelang": {"tvm"}}  # a dependency's own dependencies that its users import


def test_solution_records_are_self_contained():
    records = solution_records()
    assert {r["definition"] for r in records} == {"gqa_paged_decode_h32_kv8_d128_ps16",
                                                  "gqa_paged_prefill_causal_h32_kv8_d128_ps16"}
    for record in records:
        paths = {s["path"] for s in record["sources"]}
        assert record["spec"]["entry_point"].split("::")[0] in paths
        for source in record["sources"]:
            for node in ast.walk(ast.parse(source["content"])):
                if isinstance(node, ast.Import):
                    names = [a.name.split(".")[0] for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module.split(".")[0]]
                elif isinstance(node, ast.ImportFrom):
                    assert f"{node.module}.py" in paths, f"{source['path']} imports missing sibling {node.module}"
                    continue
                else:
                    continue
                deps = set(record["spec"]["dependencies"])
                allowed = ALLOWED_IMPORTS | deps | {m for d in deps for m in INSTALLED_WITH.get(d, ())}
                assert set(names) <= allowed, f"{record['name']}/{source['path']} imports {names}"


def test_solution_entry_points_match_reference():
    from kernelarena.kernels.attention import reference, solution_decode, solution_prefill

    hq, hkv, d, page = 32, 8, 128, 16
    table, cache = make_cache([17, 40], page, hkv, d, seed=3)
    k, v = cache[:, 0], cache[:, 1]
    for entry, ref, qo_lens, extra in ((solution_decode.run, reference.run_decode, [1, 1], ()),
                                       (solution_prefill.run, reference.run_prefill_causal, [5, 9], None)):
        qo = indptr(qo_lens).to(DEVICE)
        q = torch.randn(int(qo[-1]), hq, d).to(torch.bfloat16).to(DEVICE)
        args = (q, k, v) + (() if extra == () else (qo,)) + (table.kv_indptr, table.kv_indices,
                                                               table.kv_last_page_len, 1 / math.sqrt(d))
        out, lse = torch.full_like(q, float("nan")), torch.full(q.shape[:2], float("nan"), device=DEVICE)
        ref_out, ref_lse = torch.empty_like(q), torch.empty_like(lse)
        entry(*args, out, lse)
        ref(*args, ref_out, ref_lse)
        check(out, lse, ref_out.double(), ref_lse.double())


def test_tilelang_solution_compiles_the_kernel_the_wrappers_run():
    """The dataset's TileLang solution cannot import prefill_hopper.py (the Triton kernel), so it spells out
    TILELANG_CONFIG's tiles and options; they must stay the same as the wrappers' default config."""
    import inspect

    from kernelarena.kernels.attention import solution_prefill_tilelang as solution
    from kernelarena.kernels.attention.prefill_hopper import TILELANG_CONFIG as config

    assert (solution.BLOCK_M, solution.BLOCK_N, solution.STAGES) == (config.block_m, config.block_n,
                                                                     config.num_stages)
    source = inspect.getsource(solution.plan)
    for option in ("overlap", "pingpong", "fast_math", "dynamic"):
        assert f"{option}={getattr(config, option)}" in source, option
    assert config.persistent and "ctas=torch.cuda.get_device_properties" in source
    assert not config.pack_gqa and "group_size=1" in source


def test_tilelang_solution_says_it_needs_sm90_off_hopper():
    """The dataset's TileLang prefill solution targets H100/H200; anywhere else it refuses, naming what it needs."""
    from kernelarena.kernels.attention import solution_prefill_tilelang

    record = next(r for r in solution_records() if r["spec"]["language"] == "tilelang")
    assert record["spec"]["target_hardware"] == ["H100", "H200"] and record["spec"]["dependencies"] == ["tilelang"]
    if torch.cuda.is_available() and torch.cuda.get_device_capability()[0] == 9:
        pytest.skip("an sm90 GPU runs it (test_attention_prefill_tilelang.py)")
    table, cache = make_cache([17, 40], 16, 8, 128, seed=3)
    qo = indptr([5, 9]).to(DEVICE)
    q = torch.randn(14, 32, 128).to(torch.bfloat16).to(DEVICE)
    with pytest.raises(RuntimeError, match="sm90 GPUs"):
        solution_prefill_tilelang.plan(q, cache[:, 0], cache[:, 1], qo, table.kv_indptr, table.kv_indices,
                                       table.kv_last_page_len, 1 / math.sqrt(128))


def test_solution_plan_carries_equal_items_to_the_launch():
    """The dataset's entry points plan with scheduler.plan_work too: equal requests compile the static schedule
    (as the wrappers do), unequal ones keep the runtime choice, and both match the reference."""
    from kernelarena.kernels.attention import reference, solution_common

    hq, hkv, d, page = 8, 2, 64, 4
    for kv_lens, equal in (([33] * 6, True), ([33] * 5 + [20], False)):
        table, cache = make_cache(kv_lens, page, hkv, d, seed=4)
        q = torch.randn(len(kv_lens), hq, d).to(torch.bfloat16).to(DEVICE)
        qo = torch.arange(len(kv_lens) + 1, dtype=torch.int32)
        plan = solution_common.plan_paged_attention(q, cache[:, 0], qo, table.kv_indptr, table.kv_last_page_len,
                                                    causal=False)
        assert plan.equal_items is equal
        args = (q, cache[:, 0], cache[:, 1], qo.to(DEVICE), table.kv_indptr, table.kv_indices,
                table.kv_last_page_len, 1 / math.sqrt(d))
        out, lse = torch.full_like(q, float("nan")), torch.full(q.shape[:2], float("nan"), device=DEVICE)
        ref_out, ref_lse = torch.empty_like(q), torch.empty_like(lse)
        solution_common.paged_attention_into(*args, out, lse, causal=False)
        reference.run_decode(q, cache[:, 0], cache[:, 1], table.kv_indptr, table.kv_indices, table.kv_last_page_len,
                             1 / math.sqrt(d), ref_out, ref_lse)
        check(out, lse, ref_out.double(), ref_lse.double())


def test_gpu_config_rules_at_their_boundaries():
    from kernelarena.kernels.attention.kernel_config import choose_config

    # Decode: the deep-pipeline single-program config only while (request, head) pairs are fewer than SMs.
    small = choose_config(128, 4, 4, True, pairs=131, num_sms=132)
    large = choose_config(128, 4, 4, True, pairs=132, num_sms=132)
    assert (small.num_stages, small.ctas_per_sm) == (5, 1)
    assert (large.num_stages, large.ctas_per_sm) == (2, 2)
    assert choose_config(128, 4, 4, True).num_stages == 2  # no batch size given: the general decode config
    # Prefill: 128-row tiles get 8 warps and 6 stages; head_dim 256 keeps 64-row tiles with 4 warps.
    assert (choose_config(128, 4, 4096, True).num_warps, choose_config(128, 4, 4096, True).num_stages) == (8, 6)
    assert (choose_config(256, 4, 4096, True).block_m, choose_config(256, 4, 4096, True).num_warps) == (64, 4)
    assert choose_config(128, 4, 4096, False).block_m == 32  # the CPU interpreter's small tiles
