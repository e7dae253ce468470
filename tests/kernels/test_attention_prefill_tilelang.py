"""The TileLang prefill kernels (prefill_tilelang.py): on the CPU, what they lower to for sm_90a (the structure the
module's docstring claims) and the K/V row views they launch on; on an sm90 GPU, their outputs and lse through the
wrappers against the float64 reference."""

from __future__ import annotations

import math

import pytest
import torch

from kernelarena.errors import UnsupportedError
from kernelarena.kernels.attention import (
    BatchPrefillWithPagedKVCacheWrapper,
    BatchPrefillWithRaggedKVCacheWrapper,
    HopperPrefillConfig,
)
from kernelarena.kernels.attention.page_table import build_page_table, kv_view, pages_to_nhd
from kernelarena.kernels.attention.prefill_hopper import TILELANG_CONFIG_D256
from kernelarena.kernels.attention.reference import batch_attention_reference, ragged_attention_reference
from tests.kernels.test_attention import DEVICE, check, indptr, make_cache, workspace

TILELANG = HopperPrefillConfig(128, 128, 8, 2, pack_gqa=False, use_tma=True, language="tilelang")
OVERLAP = HopperPrefillConfig(128, 128, 8, 2, pack_gqa=False, use_tma=True, language="tilelang", overlap=True)
PINGPONG = HopperPrefillConfig(128, 128, 8, 2, pack_gqa=False, use_tma=True, language="tilelang", pingpong=True)
FA3 = HopperPrefillConfig(128, 128, 8, 2, pack_gqa=False, use_tma=True, language="tilelang", overlap=True,
                          pingpong=True)
PERSISTENT = HopperPrefillConfig(128, 128, 8, 2, pack_gqa=False, use_tma=True, language="tilelang", persistent=True)
STATIC = HopperPrefillConfig(128, 128, 8, 2, pack_gqa=False, use_tma=True, language="tilelang", persistent=True,
                             dynamic=False)
IEEE = HopperPrefillConfig(128, 128, 8, 2, pack_gqa=False, use_tma=True, language="tilelang", persistent=True,
                           fast_math=False)
D256 = HopperPrefillConfig(128, 64, 8, 2, pack_gqa=False, use_tma=True, language="tilelang", persistent=True)
D256_FA3 = TILELANG_CONFIG_D256  # 64-key blocks, FA3's schedule, persistent
PP_PERSISTENT = HopperPrefillConfig(128, 128, 8, 2, pack_gqa=False, use_tma=True, language="tilelang", pingpong=True,
                                    persistent=True)
# The GPU tests' cases (benchmarks/tilelang_precompile.py compiles their kernels ahead):
# (config, causal, separate K and V caches, head_dim, page_size) and (config, causal, head_dim).
PAGED_CASES = [(TILELANG, True, False, 128, 16), (TILELANG, True, True, 128, 16), (TILELANG, False, False, 128, 16),
               (TILELANG, True, False, 64, 32), (OVERLAP, True, False, 128, 16), (OVERLAP, False, True, 64, 16),
               (PINGPONG, True, False, 128, 16), (FA3, True, False, 128, 16), (FA3, False, True, 64, 16),
               (PERSISTENT, True, False, 128, 16), (PP_PERSISTENT, True, True, 128, 16),
               (PP_PERSISTENT, False, False, 64, 32), (STATIC, True, False, 128, 16), (IEEE, True, False, 128, 16),
               (D256, True, False, 256, 16), (D256_FA3, False, True, 256, 16)]
PAGED_IDS = ["causal", "kv-tuple", "noncausal", "d64-page32", "overlap", "overlap-noncausal-d64-tuple", "pingpong",
             "fa3", "fa3-noncausal-d64-tuple", "persistent", "pingpong-persistent-kv-tuple",
             "pingpong-persistent-noncausal-d64-page32", "static-persistent", "ieee-persistent", "d256",
             "d256-fa3-noncausal-kv-tuple"]
RAGGED_CASES = [(TILELANG, True, 128), (TILELANG, False, 128), (FA3, True, 128), (PP_PERSISTENT, True, 128),
                (D256_FA3, True, 256), (PP_PERSISTENT, False, 64)]
# The default path's extra cases (pages, dtype, TileLang expected): fp16 on pages of 32 (the other cases are bf16).
DEFAULT_PAGED_CASES = ((32, torch.float16, True),)
# CUDA-graph replays (config, separate K and V caches): causal, head_dim 128, pages of 16, lse.
GRAPH_CASES = [(PERSISTENT, False), (PP_PERSISTENT, True)]


def _shape(page_size: int, causal: bool = True, write_lse: bool = True, overlap: bool = False,
           pingpong: bool = False, ctas: int = 0, graph: bool = False, dynamic: bool = False):
    from kernelarena.kernels.attention import prefill_tilelang

    return prefill_tilelang.kernel_shape(
        num_qo_heads=32, num_kv_heads=8, head_dim=128, page_size=page_size, rows_per_page=2 * page_size or 1,
        causal=causal, sm_scale=128 ** -0.5, block_m=128, block_n=128, num_stages=2, dtype=torch.bfloat16,
        write_lse=write_lse, overlap=overlap, pingpong=pingpong, ctas=ctas, graph=graph, dynamic=dynamic)


@pytest.mark.parametrize("causal,write_lse", [(True, True), (False, False)])
def test_ragged_kernel_lowers_to_a_hand_warp_specialized_tma_pipeline(causal, write_lse):
    """Ragged K/V take the paged program's pipeline: one TMA copy per 64-column half of a block's 128 rows."""
    pytest.importorskip("tilelang")
    from kernelarena.kernels.attention import prefill_tilelang

    source = prefill_tilelang.cuda_source(_shape(0, causal, write_lse))
    assert "tl::wgmma_ss<" in source and "tl::wgmma_rs<" in source  # Q K^T from shared, P V from registers
    assert "__launch_bounds__(384" in source and "tl::warpgroup_reg_dealloc<24>()" in source
    assert source.count("tl::tma_load(K_desc") == 2 and source.count("tl::tma_load(V_desc") == 2
    assert "expect_transaction(16384)" in source and "for (int pg" not in source
    assert ("LSE[" in source) == write_lse


def test_paged_kernel_lowers_to_a_hand_warp_specialized_tma_pipeline():
    pytest.importorskip("tilelang")
    from kernelarena.kernels.attention import prefill_tilelang

    source = prefill_tilelang.cuda_source(_shape(16))
    assert "tl::wgmma_ss<" in source and "tl::wgmma_rs<" in source
    # The producer (threads 256-383) gives up registers and walks the page table; one TMA copy per page and
    # 64-column half, each expecting its 2 KB on the stage's full barrier.
    assert "if (256 <= ((int)threadIdx.x))" in source and "tl::warpgroup_reg_dealloc<24>()" in source
    assert "KVI[" in source and source.count("tl::tma_load(K_desc") == 2 and source.count("tl::tma_load(V_desc") == 2
    assert "expect_transaction(2048)" in source
    # Page p's rows start at p x rows_per_page (32 here: K and V pages interleaved).
    assert "* 32);" in source
    # The producer reads a block's page-table entries once, before it waits for the K stage (their latency then
    # runs during the wait: ncu had the consumers waiting on K in 11% of samples when they came after it), and
    # its K and V copies take the rows read there.
    producer = source[source.index("for (int kb = 0;"):source.index("empty_v[((int64_t)stage)].wait(")]
    assert source.count("KVI[") == 1 and producer.index("KVI[") < producer.index("empty_k[((int64_t)stage)].wait(")
    assert source.count("rows[pg] = ") == 1 and source.count(", rows[pg_") == 4  # 2 K and 2 V copies a page
    # The producer also loads the tile's Q (two 16 KB halves) once the consumers are done with the last tile's;
    # no block-wide barrier after the barriers' initialization (producer and consumers wait on each other there).
    assert "tl::warpgroup_reg_alloc<240>()" in source
    assert source.count("tl::tma_load(Q_desc") == 2 and "expect_transaction(16384)" in source
    assert "empty_q[0].wait(((t & 1) ^ 1));" in source and "full_q[0].wait((t_1 & 1));" in source
    assert source.count("__syncthreads()") == 1
    # A block's stage counts on from the blocks of the block's earlier tiles (persistent blocks run several).
    assert source.count("full_k[((int64_t)stage_1)].wait(") == 1 and source.count(
        "empty_k[((int64_t)stage_1)].arrive()") == 1 and "int stage_1 = ((done + kb_1) & 1);" in source
    # Q K^T is one wgmma chain over the whole head (both halves of each K row, side by side in shared memory), P V
    # one of 128 columns (m64n128k16); no ping-pong barriers unless asked for.
    loop = source[source.index("for (int kb_1 = 0; kb_1 < n_blocks; ++kb_1)"):]
    assert loop.index("tl::wait_wgmma<0>()") > loop.rindex("tl::wgmma_ss<", 0, loop.index("tl::wgmma_rs<"))
    assert loop.count("tl::wgmma_ss<") == 1 and "tl::warpgroup_wait<" not in loop
    assert "tl::wgmma_rs<tl::DataType::kBFloat16, tl::DataType::kBFloat16, tl::DataType::kFloat32, 64, 128, 16" in loop
    # A block every row sees whole is not masked: its Q K^T starts from zero (the first k-step's scale-out 0).
    assert "((0 < ki) ? 1 : (whole ? 0 : 1))" in loop
    assert "__named_barrier_arrive" not in source


def test_head_dim_256_lowers_to_four_column_quarters_and_wide_p_v():
    """head_dim 256 (64-key blocks): one TMA copy per page and 64-column quarter of the head, P V one m64n256k16
    chain a warpgroup, Q K^T one chain over the whole head."""
    pytest.importorskip("tilelang")
    from kernelarena.kernels.attention import prefill_tilelang

    source = prefill_tilelang.cuda_source(prefill_tilelang.kernel_shape(
        num_qo_heads=32, num_kv_heads=8, head_dim=256, page_size=16, rows_per_page=32, causal=True, sm_scale=1 / 16,
        block_m=128, block_n=64, num_stages=2, dtype=torch.bfloat16, write_lse=False, overlap=True, pingpong=True,
        ctas=132, dynamic=True))
    assert source.count("tl::tma_load(K_desc") == 4 and source.count("tl::tma_load(Q_desc") == 4
    assert "tl::DataType::kFloat32, 64, 256, 16" in source and "tl::DataType::kFloat32, 64, 64, 16" in source


@pytest.mark.parametrize("page_size", [16, 0])
def test_warpgroups_register_split_fits_the_launch_allocation(page_size):
    """setmaxnreg only moves registers within the block's launch allocation: the producer's decrease must free
    what the consumers' increase takes, or the increase waits forever (a hang, seen on the H200 with 32 for the
    producer). The launch allocation per thread: 64K registers over 384 threads, in multiples of 8."""
    pytest.importorskip("tilelang")
    import re

    from kernelarena.kernels.attention import prefill_tilelang

    source = prefill_tilelang.cuda_source(_shape(page_size))
    producer = int(re.search(r"warpgroup_reg_dealloc<(\d+)>", source).group(1))
    consumer = int(re.search(r"warpgroup_reg_alloc<(\d+)>", source).group(1))
    launch = 65536 // 384 // 8 * 8
    assert "__launch_bounds__(384, 1)" in source and launch == 168
    assert producer * 128 + consumer * 256 <= launch * 384


def test_persistent_blocks_take_tiles_in_turn():
    """132 blocks (one per multiprocessor on the H200) over the plan's tiles: each role loops over tiles bx, bx +
    132, ..., and the stages' count runs on across tiles (the producer fills the next tile's stages while the
    consumers finish this one); one block per tile otherwise. In graph mode the tile count comes from the plan's
    header on the device, not from the items' shape: a graph captured once replays after re-plans."""
    pytest.importorskip("tilelang")
    from kernelarena.kernels.attention import prefill_tilelang

    source = prefill_tilelang.cuda_source(_shape(16, ctas=132))
    tiles = "((((n_entries * 32) + 131) - ((int)blockIdx.x)) / 132)"
    assert "HDR[0]" not in source
    assert source.count(f"for (int t = 0; t < ({tiles}") == 1 and source.count(f"for (int t_1 = 0; t_1 < ({tiles}") == 1
    graph = prefill_tilelang.cuda_source(_shape(16, ctas=132, graph=True))
    tiles = "(((n_tiles + 131) - ((int)blockIdx.x)) / 132)"
    assert "n_tiles = HDR[0];" in graph and "n_entries * 32" not in graph
    assert graph.count(f"for (int t = 0; t < ({tiles}") == 1 and graph.count(f"for (int t_1 = 0; t_1 < ({tiles}") == 1
    with pytest.raises(ValueError, match="persistent"):
        _shape(16, graph=True)
    assert "done = (done + n_blocks);" in source and "done = ((((kv_hi + 127) - kv_lo) >> 7) + done);" in source
    assert "/ 132)" not in prefill_tilelang.cuda_source(_shape(16))


@pytest.mark.parametrize("graph", [False, True])
def test_dynamic_persistent_blocks_take_tiles_from_a_counter(graph):
    """Dynamic tiles: block bx's first tile is bx, each later one the counter's next value plus 132, fetched by one
    producer thread and shared with the other producer threads through their own named barrier and with the
    consumers through a shared slot they read once full_q's phase completes; a value past the tiles ends both
    roles' loops (the producer still arrives on full_q, so the consumers see it). The last block to finish
    resets the counter (its count is acq_rel: every block's fetches come before it)."""
    pytest.importorskip("tilelang")
    from kernelarena.kernels.attention import prefill_tilelang

    source = prefill_tilelang.cuda_source(_shape(16, ctas=132, dynamic=True, graph=graph))
    n_tiles = "n_tiles" if graph else "(n_entries * 32)"
    producer = source[source.index("warpgroup_reg_dealloc<24>"):source.index("warpgroup_reg_alloc<240>")]
    consumers = source[source.index("warpgroup_reg_alloc<240>"):]
    assert "fetched = ((int)blockIdx.x);" in producer and producer.count("AtomicAddRet((&(CTR[0])), 1) + 132)") == 1
    steps = _order(producer, "AtomicAddRet((&(CTR[0]))", "((int*)slot)[(t & 1)] = fetched;",
                   "tl::__sync_thread_partial(7, 128);", "tile = ((int*)slot)[(t & 1)];",
                   "empty_q[0].wait(((t & 1) ^ 1));", f"if ({n_tiles} <= tile)", "break;", "tl::tma_load(Q_desc")
    assert steps == sorted(steps) and "full_q[0].arrive();" in producer[steps[5]:steps[6]]
    assert producer.count("break;") == 1 and consumers.count("break;") == 1
    steps = _order(consumers, "full_q[0].wait((t_1 & 1));", "tile_1 = ((int*)slot)[(t_1 & 1)];",
                   f"if ({n_tiles} <= tile_1)", "break;", "tl::wgmma_ss<")
    assert steps == sorted(steps)
    reset = producer[producer.index("AtomicAddRet((&(CTR[1])), 1, 4)"):]
    assert "if (finished == 131) {" in reset and "CTR[0] = 0;" in reset and "CTR[1] = 0;" in reset
    assert "CTR[" not in prefill_tilelang.cuda_source(_shape(16, ctas=132)).split("{", 1)[1]  # in turn: unused


def _order(text: str, *needles: str) -> list[int]:
    return [text.index(x) for x in needles]


def test_overlapped_paged_kernel_waits_for_q_k_only_before_the_softmax():
    """In each step after the first: Q K^T, the outputs rescaled, P V of the block before, then a wait that leaves
    one group (P V) running through the softmax, then a wait for all."""
    pytest.importorskip("tilelang")
    from kernelarena.kernels.attention import prefill_tilelang

    source = prefill_tilelang.cuda_source(_shape(16, overlap=True))
    loop = source[source.index("for (int kb_1 = 1; kb_1 < n_blocks; ++kb_1)"):]
    order = _order(loop, "tl::wgmma_ss<", "make_float2(alpha[", "tl::wgmma_rs<", "tl::wait_wgmma<1>()", "exp2f(",
                   "tl::wait_wgmma<0>()")
    assert order == sorted(order)
    assert loop.count("tl::wgmma_ss<") == 1 and "tl::warpgroup_wait<" not in loop[:loop.index("wait_wgmma<0>")]


@pytest.mark.parametrize("overlap", [False, True])
def test_pingpong_warpgroups_take_turns_issuing_their_gemms(overlap):
    """Each consumer warpgroup waits for its turn (barrier 5 + its index) before its block's first GEMM and hands
    the turn over (barrier 6 - its index) after its last one, before waiting on them; warpgroup 1 gives warpgroup
    0 the first turn, and skips the hand-over of its last block, so that no barrier is left half-arrived."""
    pytest.importorskip("tilelang")
    from kernelarena.kernels.attention import prefill_tilelang

    source = prefill_tilelang.cuda_source(_shape(16, overlap=overlap, pingpong=True))
    turn, hand_over = "__sync_thread_partial(((((int)threadIdx.x) >> 7) + 5), 256)", \
        "__named_barrier_arrive((6 - (((int)threadIdx.x) >> 7)), 256)"
    first = source.index(turn)
    assert "if (((((int)threadIdx.x) >> 7) == 1) & (0 < n_blocks)) {\n        tl::__named_barrier_arrive(5, 256);" \
        in source[:first]
    loop = source[source.index(f"for (int kb_1 = {int(overlap)}; kb_1 < n_blocks; ++kb_1)"):]
    last_gemm = "tl::wgmma_rs<" if overlap else "tl::wgmma_ss<"
    wait = "tl::wait_wgmma<1>()" if overlap else "tl::wait_wgmma<0>()"
    order = _order(loop, turn, "tl::wgmma_ss<", hand_over, wait)
    assert order == sorted(order) and loop.rindex(last_gemm, 0, order[2]) >= order[1]
    assert "if (((((int)threadIdx.x) >> 7) == 0) | ((kb_1 + 1) < n_blocks)) {" in loop[:order[2]]


@pytest.mark.parametrize("head_dim,page_size,block_n,stages,ok", [
    (128, 16, 128, 2, True), (64, 32, 128, 2, True), (128, 128, 128, 2, True), (256, 16, 128, 2, False),
    (128, 48, 128, 2, False), (128, 256, 128, 2, False), (96, 16, 128, 2, False), (128, 0, 128, 2, True),
    (64, 0, 128, 2, True), (256, 0, 128, 2, False), (256, 16, 64, 2, True), (256, 0, 64, 2, True),
    (256, 16, 64, 3, False), (128, 16, 128, 3, True)])
def test_program_serves_head_dims_of_whole_halves_and_pages_dividing_the_block(head_dim, page_size, block_n, stages,
                                                                               ok):
    """Paged and ragged (page size 0) K/V alike: head_dim 256 with 128-key blocks (or 64-key blocks in three stages)
    would not fit Q and the K/V stages in shared memory, so it goes to the Triton kernel instead of failing to
    compile; 64-key blocks in two stages take 192 KB."""
    from kernelarena.kernels.attention.prefill_tilelang import supported

    assert supported(head_dim, page_size, block_n, 128, stages) is ok


def test_rows_view_covers_each_layout_or_declines():
    from kernelarena.kernels.attention.prefill_tilelang import rows_view

    # Interleaved K/V pages [pages, 2, page, heads, dim]: K's rows, 2 x page apart per page.
    cache = torch.arange(5 * 2 * 4 * 3 * 8, dtype=torch.float32).view(5, 2, 4, 3, 8)
    view = kv_view(cache, "NHD")
    rows, per_page = rows_view(view.k, view.strides, 4)
    assert per_page == 8 and rows.shape == (4 * 8 + 4, 3, 8)
    assert torch.equal(rows[3 * 8 + 2], cache[3, 0, 2]) and torch.equal(rows[4 * 8 + 3], cache[4, 0, 3])
    # HND pages: heads are not packed within a token's row, so there is no row view.
    hnd = kv_view(torch.zeros(5, 2, 3, 4, 8), "HND")
    assert rows_view(hnd.k, hnd.strides, 4) is None
    # Ragged K/V: the rows as they are.
    k = torch.randn(10, 3, 8)
    rows, per_page = rows_view(k, (k.stride(0), k.stride(0), k.stride(1)), 0)
    assert rows.shape == (10, 3, 8) and per_page == 1 and torch.equal(rows, k)


def test_tilelang_language_needs_per_head_tiles():
    with pytest.raises(ValueError, match="pack_gqa=False"):
        HopperPrefillConfig(128, 128, 8, 2, pack_gqa=True, language="tilelang")
    with pytest.raises(ValueError, match="language"):
        HopperPrefillConfig(language="cute")
    for option in ("overlap", "pingpong"):
        with pytest.raises(ValueError, match=option):
            HopperPrefillConfig(128, 128, 8, 2, pack_gqa=False, **{option: True})
    with pytest.raises(ValueError, match="fast_math=False is the TileLang kernel's"):
        HopperPrefillConfig(128, 128, 8, 2, pack_gqa=False, fast_math=False)
    with pytest.raises(ValueError, match="dynamic=False is for persistent blocks"):
        HopperPrefillConfig(128, 128, 8, 2, pack_gqa=False, language="tilelang", dynamic=False)


def test_options_reach_the_kernel_and_its_label():
    """fast_math and dynamic (the defaults) go to the kernel's shape and TileLang's pass configs; the tables name the
    kernels without them ("ieee", "static"), as session 19's were built."""
    from kernelarena.kernels.attention import prefill_tilelang

    assert PERSISTENT.label == "tilelang m128n128w8s2 head tma persistent"
    assert STATIC.label.endswith(" persistent static") and IEEE.label.endswith(" persistent ieee")
    shapes = {flag: _shape(16, ctas=132, dynamic=flag) for flag in (True, False)}
    assert shapes[True].dynamic and not shapes[False].dynamic and not _shape(16, dynamic=True).dynamic  # one a tile
    assert prefill_tilelang.pass_configs(shapes[True])["tl.enable_fast_math"] is True
    assert prefill_tilelang.pass_configs(shapes[True]._replace(fast_math=False))["tl.enable_fast_math"] is False


def _on_sm90():
    if not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] != 9:
        pytest.skip("the TileLang prefill kernel targets sm90")
    pytest.importorskip("tilelang")


def _ran_tilelang(wrapper) -> bool:
    return type(wrapper._runner.last_kernel).__module__.startswith("tilelang")


def _counter_at_rest(wrapper) -> bool:
    """Whether the dynamic kernel's tile counter is back at zero (the last block to finish resets it): else the
    next launch would start past its first tiles."""
    torch.cuda.synchronize()
    counter = wrapper._runner._hopper._tile_counter
    return counter is not None and counter.tolist() == [0, 0]


@pytest.mark.gpu
@pytest.mark.parametrize("config,causal,as_tuple,head_dim,page_size", PAGED_CASES, ids=PAGED_IDS)
def test_paged_tilelang_matches_reference_on_sm90(config, causal, as_tuple, head_dim, page_size):
    """Interleaved K/V pages and separate K and V caches; a request with more queries than keys (rows that see
    nothing: output 0, lse -inf), one of a single query, tiles and blocks cut short by the request's end."""
    _on_sm90()
    qo_lens, kv_lens = [300, 129, 1, 40], [700, 129, 64, 20]
    table, cache = make_cache(kv_lens, page_size, 8, head_dim, seed=3, as_tuple=as_tuple)
    qo = indptr(qo_lens)
    q = torch.randn(int(qo[-1]), 32, head_dim).to(torch.bfloat16).to(DEVICE)
    wrapper = BatchPrefillWithPagedKVCacheWrapper(workspace(), config=config)
    wrapper.plan(qo, table.kv_indptr.cpu(), table.kv_indices, table.kv_last_page_len.cpu(), 32, 8, head_dim,
                 page_size, causal=causal, sm_scale=0.1)
    out, lse = wrapper.run(q, cache, return_lse=True)
    assert _ran_tilelang(wrapper)
    k, v = cache if as_tuple else pages_to_nhd(cache, "NHD")
    ref_out, ref_lse = batch_attention_reference(q, k, v, qo, table.kv_indptr, table.kv_indices,
                                                 table.kv_last_page_len, causal=causal, sm_scale=0.1)
    check(out, lse, ref_out, ref_lse)
    if as_tuple:  # without lse: the kernel compiled without its store
        torch.testing.assert_close(wrapper.run(q, cache), out, rtol=0, atol=0)
    if config.persistent and config.dynamic:
        assert _counter_at_rest(wrapper)
        torch.testing.assert_close(wrapper.run(q, cache, return_lse=True)[0], out, rtol=0, atol=0)


@pytest.mark.gpu
@pytest.mark.parametrize("config,causal,head_dim", RAGGED_CASES,
                         ids=["causal", "noncausal", "fa3", "pingpong-persistent", "d256-fa3", "d64-noncausal"])
def test_ragged_tilelang_matches_reference_on_sm90(config, causal, head_dim):
    _on_sm90()
    qo_lens, kv_lens = [300, 11, 0, 129], [700, 30, 5, 129]
    qo, kv = indptr(qo_lens), indptr(kv_lens)
    q = torch.randn(int(qo[-1]), 32, head_dim).to(torch.bfloat16).to(DEVICE)
    k = torch.randn(int(kv[-1]), 8, head_dim).to(torch.bfloat16).to(DEVICE)
    v = torch.randn(int(kv[-1]), 8, head_dim).to(torch.bfloat16).to(DEVICE)
    wrapper = BatchPrefillWithRaggedKVCacheWrapper(workspace(), config=config)
    wrapper.plan(qo, kv, 32, 8, head_dim, causal=causal)
    out, lse = wrapper.run(q, k, v, return_lse=True)
    assert _ran_tilelang(wrapper)
    ref_out, ref_lse = ragged_attention_reference(q, k, v, qo, kv, causal=causal)
    check(out, lse, ref_out, ref_lse)


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["auto", "on"])
def test_default_prefill_runs_the_tilelang_kernel_on_sm90(monkeypatch, mode):
    """A wrapper without a config on an H100/H200, by default (auto) and with KERNELARENA_HOPPER_PREFILL=1: the
    TileLang kernel with FA3's schedule on persistent blocks, for a batch of fewer tiles than multiprocessors too
    (the portable kernel is slower there, results of 2026-12-04), against the float64 reference."""
    _on_sm90()
    from kernelarena.kernels.attention import prefill_hopper

    monkeypatch.setattr(prefill_hopper, "mode", mode)
    for qo_lens, kv_lens in (([300, 129, 1, 40], [700, 129, 64, 20]), ([40], [90])):
        table, cache = make_cache(kv_lens, 16, 8, 128, seed=4)
        qo = indptr(qo_lens)
        q = torch.randn(int(qo[-1]), 32, 128).to(torch.bfloat16).to(DEVICE)
        wrapper = BatchPrefillWithPagedKVCacheWrapper(workspace())
        wrapper.plan(qo, table.kv_indptr.cpu(), table.kv_indices, table.kv_last_page_len.cpu(), 32, 8, 128, 16,
                     causal=True)
        out = wrapper.run(q, cache)
        assert _ran_tilelang(wrapper) and wrapper._runner.config == prefill_hopper.TILELANG_CONFIG
        k, v = pages_to_nhd(cache, "NHD")
        ref_out, _ = batch_attention_reference(q, k, v, qo, table.kv_indptr, table.kv_indices,
                                               table.kv_last_page_len, causal=True)
        check(out, None, ref_out, None)
        assert _counter_at_rest(wrapper)


@pytest.mark.gpu
def test_default_prefill_on_sm90_fp16_ragged_and_pages_of_one(monkeypatch):
    """The default (auto) on an H100/H200 beyond the bf16 paged case: fp16 pages of 32 and ragged K/V run the
    TileLang kernel; pages of one token (FlashInfer-Trace's layout) stay on the portable kernel. Each against the
    float64 reference."""
    _on_sm90()
    from kernelarena.kernels.attention import prefill_hopper

    monkeypatch.setattr(prefill_hopper, "mode", "auto")
    qo_lens, kv_lens = [200, 1, 70], [330, 40, 70]
    qo = indptr(qo_lens)
    for page_size, dtype, tilelang in DEFAULT_PAGED_CASES + ((1, torch.bfloat16, False),):
        table, cache = make_cache(kv_lens, page_size, 8, 128, seed=6, dtype=dtype)
        q = torch.randn(int(qo[-1]), 32, 128).to(dtype).to(DEVICE)
        wrapper = BatchPrefillWithPagedKVCacheWrapper(workspace())
        wrapper.plan(qo, table.kv_indptr.cpu(), table.kv_indices, table.kv_last_page_len.cpu(), 32, 8, 128,
                     page_size, causal=True, q_data_type=dtype)
        out, lse = wrapper.run(q, cache, return_lse=True)
        assert _ran_tilelang(wrapper) == tilelang, (page_size, dtype)
        k, v = pages_to_nhd(cache, "NHD")
        ref_out, ref_lse = batch_attention_reference(q, k, v, qo, table.kv_indptr, table.kv_indices,
                                                     table.kv_last_page_len, causal=True)
        check(out, lse, ref_out, ref_lse)
    kv = indptr(kv_lens)
    q = torch.randn(int(qo[-1]), 32, 128).to(torch.bfloat16).to(DEVICE)
    k = torch.randn(int(kv[-1]), 8, 128).to(torch.bfloat16).to(DEVICE)
    v = torch.randn(int(kv[-1]), 8, 128).to(torch.bfloat16).to(DEVICE)
    wrapper = BatchPrefillWithRaggedKVCacheWrapper(workspace())
    wrapper.plan(qo, kv, 32, 8, 128, causal=True)
    out, lse = wrapper.run(q, k, v, return_lse=True)
    assert _ran_tilelang(wrapper)
    ref_out, ref_lse = ragged_attention_reference(q, k, v, qo, kv, causal=True)
    check(out, lse, ref_out, ref_lse)


@pytest.mark.gpu
def test_dataset_solution_matches_reference_on_sm90():
    """The example dataset's TileLang prefill solution (solution_prefill_tilelang.py): run() per call, and plan()
    once with its launch repeated on other cache copies (as kernelarena times it), against the float64 reference
    and the dataset's own PyTorch reference entry."""
    _on_sm90()
    from kernelarena.kernels.attention import reference, solution_prefill_tilelang

    table, cache = make_cache([700, 129, 64, 20], 16, 8, 128, seed=7)
    k, v = cache[:, 0], cache[:, 1]
    qo = indptr([300, 129, 1, 20]).to(DEVICE)
    q = torch.randn(int(qo[-1]), 32, 128).to(torch.bfloat16).to(DEVICE)
    args = (q, k, v, qo, table.kv_indptr, table.kv_indices, table.kv_last_page_len, 1 / math.sqrt(128))
    ref_out, ref_lse = torch.empty_like(q), torch.empty(q.shape[:2], device=DEVICE)
    reference.run_prefill_causal(*args, ref_out, ref_lse)
    out, lse = torch.full_like(q, float("nan")), torch.full(q.shape[:2], float("nan"), device=DEVICE)
    solution_prefill_tilelang.run(*args, out, lse)
    check(out, lse, ref_out.double(), ref_lse.double())
    # The dataset's layout (separate contiguous caches): planned once, launched on other copies of the same inputs,
    # as the timed loop rotates them; a launch on caches laid out otherwise than planned is refused.
    dense = (q, k.contiguous(), v.contiguous()) + args[3:]
    launch = solution_prefill_tilelang.plan(*dense)
    for _ in range(2):
        copies = tuple(t.clone() for t in dense[:3]) + dense[3:]
        out, lse = torch.full_like(q, float("nan")), torch.full(q.shape[:2], float("nan"), device=DEVICE)
        launch(*copies, out, lse)
        check(out, lse, ref_out.double(), ref_lse.double())
    with pytest.raises(ValueError, match="rows apart"):
        launch(*args, out, lse)
    torch.cuda.synchronize()
    assert solution_prefill_tilelang._COUNTERS[str(q.device)].tolist() == [0, 0]


def test_only_persistent_tilelang_configs_take_cuda_graphs():
    """A graph replays the captured grid: the TileLang kernel's persistent blocks keep it fixed; any other Hopper
    config's grid is the plan's tile count, and the wrapper refuses it, naming the config that would do."""
    assert PERSISTENT.graph_safe and PP_PERSISTENT.graph_safe
    assert not (TILELANG.graph_safe or FA3.graph_safe)
    BatchPrefillWithPagedKVCacheWrapper(workspace(), config=PERSISTENT, use_cuda_graph=True)
    with pytest.raises(UnsupportedError, match="persistent=True"):
        BatchPrefillWithPagedKVCacheWrapper(workspace(), config=FA3, use_cuda_graph=True)


@pytest.mark.gpu
@pytest.mark.parametrize("config,as_tuple", GRAPH_CASES, ids=["persistent", "pingpong-persistent-kv-tuple"])
def test_tilelang_graph_replays_after_replans_on_sm90(config, as_tuple):
    """Captured once on the largest batch, the persistent kernel's graph replays over three re-plans with other
    lengths (fewer tiles, a request with no queries) and matches the float64 reference each time."""
    _on_sm90()
    kv_lens, qo_lens = [900, 700, 257, 64], [600, 300, 129, 64]
    table, cache = make_cache(kv_lens, 16, 8, 128, seed=5, as_tuple=as_tuple)
    num_pages = (cache[0] if as_tuple else cache).shape[0]
    q = torch.randn(sum(qo_lens), 32, 128).to(torch.bfloat16).to(DEVICE)
    out, lse = torch.empty_like(q), torch.empty(q.shape[:2], dtype=torch.float32, device=DEVICE)
    wrapper = BatchPrefillWithPagedKVCacheWrapper(torch.empty(64 << 20, dtype=torch.uint8, device=DEVICE),
                                                  config=config, use_cuda_graph=True)

    def plan(qo_lens, kv_lens, seed):
        table = build_page_table(kv_lens, 16, num_pages=num_pages, shuffle=True,
                                 generator=torch.Generator().manual_seed(seed), device=DEVICE)
        wrapper.plan(indptr(qo_lens), table.kv_indptr.cpu(), table.kv_indices, table.kv_last_page_len.cpu(), 32, 8,
                     128, 16, causal=True)
        return table

    plan(qo_lens, kv_lens, 0)
    wrapper.run(q, cache, out=out, lse=lse, return_lse=True)  # compiles (or loads) outside the capture
    assert _ran_tilelang(wrapper)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        wrapper.run(q, cache, out=out, lse=lse, return_lse=True)
    for seed, (new_qo, new_kv) in enumerate([([300, 1, 0, 64], [800, 30, 5, 64]), ([600, 300, 129, 64], kv_lens),
                                             ([17], [1000])], start=1):
        table = plan(new_qo, new_kv, seed)
        q.normal_()
        out.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        total, qo = sum(new_qo), indptr(new_qo)
        k, v = cache if as_tuple else pages_to_nhd(cache, "NHD")
        ref_out, ref_lse = batch_attention_reference(q[:total], k, v, qo, table.kv_indptr, table.kv_indices,
                                                     table.kv_last_page_len, causal=True)
        check(out[:total], lse[:total], ref_out, ref_lse)
        assert _counter_at_rest(wrapper)  # replays included: the counter lives at one address
