"""The CUDA small-batch decode kernel (small_decode.cu/.py): its schedule on the host, its build with nvcc
(wherever nvcc exists, GPU or not), and on a GPU its results through the decode wrapper against the float64
reference and against the Triton kernel, including a CUDA graph replayed after re-plans."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kernelarena.build.toolchain import find_nvcc
from kernelarena.errors import UnsupportedError
from kernelarena.kernels.attention import (
    BatchDecodeWithPagedKVCacheWrapper,
    allocate_paged_kv_cache,
    build_page_table,
    small_decode,
)
from kernelarena.kernels.attention.page_table import pages_to_nhd
from kernelarena.kernels.attention.reference import batch_attention_reference

HAS_GPU = torch.cuda.is_available()
gpu = pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU")


def table_arrays(kv_lens, page):
    pages = [-(-n // page) for n in kv_lens]
    indptr = np.concatenate([[0], np.cumsum(pages)]).astype(np.int32)
    last = np.array([n - (p - 1) * page if p else 0 for n, p in zip(kv_lens, pages)], dtype=np.int32)
    return indptr, last


def covered(schedule, lengths):
    """Per request, the token ranges of its chunks, as the kernel derives them from the words."""
    items, chunk, slots, batch = (int(x) for x in schedule.words[:4])
    ranges = []
    for b in range(batch):
        n = int(schedule.words[5 + 2 * b])
        splits = max(1, -(-n // chunk))
        assert splits <= slots
        ranges.append([(s * chunk, min(n, s * chunk + chunk)) for s in range(splits)])
    return ranges


# ------------------------------------------------------------------------------------------- schedule
@pytest.mark.parametrize("kv_lens,page", [([1024], 16), ([4096, 1, 0, 777], 16), ([5] * 16, 1), ([8192] * 16, 16)])
def test_schedule_covers_every_key_once(kv_lens, page):
    indptr, last = table_arrays(kv_lens, page)
    schedule = small_decode.plan_small_decode(indptr, last, page_size=page, num_kv_heads=8, window_left=-1,
                                              target_items=396, min_chunk=64, max_items=100_000)
    assert small_decode.kv_lengths(indptr, last, page) == kv_lens
    assert schedule.words[4::2] == indptr[:-1].tolist()
    for n, chunks in zip(kv_lens, covered(schedule, kv_lens)):
        tokens = [t for lo, hi in chunks for t in range(lo, hi)]
        assert tokens == list(range(n))
    assert schedule.items == len(kv_lens) * 8 * schedule.slots
    assert schedule.chunk >= 64 and schedule.chunk % 16 == 0


def test_schedule_aims_at_the_target_and_respects_the_workspace():
    indptr, last = table_arrays([8192], 16)
    wide = small_decode.plan_small_decode(indptr, last, page_size=16, num_kv_heads=8, window_left=-1,
                                          target_items=396, min_chunk=64, max_items=100_000)
    assert 300 <= wide.items <= 396  # 8 heads x 8192 tokens in chunks of 176: 47 chunks a head
    tight = small_decode.plan_small_decode(indptr, last, page_size=16, num_kv_heads=8, window_left=-1,
                                           target_items=396, min_chunk=64, max_items=40)
    assert tight.items <= 40 and tight.slots * tight.chunk >= 8192
    forced = small_decode.plan_small_decode(indptr, last, page_size=16, num_kv_heads=8, window_left=-1,
                                            target_items=396, min_chunk=64, max_items=100_000, chunk=1000)
    assert (forced.chunk, forced.slots) == (1000, 9)
    with pytest.raises(UnsupportedError, match="workspace"):
        small_decode.plan_small_decode(indptr, last, page_size=16, num_kv_heads=8, window_left=-1,
                                       target_items=396, min_chunk=64, max_items=7)


def test_sliding_window_shortens_the_split():
    indptr, last = table_arrays([8192, 100], 16)
    schedule = small_decode.plan_small_decode(indptr, last, page_size=16, num_kv_heads=1, window_left=255,
                                              target_items=4, min_chunk=16, max_items=1000)
    # 356 visible keys over 4 items: chunks of 89 rounded up to 96, 3 of them for the 256 keys of the first
    assert schedule.chunk == 96 and schedule.slots == 3
    assert schedule.words[5] == 8192  # the kernel still sees the full length and skips to the window


# ------------------------------------------------------------------------------------------- build
@pytest.mark.skipif(find_nvcc() is None, reason="nvcc not installed")
@pytest.mark.parametrize("variant", [small_decode.Variant(0, 128, 4), small_decode.Variant(1, 64, 1, 4, 2),
                                     small_decode.Variant(0, 128, 4, 8, 1, 3, mma=1)])
def test_kernel_compiles_for_sm90(variant, tmp_path, monkeypatch):
    monkeypatch.setenv("KERNELARENA_CACHE_DIR", str(tmp_path))
    path = small_decode.compile_library(variant, "90a")
    assert path.is_file() and path.is_relative_to(tmp_path)
    assert small_decode.compile_library(variant, "90a") == path  # cached: the same file, not rebuilt
    lib = small_decode.load(variant, "90a")  # loads without a GPU; checks ABI, variant and argument block size
    assert lib.ka_small_decode_abi() == small_decode.ABI_VERSION
    block = small_decode._ARGS.pack(*range(22), 0.5, 2.0, 0, *range(small_decode.INLINE_WORDS))  # as the launcher packs
    assert len(block) == lib.ka_small_decode_args_size()


# ------------------------------------------------------------------------------------------- GPU
def decode_case(kv_lens, hq, hkv, d, dtype, layout, page=16, seed=0):
    torch.manual_seed(seed)
    table = build_page_table(kv_lens, page, shuffle=True, device="cuda")
    cache = allocate_paged_kv_cache(int(table.kv_indptr[-1]) + 1, page, hkv, d, kv_layout=layout, dtype=dtype,
                                    device="cuda").normal_()
    q = torch.randn(len(kv_lens), hq, d, device="cuda", dtype=dtype)
    return table, cache, q


@pytest.fixture
def any_size(monkeypatch):
    """The CUDA kernel for every small batch, however long (the runner's size limit is a speed choice)."""
    monkeypatch.setattr(small_decode, "MAX_TOKEN_HEADS", 1 << 40)


@pytest.fixture(params=[0, 1], ids=["cuda_cores", "tensor_cores"])
def token_loop(request, monkeypatch):
    """Each of the two token loops of small_decode.cu (small_decode.MMA)."""
    monkeypatch.setattr(small_decode, "MMA", request.param)
    return request.param


def run_decode(table, cache, q, hkv, page, layout, *, cap=0.0, window=-1, chunk=None, use_small=True):
    wrapper = BatchDecodeWithPagedKVCacheWrapper(torch.empty(64 << 20, dtype=torch.uint8, device="cuda"), layout)
    small_decode.enabled = use_small
    try:
        wrapper.plan(table.kv_indptr.cpu(), table.kv_indices, table.kv_last_page_len.cpu(), q.shape[1], hkv,
                     q.shape[2], page, q_data_type=q.dtype, logits_soft_cap=cap, window_left=window,
                     kv_chunk_size=chunk)
    finally:
        small_decode.enabled = True
    assert (wrapper._runner._small is not None) == use_small, wrapper._runner.small_decode_failures
    assert not use_small or wrapper._runner._small.variant.mma == (small_decode.MMA if q.shape[2] <= 128 else 0)
    return wrapper.run(q, cache, return_lse=True)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("kv_lens,hq,hkv,d,dtype,layout,cap,window,chunk", [
    ([1024], 32, 8, 128, torch.bfloat16, "NHD", 0.0, -1, None),
    ([8192], 32, 8, 128, torch.bfloat16, "NHD", 0.0, -1, None),
    ([4096, 0, 1, 333, 2048, 17, 1000, 65], 32, 8, 128, torch.float16, "HND", 0.0, -1, None),
    ([3000] * 16, 32, 8, 128, torch.bfloat16, "NHD", 0.0, -1, None),
    ([700, 1], 16, 16, 256, torch.bfloat16, "NHD", 30.0, 300, None),
    ([2000, 50], 64, 8, 64, torch.float16, "NHD", 0.0, 127, 96),
    ([513] * 3, 8, 4, 128, torch.bfloat16, "HND", 10.0, -1, 32),
    ([100] * 4, 2, 2, 128, torch.bfloat16, "NHD", 0.0, -1, None),
])
def test_small_decode_matches_reference_and_triton(kv_lens, hq, hkv, d, dtype, layout, cap, window, chunk,
                                                   any_size, token_loop):
    table, cache, q = decode_case(kv_lens, hq, hkv, d, dtype, layout)
    out, lse = run_decode(table, cache, q, hkv, 16, layout, cap=cap, window=window, chunk=chunk)
    k, v = pages_to_nhd(cache, layout)
    ref_out, ref_lse = batch_attention_reference(q, k, v, torch.arange(len(kv_lens) + 1), table.kv_indptr.cpu(),
                                                 table.kv_indices, table.kv_last_page_len.cpu(),
                                                 logits_soft_cap=cap, window_left=window)
    err = ((out.double() - ref_out).norm() / ref_out.norm().clamp_min(1e-30)).item()
    assert err < 1e-2, f"relative error {err:.3g}"
    finite = torch.isfinite(ref_lse)
    assert torch.equal(torch.isfinite(lse), finite)
    assert (lse.double()[finite] - ref_lse[finite]).abs().max().item() < 1e-2
    empty = torch.tensor([n == 0 for n in kv_lens], device="cuda")
    assert (out[empty] == 0).all()
    triton_out, triton_lse = run_decode(table, cache, q, hkv, 16, layout, cap=cap, window=window, chunk=chunk,
                                        use_small=False)
    assert (out.float() - triton_out.float()).abs().max().item() < 2e-2
    assert torch.allclose(lse[finite], triton_lse[finite], atol=1e-3)


@gpu
@pytest.mark.gpu
def test_small_decode_graph_replays_after_replans(any_size, token_loop):
    batch, hq, hkv, d, page = 12, 32, 8, 128, 16
    num_pages = batch * 8192 // page
    cache = allocate_paged_kv_cache(num_pages, page, hkv, d, dtype=torch.bfloat16, device="cuda").normal_()
    wrapper = BatchDecodeWithPagedKVCacheWrapper(torch.empty(64 << 20, dtype=torch.uint8, device="cuda"),
                                                 use_cuda_graph=True)
    q = torch.randn(batch, hq, d, device="cuda", dtype=torch.bfloat16)
    out = torch.empty_like(q)
    lse = torch.empty(batch, hq, device="cuda", dtype=torch.float32)

    def plan(kv_lens):
        table = build_page_table(kv_lens, page, num_pages=num_pages, shuffle=True, device="cuda")
        wrapper.plan(table.kv_indptr.cpu(), table.kv_indices, table.kv_last_page_len.cpu(), hq, hkv, d, page)
        return table

    plan([8192] * batch)
    assert wrapper._runner._small is not None
    wrapper.run(q, cache, out=out, lse=lse, return_lse=True)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        wrapper.run(q, cache, out=out, lse=lse, return_lse=True)
    generator = torch.Generator().manual_seed(5)
    for kv_lens in ([1] * batch, torch.randint(0, 8193, (batch,), generator=generator).tolist(), [8192] * batch):
        table = plan(kv_lens)
        q.normal_()
        out.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        k, v = pages_to_nhd(cache, "NHD")
        ref_out, ref_lse = batch_attention_reference(q, k, v, torch.arange(batch + 1), table.kv_indptr.cpu(),
                                                     table.kv_indices, table.kv_last_page_len.cpu())
        err = ((out.double() - ref_out).norm() / ref_out.norm()).item()
        assert err < 1e-2, f"kv_lens {kv_lens}: relative error {err:.3g}"
        finite = torch.isfinite(ref_lse)
        assert (lse.double()[finite] - ref_lse[finite]).abs().max().item() < 1e-2


@gpu
@pytest.mark.gpu
def test_runner_routes_by_size():
    """Small batches with few K/V rows go to the CUDA kernel, longer ones and big batches to Triton."""
    for kv_lens, expect_small in (([1024], True), ([8192], True), ([8193], False), ([1024] * 16, False),
                                  ([64] * 40, False)):
        table, cache, q = decode_case(kv_lens, 32, 8, 128, torch.bfloat16, "NHD")
        wrapper = BatchDecodeWithPagedKVCacheWrapper(torch.empty(64 << 20, dtype=torch.uint8, device="cuda"))
        wrapper.plan(table.kv_indptr.cpu(), table.kv_indices, table.kv_last_page_len.cpu(), 32, 8, 128, 16)
        assert (wrapper._runner._small is not None) == expect_small, kv_lens[:2]
