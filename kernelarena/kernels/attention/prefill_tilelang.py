"""TileLang prefill kernel for Hopper (sm90): warpgroup MMA fed by a warp-specialized TMA pipeline.

Same work list as the Triton Hopper kernel (scheduler.plan_work, never split); a tile is BLOCK_M query tokens of
one head, the KV range of the tile in BLOCK_N blocks, online softmax in base 2. One program for paged and ragged
K/V, warp-specialized by hand (``T.ws``; TileLang neither lowers a gathered block to TMA nor pipelines it), checked
in the CUDA it lowers to for sm_90a (tests/kernels/test_attention_prefill_tilelang.py):
- a producer warpgroup loads each tile's Q and walks its K/V blocks: one TMA copy per page (ragged: per block)
  and 64-column half of the head (``T.tma_copy``: a 16-row slice of a 128-column swizzled tile is not one TMA
  box, a 64-column half of it is), into two stages of K and V buffers guarded by full/empty mbarriers;
- two consumer warpgroups (64 query rows each) run the online softmax on ``wgmma``: Q K^T from shared memory,
  P V with P in registers (m64n128k16 at head_dim 128);
- options: ``overlap`` (FA3's order: the next block's Q K^T and this one's P V run under the softmax),
  ``pingpong`` (the consumer warpgroups take turns issuing their GEMMs), ``ctas`` (persistent blocks, one per
  multiprocessor; the producer loads the next tile while the consumers finish one), taking tiles from a counter in
  memory (``dynamic``) or in turn, ``fast_math`` (nvcc's --use_fast_math, as FlashInfer's kernels are built).
Head dims 64, 128 and 256 (one, two or four 64-column quarters; 256 with 64-key blocks, for shared memory); pages
of at most BLOCK_N rows that divide it. The block's K/V range starts at a page boundary (kv_lo is 0: no window, no
split).

Rows are compact [token, head, head_dim] rows: q and out contiguous, and K/V rows with heads packed (NHD).
The launcher (HopperPrefillLauncher, language "tilelang") falls back to the Triton kernel for any other layout.
Scores and the lse written are base 2, as in paged_kernel.py. No sliding window, soft-capping or KV split.
Compiled once per process and shape (heads, head_dim, page size, tile, dtype, causal, scale); the first call
of a shape pays TileLang's compile (10-30 s) unless TileLang's cache has it (benchmarks/tilelang_precompile.py
fills it on a machine without a GPU).

No ``from __future__ import annotations``: TileLang evaluates the prim_func's annotations, which refer to the
enclosing function's locals.
"""

import functools
from typing import NamedTuple

import torch

from .paged_kernel import LOG2E
from .scheduler import HEADER, ITEM_FIELDS

_DTYPES = {torch.bfloat16: "bfloat16", torch.float16: "float16"}


class TileShape(NamedTuple):
    """The compile-time shape of one kernel."""

    num_qo_heads: int
    num_kv_heads: int
    head_dim: int
    page_size: int  # 0: ragged (a request's one "page" index is its first K/V row)
    rows_per_page: int  # K/V row stride of one page (page_size, or more when K and V pages interleave)
    causal: bool
    scale_log2: float  # sm_scale * log2(e)
    block_m: int
    block_n: int
    num_stages: int
    dtype: str
    write_lse: bool
    overlap: bool = False  # the next block's Q K^T and this one's P V run while this block's softmax does (FA3's)
    pingpong: bool = False  # the two consumer warpgroups take turns issuing their GEMMs (FA3's)
    ctas: int = 0  # persistent blocks (one per multiprocessor), or 0: one block per tile
    graph: bool = False  # persistent blocks read the tile count from the plan's header (CUDA-graph replays)
    fast_math: bool = True  # nvcc --use_fast_math, as FlashInfer builds its kernels (see pass_configs)
    dynamic: bool = False  # persistent blocks take their next tile from a counter in memory (see _ws_attend)


HALF = 64  # head_dim columns per TMA copy (the widest box of a 128-byte swizzled tile)
PRODUCER_REGS, CONSUMER_REGS = 24, 240  # registers a thread of the producer / a consumer warpgroup
TURN_BARRIER = 5  # named barriers 5 and 6: the consumer warpgroups' turns (ping-pong); 3 is the consumers' own
PRODUCER_BARRIER = 7  # the producer warpgroup's own (dynamic tiles: the fetched tile's index is shared through it)


def prefill_program(shape: TileShape):
    """The TileLang prim_func for ``shape``, ragged (page_size 0) or paged K/V: (Q, K, V, KV_INDICES, HDR,
    ITEMS, CTR, O [, LSE]). Q, O: [total_q, Hq, D]; K, V: [kv_rows, Hkv, D] (paged: page p's token t at row p x
    rows_per_page + t); HDR: the plan's header (int32 [HEADER]; word 0 the tile count); ITEMS: [entries,
    ITEM_FIELDS] int32 (the plan's items); CTR: int32 [2], zero between launches (``dynamic``: the tiles handed
    out and the blocks finished; the last block to finish sets both back to 0); LSE: [total_q, Hq] float32. Tiles
    are taken heads first: the heads of one GQA group run side by side and share their K/V blocks through L2.

    With ``graph``, persistent blocks (``ctas``) read the tile count from HDR on the device, so the launch (a grid
    of ``ctas``, the same buffers) does not change with the plan: a CUDA graph captured once replays after
    re-plans, ITEMS being a view of the plan buffer's whole capacity. Otherwise the count comes from ITEMS' shape,
    a kernel parameter: the count read from memory takes a register, and the 24-register producer then spills 4
    bytes (ptxas, sm_90a)."""
    import tilelang.language as T

    s = shape
    hq, hk, d = s.num_qo_heads, s.num_kv_heads, s.head_dim
    total_q, kv_rows = T.dynamic("total_q"), T.dynamic("kv_rows")
    n_idx, n_entries = T.dynamic("n_idx"), T.dynamic("n_entries")
    attend = _ws_attend(T, s, _Steps(T, s), n_entries)
    dtype = s.dtype

    if s.write_lse:
        @T.prim_func
        def prefill_lse(Q: T.Tensor((total_q, hq, d), dtype), K: T.Tensor((kv_rows, hk, d), dtype),
                        V: T.Tensor((kv_rows, hk, d), dtype), KVI: T.Tensor((n_idx,), "int32"),
                        HDR: T.Tensor((HEADER,), "int32"), ITEMS: T.Tensor((n_entries, ITEM_FIELDS), "int32"),
                        CTR: T.Tensor((2,), "int32"), O: T.Tensor((total_q, hq, d), dtype),
                        LSE: T.Tensor((total_q, hq), "float32")):
            attend(Q, K, V, KVI, HDR, ITEMS, CTR, O, LSE)

        return prefill_lse

    @T.prim_func
    def prefill(Q: T.Tensor((total_q, hq, d), dtype), K: T.Tensor((kv_rows, hk, d), dtype),
                V: T.Tensor((kv_rows, hk, d), dtype), KVI: T.Tensor((n_idx,), "int32"),
                HDR: T.Tensor((HEADER,), "int32"), ITEMS: T.Tensor((n_entries, ITEM_FIELDS), "int32"),
                CTR: T.Tensor((2,), "int32"), O: T.Tensor((total_q, hq, d), dtype)):
        attend(Q, K, V, KVI, HDR, ITEMS, CTR, O, None)

    return prefill


SMEM_BYTES = 227 * 1024 - 1024  # an sm90 block's shared memory, less the barriers and the tile slot
HEAD_DIMS = (64, 128, 256)  # whole 64-column quarters of a head, one TMA copy each


def stages(num_stages: int) -> int:
    """The K/V stages a kernel gets for a config's num_stages (two or three: kernel_shape's clamp)."""
    return min(max(num_stages, 2), 3)


def supported(head_dim: int, page_size: int, block_n: int, block_m: int = 128, num_stages: int = 2) -> bool:
    """Whether the program serves this head size and page size (0: ragged K/V) with BLOCK_N-token blocks: whole
    64-column halves up to 256, pages dividing the block, and Q plus the K and V stages in shared memory (head_dim
    256 with 128-key blocks would need 320 KB at two stages: 64-key blocks take 192 KB)."""
    fits = (block_m + 2 * stages(num_stages) * block_n) * head_dim * 2 <= SMEM_BYTES
    return head_dim in HEAD_DIMS and fits and (
        page_size == 0 or (page_size <= block_n and block_n % page_size == 0))


class _Steps:
    """The consumers' steps, as TileLang macros over their fragments: the work item's fields, the
    block's mask, the online softmax, the rescale, the lse store."""

    def __init__(self, T, s: TileShape):
        bm, bn = s.block_m, s.block_n
        scale = s.scale_log2
        neg_inf = -T.infinity("float32")

        def fragments():
            """The softmax's fragments: scores sc [bm, bn] float32, P [bm, bn] in the input type, and per row m,
            the previous m, m as used (0 for -inf), alpha, the running sum l and this block's sum (float32)."""
            rows = [T.alloc_fragment([bm], "float32") for _ in range(6)]
            return (T.alloc_fragment([bm, bn], "float32"), T.alloc_fragment([bm, bn], s.dtype), *rows)

        def work_item(ITEMS, be):
            """tok_base, qo_len, kv_len, row_start, kv_lo, kv_hi, page_base of the block's item, as local
            variables (a plain function called while the kernel is built: a macro would return copies)."""
            return tuple(T.alloc_var("int32", init=ITEMS[be, f]) for f in (0, 1, 2, 3, 5, 6, 7))

        def edge(start, diag0, kv_hi):
            """Whether some row of the tile sees only part of the block at ``start`` (the request's end, or the
            causal diagonal: row 0 sees the least), as an expression."""
            cut = start + bn > kv_hi
            return (cut | (start + bn - 1 > diag0)) if s.causal else cut

        @T.macro
        def masked(sc, start, diag0, kv_hi):
            """An edge block's scores start as 0 where a row may see the key, else -inf (Q K^T accumulates onto
            them); a whole block's are left alone: Q K^T starts from zero there (no test per score)."""
            if edge(start, diag0, kv_hi):
                for i, j in T.Parallel(bm, bn):
                    visible = (start + j < kv_hi) & (start + j <= diag0 + i) if s.causal else start + j < kv_hi
                    sc[i, j] = T.if_then_else(visible, 0, neg_inf)

        @T.macro
        def softmax(sc, m, m_prev, m_use, alpha, r_sum):
            """Scores to exponentials against the new row maxima; alpha rescales what came before."""
            T.copy(m, m_prev)
            T.reduce_max(sc, m, dim=1, clear=False)
            for i in T.Parallel(bm):
                # A row that has seen no key keeps m = -inf; its exponents are taken against 0 (all 0).
                m_use[i] = T.if_then_else(m[i] == neg_inf, 0, m[i] * scale)
                alpha[i] = T.exp2(m_prev[i] * scale - m_use[i])
            for i, j in T.Parallel(bm, bn):
                sc[i, j] = T.exp2(sc[i, j] * scale - m_use[i])
            T.reduce_sum(sc, r_sum, dim=1)

        @T.macro
        def update_and_convert(sc, p, alpha, l_sum, r_sum):
            """The row sums rescaled by alpha plus this block's; P in the input type for P V."""
            for i in T.Parallel(bm):
                l_sum[i] = l_sum[i] * alpha[i] + r_sum[i]
            T.copy(sc, p)

        @T.macro
        def rescale(accs, alpha):
            """The outputs so far rescaled by alpha."""
            for acc in accs:
                for i, j in T.Parallel(bm, acc.shape[1]):
                    acc[i, j] *= alpha[i]

        @T.macro
        def store_out(O, acc, l_sum, inv, row0, row_start, qo_len, bh):
            """The outputs over their row sums, by one reciprocal a row (a row that saw no key has outputs 0); a
            tile whose rows all belong to its request stores them without a test a row (the tests and their
            branches were most of the consumers' epilogue, sm_90a SASS)."""
            for i in T.Parallel(bm):
                inv[i] = T.if_then_else(l_sum[i] > 0, 1.0 / l_sum[i], 1.0)
            if row_start + bm <= qo_len:
                for i, j in T.Parallel(bm, acc.shape[1]):
                    O[row0 + i, bh, j] = acc[i, j] * inv[i]
            else:
                for i, j in T.Parallel(bm, acc.shape[1]):
                    if row_start + i < qo_len:
                        O[row0 + i, bh, j] = acc[i, j] * inv[i]

        @T.macro
        def store_lse(LSE, m, l_sum, row0, row_start, qo_len, bh):
            for i in T.Parallel(bm):
                if row_start + i < qo_len:
                    LSE[row0 + i, bh] = T.if_then_else(l_sum[i] > 0, m[i] * scale + T.log2(l_sum[i]), neg_inf)

        self.fragments, self.work_item, self.edge, self.masked, self.softmax = (fragments, work_item, edge, masked,
                                                                                  softmax)
        self.update_and_convert, self.rescale, self.store_out, self.store_lse = (update_and_convert, rescale, store_out,
                                                                                 store_lse)


def _ws_attend(T, s: TileShape, steps: _Steps, n_entries):
    """Warp-specialized by hand: warpgroups 0-1 consume (64 query rows each), warpgroup 2 produces. Paged K/V: one
    TMA copy per page and 64-column half; ragged K/V: one per 64-column half of the block's BLOCK_N rows."""
    group = s.num_qo_heads // s.num_kv_heads
    hq, d, bm, bn = s.num_qo_heads, s.head_dim, s.block_m, s.block_n
    ps = s.page_size or bn  # rows per TMA copy
    halves = list(range(d // HALF))  # a list, not a range: TileLang expands the loops over it in Python
    stages = s.num_stages
    acc_t, dtype = "float32", s.dtype

    @T.macro
    def block_rows(rows, KVI, kb, page_base, last_page):
        """The K/V rows of block kb's TMA copies, read from the page table into the producer's registers before
        it waits for a stage: the load's latency then runs during the wait, not after it. A paged block's pages
        past the range repeat the last one; a ragged block's rows past the request are the next request's (or
        TMA's zeros): masked either way."""
        if s.page_size:
            first = page_base + kb * (bn // ps)
            for pg in T.unroll(bn // ps):
                rows[pg] = KVI[T.min(first + pg, last_page)] * s.rows_per_page
        else:
            rows[0] = KVI[page_base] + kb * bn

    @T.macro
    def load_block(X, x_s, rows, empty, full, stage, phase, kv_head):
        """The producer's turn for one of K and V: wait for the stage to be free, issue its TMA copies, then
        arrive (the copies' bytes complete the stage)."""
        T.mbarrier_wait_parity(empty[stage], phase ^ 1)
        if s.page_size:
            for pg in T.unroll(bn // ps):
                for h in halves:
                    T.tma_copy(X[rows[pg]:rows[pg] + ps, kv_head, h * HALF:(h + 1) * HALF],
                               x_s[stage, pg * ps:(pg + 1) * ps, h * HALF:(h + 1) * HALF], barrier=full[stage])
        else:
            for h in halves:
                T.tma_copy(X[rows[0]:rows[0] + bn, kv_head, h * HALF:(h + 1) * HALF],
                           x_s[stage, :, h * HALF:(h + 1) * HALF], barrier=full[stage])
        T.mbarrier_arrive(full[stage])

    @T.macro
    def q_k(q_s, k_s, sc, full_k, stage, phase, whole):
        """Issue Q K^T once K's stage is full (no wait): onto the masked scores, or from zero for a whole block."""
        T.mbarrier_wait_parity(full_k[stage], phase)
        T.wgmma_gemm(q_s, k_s[stage, :, :], sc, transpose_B=True, policy=T.GemmWarpPolicy.FullRow, clear_accum=whole)

    @T.macro
    def p_v(p, v_s, acc, full_v, stage, phase):
        """Issue P V into the outputs once V's stage is full (no wait)."""
        T.mbarrier_wait_parity(full_v[stage], phase)
        T.warpgroup_fence_operand(acc, num_regs=bm * d // 256)
        T.wgmma_gemm(p, v_s[stage, :, :], acc, policy=T.GemmWarpPolicy.FullRow)

    @T.macro
    def all_done(sc, acc):
        """Wait for every wgmma group issued; the scores and outputs are the consumers' again."""
        T.wait_wgmma(0)
        T.warpgroup_fence_operand(sc, num_regs=bm * bn // 256)
        T.warpgroup_fence_operand(acc, num_regs=bm * d // 256)

    @T.macro
    def my_turn(wg):
        """Ping-pong: wait until the other consumer warpgroup has issued its block's GEMMs."""
        if s.pingpong:
            T.sync_threads(TURN_BARRIER + wg, 256)

    @T.macro
    def their_turn(wg, kb, n_blocks):
        """Ping-pong: hand the tensor cores to the other warpgroup (warpgroup 1's last hand-over would have no
        taker, and a barrier must not be left half-arrived)."""
        if s.pingpong:
            if (wg == 0) | (kb + 1 < n_blocks):
                T.named_barrier_arrive(TURN_BARRIER + 1 - wg, 256)

    dynamic = bool(s.ctas and s.dynamic)

    @T.macro
    def attend(Q, K, V, KVI, HDR, ITEMS, CTR, O, LSE):
        # Tiles are (work item, query head), heads fastest (a GQA group's heads share their K/V blocks in L2).
        # One block per tile, or s.ctas persistent blocks: the producer then loads the next tile's Q and first K/V
        # blocks while the consumers finish this tile and store its output. Persistent blocks take tiles in turn
        # (bx, bx + ctas, ...) from the last, or (dynamic) in the plan's order (each request's longest first), the
        # first ctas tiles one a block and each later one from the counter CTR[0] as a block's producer gets to it:
        # a block's tiles then add up to about the same time as every other's: in turn, the busiest block ran 1-42%
        # over the mean at the prefill grid's plans, with the counter 0-3% past one wave (benchmarks/tile_balance.py).
        grid = s.ctas if s.ctas else n_entries * hq
        with T.Kernel(grid, threads=384) as bx:
            # Graph mode: the plan's tile count, read on the device (replays follow re-plans).
            n_tiles = T.alloc_var("int32", init=HDR[0]) if s.graph else n_entries * hq
            # Dynamic tiles: slot t % 2 holds the index of the block's t-th tile, written by the producer before it
            # arrives on full_q, read by the consumers once full_q's phase is complete (the item's fields they read
            # from ITEMS: in the slot too, they took the 24-register producer 40 bytes of spills, ptxas sm_90a).
            slot = T.alloc_shared([2], "int32") if dynamic else None
            q_s = T.alloc_shared([bm, d], dtype)
            k_s = T.alloc_shared([stages, bn, d], dtype)
            v_s = T.alloc_shared([stages, bn, d], dtype)
            # full: the producer's 128 threads arrive after issuing a stage's copies (the bytes complete it);
            # empty: the consumers' 256 threads arrive when done reading a stage (Q: done with the tile).
            full_k = T.alloc_barrier([128] * stages)
            full_v = T.alloc_barrier([128] * stages)
            empty_k = T.alloc_barrier([256] * stages)
            empty_v = T.alloc_barrier([256] * stages)
            full_q = T.alloc_barrier([128])
            empty_q = T.alloc_barrier([256])
            sc, p, m, m_prev, m_use, alpha, l_sum, r_sum = steps.fragments()
            acc = T.alloc_fragment([bm, d], acc_t)
            done = T.alloc_var("int32", init=0)  # K/V blocks of the block's earlier tiles: the stages' count
            with T.ws(2):
                # setmaxnreg moves registers within the block's launch allocation (168 a thread at 384 threads):
                # 24 x 128 + 240 x 256 is all of it. More for the producer and the consumers' increase waits forever.
                T.dec_max_nreg(PRODUCER_REGS)
                rows = T.alloc_local([bn // ps], "int32")  # a block's K/V rows (block_rows)
                if dynamic:
                    lead = T.get_thread_binding() == 256
                    fetched = T.alloc_var("int32", init=bx)  # the lead thread's next tile
                for t in T.serial(n_tiles + 1 if dynamic else T.ceildiv(n_tiles - bx, grid)):
                    if dynamic:
                        # The counter's round trip runs while the consumers finish the last tile's Q K^T.
                        if lead:
                            if t > 0:
                                fetched = T.atomic_add(CTR[0], 1, return_prev=True) + grid
                            slot[t % 2] = fetched
                        T.sync_threads(PRODUCER_BARRIER, 128)
                        tile = T.alloc_var("int32", init=slot[t % 2])
                    else:
                        tile = n_tiles - 1 - bx - t * grid
                    bh = tile % hq
                    be = T.min(tile, n_tiles - 1) // hq  # past the end (dynamic: no tile left), read, not used
                    tok_base, qo_len, kv_len, row_start, kv_lo, kv_hi, page_base = steps.work_item(ITEMS, be)
                    kv_head = bh // group
                    # Rows past the request are the next request's queries (or TMA's zeros): never stored.
                    T.mbarrier_wait_parity(empty_q[0], (t % 2) ^ 1)
                    if dynamic:
                        if tile >= n_tiles:  # no tile left: the consumers see it in the slot and stop too
                            T.mbarrier_arrive(full_q[0])
                            T.loop_break()
                    for h in halves:
                        T.tma_copy(Q[tok_base + row_start:tok_base + row_start + bm, bh, h * HALF:(h + 1) * HALF],
                                   q_s[:, h * HALF:(h + 1) * HALF], barrier=full_q[0])
                    T.mbarrier_arrive(full_q[0])
                    last_page = page_base + (kv_hi - 1) // ps
                    for kb in T.serial(T.ceildiv(kv_hi - kv_lo, bn)):
                        stage = (done + kb) % stages
                        phase = ((done + kb) // stages) % 2
                        block_rows(rows, KVI, kb, page_base, last_page)
                        load_block(K, k_s, rows, empty_k, full_k, stage, phase, kv_head)
                        load_block(V, v_s, rows, empty_v, full_v, stage, phase, kv_head)
                    done = done + T.ceildiv(kv_hi - kv_lo, bn)
                if dynamic:
                    # Every block's last fetch came before its count here (acq_rel): the last block to count sets
                    # the counter back for the next launch (a CUDA graph's replay included).
                    if lead:
                        finished = T.atomic_add(CTR[1], 1, memory_order="acq_rel", return_prev=True)
                        if finished == grid - 1:
                            CTR[0] = 0
                            CTR[1] = 0
            with T.ws(0, 1):
                T.inc_max_nreg(CONSUMER_REGS)
                wg = T.get_thread_binding() // 128
                for t in T.serial(n_tiles + 1 if dynamic else T.ceildiv(n_tiles - bx, grid)):
                    if dynamic:
                        T.mbarrier_wait_parity(full_q[0], t % 2)
                        tile = T.alloc_var("int32", init=slot[t % 2])
                        if tile >= n_tiles:
                            T.loop_break()
                    else:
                        tile = n_tiles - 1 - bx - t * grid
                    tok_base, qo_len, kv_len, row_start, kv_lo, kv_hi, page_base = steps.work_item(ITEMS, tile // hq)
                    bh = tile % hq
                    n_blocks = T.ceildiv(kv_hi - kv_lo, bn)
                    if s.pingpong:
                        if (wg == 1) & (n_blocks > 0):  # warpgroup 0 takes the first turn
                            T.named_barrier_arrive(TURN_BARRIER, 256)
                    T.fill(acc, 0)
                    T.fill(l_sum, 0)
                    T.fill(m, -T.infinity(acc_t))
                    diag0 = kv_len - qo_len + row_start  # row i may see keys up to diag0 + i (causal)
                    if not dynamic:
                        T.mbarrier_wait_parity(full_q[0], t % 2)
                    if s.overlap:
                        # FA3's order: block kb's Q K^T, then the outputs rescaled and block kb-1's P V, issued
                        # back to back; the softmax of block kb runs while P V does (wgmma groups complete in order).
                        if n_blocks > 0:
                            steps.masked(sc, kv_lo, diag0, kv_hi)
                            my_turn(wg)
                            q_k(q_s, k_s, sc, full_k, done % stages, (done // stages) % 2,
                                T.Not(steps.edge(kv_lo, diag0, kv_hi)))
                            their_turn(wg, 0, n_blocks)
                            all_done(sc, acc)
                            T.mbarrier_arrive(empty_k[done % stages])
                            steps.softmax(sc, m, m_prev, m_use, alpha, r_sum)
                            steps.update_and_convert(sc, p, alpha, l_sum, r_sum)
                        for kb in T.serial(1, n_blocks):
                            stage = (done + kb) % stages
                            prev = (done + kb - 1) % stages
                            steps.masked(sc, kv_lo + kb * bn, diag0, kv_hi)
                            my_turn(wg)
                            q_k(q_s, k_s, sc, full_k, stage, ((done + kb) // stages) % 2,
                                T.Not(steps.edge(kv_lo + kb * bn, diag0, kv_hi)))
                            steps.rescale([acc], alpha)
                            p_v(p, v_s, acc, full_v, prev, ((done + kb - 1) // stages) % 2)
                            their_turn(wg, kb, n_blocks)
                            T.wait_wgmma(1)  # the Q K^T group is done; the P V one may run on
                            T.warpgroup_fence_operand(sc, num_regs=bm * bn // 256)
                            T.mbarrier_arrive(empty_k[stage])
                            steps.softmax(sc, m, m_prev, m_use, alpha, r_sum)
                            all_done(sc, acc)
                            T.mbarrier_arrive(empty_v[prev])
                            steps.update_and_convert(sc, p, alpha, l_sum, r_sum)
                        T.mbarrier_arrive(empty_q[0])  # every Q K^T of the tile is done
                        if n_blocks > 0:
                            last = (done + n_blocks - 1) % stages
                            steps.rescale([acc], alpha)
                            p_v(p, v_s, acc, full_v, last, ((done + n_blocks - 1) // stages) % 2)
                            all_done(sc, acc)
                            T.mbarrier_arrive(empty_v[last])
                    else:
                        for kb in T.serial(n_blocks):
                            stage = (done + kb) % stages
                            phase = ((done + kb) // stages) % 2
                            steps.masked(sc, kv_lo + kb * bn, diag0, kv_hi)
                            my_turn(wg)
                            q_k(q_s, k_s, sc, full_k, stage, phase, T.Not(steps.edge(kv_lo + kb * bn, diag0, kv_hi)))
                            their_turn(wg, kb, n_blocks)
                            all_done(sc, acc)
                            T.mbarrier_arrive(empty_k[stage])
                            steps.softmax(sc, m, m_prev, m_use, alpha, r_sum)
                            steps.update_and_convert(sc, p, alpha, l_sum, r_sum)
                            steps.rescale([acc], alpha)
                            p_v(p, v_s, acc, full_v, stage, phase)
                            all_done(sc, acc)
                            T.mbarrier_arrive(empty_v[stage])
                        T.mbarrier_arrive(empty_q[0])
                    done = done + n_blocks
                    steps.store_out(O, acc, l_sum, r_sum, tok_base + row_start, row_start, qo_len, bh)
                    if s.write_lse:
                        steps.store_lse(LSE, m, l_sum, tok_base + row_start, row_start, qo_len, bh)

    return attend


def pass_configs(shape: TileShape) -> dict:
    """TileLang pass configs of a shape's program. The program places its storage syncs by hand: the automatic
    ones would put a block-wide barrier between the producer's loop and the consumers' (each waits on the other's
    mbarriers there: a deadlock).

    ``fast_math``: nvcc's --use_fast_math, FlashInfer's default for its own kernels (its exp2 is ex2.approx.ftz).
    Without it every exp2f of the softmax carries a fix-up for subnormal results (a compare and two predicated
    multiplies around MUFU.EX2) and the output's division is IEEE's: compiled for sm_90a (nvcc 13.0), the
    consumers' instructions between Q K^T and P V of one block went from 607 to 410. Subnormal exponentials
    flushed to zero weigh nothing against a row sum of at least 1."""
    return {"tl.disable_thread_storage_sync": True, "tl.enable_fast_math": shape.fast_math}


def cuda_source(shape: TileShape, arch: str = "sm_90a") -> str:
    """Lower the program to CUDA C++ for ``arch`` and return the kernel source (needs no GPU)."""
    import tilelang
    import tvm
    from tvm.target import Target

    target = Target({"kind": "cuda", "arch": arch})
    with target, tvm.transform.PassContext(config=pass_configs(shape)):
        return tilelang.lower(prefill_program(shape), target=target).kernel_source


def device_arch(device=None) -> str:
    """The CUDA arch the kernels are compiled for on ``device`` (sm_90a on Hopper: wgmma and setmaxnreg)."""
    major, minor = torch.cuda.get_device_capability(device)
    return f"sm_{major}{minor}{'a' if major == 9 else ''}"


@functools.lru_cache(maxsize=None)
def compiled_kernel(shape: TileShape, arch: str):
    """Compile (once per process, shape and arch). The target is spelled out rather than detected, so that
    TileLang's compile cache (keyed by it) also serves kernels compiled ahead on a machine without a GPU
    (benchmarks/tilelang_precompile.py)."""
    import tilelang
    from tvm.target import Target

    return tilelang.compile(prefill_program(shape), target=Target({"kind": "cuda", "arch": arch}),
                            pass_configs=pass_configs(shape))


def kernel_shape(*, num_qo_heads: int, num_kv_heads: int, head_dim: int, page_size: int, rows_per_page: int,
                 causal: bool, sm_scale: float, block_m: int, block_n: int, num_stages: int, dtype: torch.dtype,
                 write_lse: bool, overlap: bool = False, pingpong: bool = False, ctas: int = 0,
                 graph: bool = False, fast_math: bool = True, dynamic: bool = False) -> TileShape:
    """The TileShape of a launch: three warpgroups (the program's own), two or three stages; ``graph`` (with
    ``ctas``) for a launch that a CUDA graph may capture."""
    if graph and not ctas:
        raise ValueError("kernel_shape(graph=True) needs persistent blocks (ctas > 0): one block per tile's grid "
                         "is the plan's tile count")
    return TileShape(num_qo_heads, num_kv_heads, head_dim, page_size, rows_per_page, bool(causal),
                     float(sm_scale * LOG2E), block_m, block_n, stages(num_stages), _DTYPES[dtype],
                     bool(write_lse), bool(overlap), bool(pingpong), int(ctas), bool(graph), bool(fast_math),
                     bool(dynamic and ctas))


def rows_view(x: torch.Tensor, strides: tuple[int, int, int], page_size: int):
    """K or V as compact rows [kv_rows, Hkv, D] and the rows one page spans, or None when the layout has no
    such view (heads not packed within a row, or pages not a whole number of rows apart)."""
    stride_p, stride_t, stride_h = strides
    heads, head_dim = x.shape[-2], x.shape[-1]
    if stride_h != head_dim or stride_t != heads * head_dim or stride_p % stride_t:
        return None
    rows_per_page = stride_p // stride_t
    if page_size == 0:  # ragged: [total_kv, Hkv, D]
        n_rows = x.shape[0]
    else:  # paged: [pages, page_size, Hkv, D]; the last page ends page_size rows after its start
        n_rows = (x.shape[0] - 1) * rows_per_page + page_size if x.shape[0] else 0
    return torch.as_strided(x, (n_rows, heads, head_dim), (stride_t, stride_h, 1)), rows_per_page
