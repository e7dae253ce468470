"""TileLang prefill kernels for Hopper (sm90): warpgroup MMA fed by warp-specialized TMA pipelines.

Same work list as the Triton Hopper kernel (scheduler.plan_work, never split), one block per (query tile, query
head): BLOCK_M query tokens of one head, the KV range of the tile in BLOCK_N blocks, online softmax in base 2.
``T.gemm`` lowers to ``wgmma`` (Q K^T from shared memory, P V with P in registers). Two programs, checked in
the CUDA they lower to for sm_90a (tests/kernels/test_attention_prefill_tilelang.py):
- ragged K/V (one contiguous row range per request): ``T.copy`` of each K/V block lowers to TMA and TileLang
  turns the pipelined loop into a producer warpgroup (TMA, mbarriers) and two consumer warpgroups;
- paged K/V: written warp-specialized by hand (``T.ws``), since TileLang neither lowers a gathered block to TMA
  nor pipelines it: a producer warpgroup walks the page table and issues one TMA copy per page and 64-column
  half of the head (``T.tma_copy``: a 16-row slice of a 128-column swizzled tile is not one TMA box, a 64-column
  half is), into two stages of K and V buffers guarded by full/empty mbarriers; the consumer warpgroups run
  the online softmax. Head dims 64 and 128 (one or two 64-column halves); pages of at most BLOCK_N rows that
  divide it. The block's K/V range starts at a page boundary (kv_lo is 0: no window, no split).

Rows are compact [token, head, head_dim] rows: q and out contiguous, and K/V rows with heads packed (NHD).
The launcher (HopperPrefillLauncher, language "tilelang") falls back to the Triton kernel for any other layout.
Scores and the lse written are base 2, as in paged_kernel.py. No sliding window, soft-capping or KV split.
Compiled once per process and shape (heads, head_dim, page size, tile, dtype, causal, scale); the first call
of a shape pays TileLang's compile (tens of seconds).

No ``from __future__ import annotations``: TileLang evaluates the prim_func's annotations, which refer to the
enclosing function's locals.
"""

import functools
from typing import NamedTuple

import torch

from .paged_kernel import LOG2E
from .scheduler import ITEM_FIELDS

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
    threads: int
    num_stages: int
    dtype: str
    write_lse: bool
    overlap: bool = False  # paged: the next block's Q K^T runs while the softmax of this one does (FA3's)


HALF = 64  # head_dim columns per TMA copy and per shared tile in the paged program


def prefill_program(shape: TileShape):
    """The TileLang prim_func for ``shape``, ragged (page_size 0) or paged K/V: (Q, K, V, KV_INDICES, ITEMS, O
    [, LSE]). Q, O: [total_q, Hq, D]; K, V: [kv_rows, Hkv, D] (paged: page p's token t at row p x rows_per_page
    + t); ITEMS: [entries, ITEM_FIELDS] int32 (the plan's items); LSE: [total_q, Hq] float32. The grid is
    (Hq, entries): the heads of one GQA group run side by side and share their K/V blocks through L2."""
    import tilelang.language as T

    s = shape
    hq, hk, d = s.num_qo_heads, s.num_kv_heads, s.head_dim
    total_q, kv_rows = T.dynamic("total_q"), T.dynamic("kv_rows")
    n_idx, n_entries = T.dynamic("n_idx"), T.dynamic("n_entries")
    attend = (_ragged_attend if s.page_size == 0 else _paged_attend)(T, s, _Steps(T, s), n_entries)
    dtype = s.dtype

    if s.write_lse:
        @T.prim_func
        def prefill_lse(Q: T.Tensor((total_q, hq, d), dtype), K: T.Tensor((kv_rows, hk, d), dtype),
                        V: T.Tensor((kv_rows, hk, d), dtype), KVI: T.Tensor((n_idx,), "int32"),
                        ITEMS: T.Tensor((n_entries, ITEM_FIELDS), "int32"), O: T.Tensor((total_q, hq, d), dtype),
                        LSE: T.Tensor((total_q, hq), "float32")):
            attend(Q, K, V, KVI, ITEMS, O, LSE)

        return prefill_lse

    @T.prim_func
    def prefill(Q: T.Tensor((total_q, hq, d), dtype), K: T.Tensor((kv_rows, hk, d), dtype),
                V: T.Tensor((kv_rows, hk, d), dtype), KVI: T.Tensor((n_idx,), "int32"),
                ITEMS: T.Tensor((n_entries, ITEM_FIELDS), "int32"), O: T.Tensor((total_q, hq, d), dtype)):
        attend(Q, K, V, KVI, ITEMS, O, None)

    return prefill


def paged_supported(head_dim: int, page_size: int, block_n: int) -> bool:
    """Whether the paged program serves this head size and page size with BLOCK_N-token blocks."""
    return head_dim in (64, 128) and 0 < page_size <= block_n and block_n % page_size == 0


class _Steps:
    """The steps both programs share, as TileLang macros over their fragments: the work item's fields, the
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

        @T.macro
        def masked(sc, start, diag0, kv_hi, skip_whole):
            """sc = 0 where a row may see a key of the block at ``start``, else -inf (Q K^T accumulates onto it).
            ``skip_whole``: a block every row sees whole (all but the last few of a causal tile) is zeros, without
            a test per score."""
            if s.causal:
                if skip_whole:
                    if (start + bn <= kv_hi) & (start + bn - 1 <= diag0):  # row 0 sees the least
                        T.fill(sc, 0)
                    else:
                        for i, j in T.Parallel(bm, bn):
                            sc[i, j] = T.if_then_else((start + j < kv_hi) & (start + j <= diag0 + i), 0, neg_inf)
                else:
                    for i, j in T.Parallel(bm, bn):
                        sc[i, j] = T.if_then_else((start + j < kv_hi) & (start + j <= diag0 + i), 0, neg_inf)
            elif skip_whole:
                if start + bn <= kv_hi:
                    T.fill(sc, 0)
                else:
                    for i, j in T.Parallel(bm, bn):
                        sc[i, j] = T.if_then_else(start + j < kv_hi, 0, neg_inf)
            else:
                for i, j in T.Parallel(bm, bn):
                    sc[i, j] = T.if_then_else(start + j < kv_hi, 0, neg_inf)

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
        def rescale_and_convert(sc, p, accs, alpha, l_sum, r_sum):
            """The row sums and the outputs so far rescaled by alpha; P in the input type for P V."""
            for i in T.Parallel(bm):
                l_sum[i] = l_sum[i] * alpha[i] + r_sum[i]
            T.copy(sc, p)
            for acc in accs:
                for i, j in T.Parallel(bm, acc.shape[1]):
                    acc[i, j] *= alpha[i]

        @T.macro
        def store_lse(LSE, m, l_sum, row0, row_start, qo_len, bh):
            for i in T.Parallel(bm):
                if row_start + i < qo_len:
                    LSE[row0 + i, bh] = T.if_then_else(l_sum[i] > 0, m[i] * scale + T.log2(l_sum[i]), neg_inf)

        self.fragments, self.work_item, self.masked, self.softmax = fragments, work_item, masked, softmax
        self.rescale_and_convert, self.store_lse = rescale_and_convert, store_lse


def _ragged_attend(T, s: TileShape, steps: _Steps, n_entries):
    """Ragged K/V: one pipelined loop that TileLang splits into a TMA producer and two consumer warpgroups."""
    group = s.num_qo_heads // s.num_kv_heads
    hq, d, bm, bn = s.num_qo_heads, s.head_dim, s.block_m, s.block_n
    acc_t, dtype = "float32", s.dtype

    @T.macro
    def attend(Q, K, V, KVI, ITEMS, O, LSE):
        with T.Kernel(hq, n_entries, threads=s.threads) as (bh, be):
            Q_s = T.alloc_shared([bm, d], dtype)
            K_s = T.alloc_shared([bn, d], dtype)
            V_s = T.alloc_shared([bn, d], dtype)
            O_s = T.alloc_shared([bm, d], dtype)
            sc, p, m, m_prev, m_use, alpha, l_sum, r_sum = steps.fragments()
            acc = T.alloc_fragment([bm, d], acc_t)
            tok_base, qo_len, kv_len, row_start, kv_lo, kv_hi, page_base = steps.work_item(ITEMS, be)
            kv_first = T.alloc_var("int32", init=KVI[page_base])
            kv_head = bh // group
            # Rows past the request read the next request's queries (or TMA's zeros): never stored.
            T.copy(Q[tok_base + row_start:tok_base + row_start + bm, bh, :], Q_s)
            T.fill(acc, 0)
            T.fill(l_sum, 0)
            T.fill(m, -T.infinity(acc_t))
            diag0 = kv_len - qo_len + row_start  # row i may see keys up to diag0 + i (causal)
            for kb in T.Pipelined(T.ceildiv(kv_hi - kv_lo, bn), num_stages=s.num_stages):
                start = kv_lo + kb * bn
                T.copy(K[kv_first + start:kv_first + start + bn, kv_head, :], K_s)
                # Every block masked: a branch in the loop body would be one more statement for TileLang's
                # pipeline schedule (the measured schedule is this one).
                steps.masked(sc, start, diag0, kv_hi, False)
                T.gemm(Q_s, K_s, sc, transpose_B=True, policy=T.GemmWarpPolicy.FullRow)
                steps.softmax(sc, m, m_prev, m_use, alpha, r_sum)
                steps.rescale_and_convert(sc, p, [acc], alpha, l_sum, r_sum)
                T.copy(V[kv_first + start:kv_first + start + bn, kv_head, :], V_s)
                T.gemm(p, V_s, acc, policy=T.GemmWarpPolicy.FullRow)
            for i, j in T.Parallel(bm, d):
                acc[i, j] /= T.if_then_else(l_sum[i] > 0, l_sum[i], 1.0)
            T.copy(acc, O_s)
            for i, j in T.Parallel(bm, d):
                if row_start + i < qo_len:
                    O[tok_base + row_start + i, bh, j] = O_s[i, j]
            if s.write_lse:
                steps.store_lse(LSE, m, l_sum, tok_base + row_start, row_start, qo_len, bh)

    return attend


def _paged_attend(T, s: TileShape, steps: _Steps, n_entries):
    """Paged K/V, warp-specialized by hand: warpgroups 0-1 consume (64 query rows each), warpgroup 2 produces."""
    group = s.num_qo_heads // s.num_kv_heads
    hq, d, bm, bn, ps = s.num_qo_heads, s.head_dim, s.block_m, s.block_n, s.page_size
    halves = list(range(d // HALF))  # a list, not a range: TileLang expands the loops over it in Python
    pages = bn // ps
    stages = s.num_stages
    acc_t, dtype = "float32", s.dtype

    @T.macro
    def load_pages(X, x_s, KVI, empty, full, stage, phase, first, last_page, kv_head):
        """The producer's turn for one of K and V: wait for the stage to be free, one TMA copy per page and half,
        then arrive (the copies' bytes complete the stage)."""
        T.mbarrier_wait_parity(empty[stage], phase ^ 1)
        for pg in T.unroll(pages):
            row = KVI[T.min(first + pg, last_page)] * s.rows_per_page
            for h in halves:
                T.tma_copy(X[row:row + ps, kv_head, h * HALF:(h + 1) * HALF], x_s[h][stage, pg * ps:(pg + 1) * ps, :],
                           barrier=full[stage])
        T.mbarrier_arrive(full[stage])

    @T.macro
    def attend(Q, K, V, KVI, ITEMS, O, LSE):
        with T.Kernel(hq, n_entries, threads=384) as (bh, be):
            q_s = [T.alloc_shared([bm, HALF], dtype) for _ in halves]
            k_s = [T.alloc_shared([stages, bn, HALF], dtype) for _ in halves]
            v_s = [T.alloc_shared([stages, bn, HALF], dtype) for _ in halves]
            # full: the producer's 128 threads arrive after issuing a stage's copies (the bytes complete it);
            # empty: the consumers' 256 threads arrive when done reading a stage.
            full_k = T.alloc_barrier([128] * stages)
            full_v = T.alloc_barrier([128] * stages)
            empty_k = T.alloc_barrier([256] * stages)
            empty_v = T.alloc_barrier([256] * stages)
            sc, p, m, m_prev, m_use, alpha, l_sum, r_sum = steps.fragments()
            acc = [T.alloc_fragment([bm, HALF], acc_t) for _ in halves]
            tok_base, qo_len, kv_len, row_start, kv_lo, kv_hi, page_base = steps.work_item(ITEMS, be)
            kv_head = bh // group
            n_blocks = T.ceildiv(kv_hi - kv_lo, bn)
            last_page = page_base + (kv_hi - 1) // ps  # a block's pages past the range repeat the last (masked)
            with T.ws(2):
                T.dec_max_nreg(24)
                for kb in T.serial(n_blocks):
                    stage = kb % stages
                    phase = (kb // stages) % 2
                    first = page_base + (kv_lo + kb * bn) // ps
                    load_pages(K, k_s, KVI, empty_k, full_k, stage, phase, first, last_page, kv_head)
                    load_pages(V, v_s, KVI, empty_v, full_v, stage, phase, first, last_page, kv_head)
            with T.ws(0, 1):
                T.inc_max_nreg(240)
                # Rows past the request read the next request's queries (or zeros): never stored.
                for h in halves:
                    T.copy(Q[tok_base + row_start:tok_base + row_start + bm, bh, h * HALF:(h + 1) * HALF], q_s[h])
                # The consumers wrote Q to shared memory through the generic proxy; wgmma reads it through the
                # async proxy (this program's storage syncs are placed by hand: see pass_configs).
                T.fence_proxy_async()
                T.sync_threads(3, 256)
                for h in halves:
                    T.fill(acc[h], 0)
                T.fill(l_sum, 0)
                T.fill(m, -T.infinity(acc_t))
                diag0 = kv_len - qo_len + row_start  # row i may see keys up to diag0 + i (causal)
                if s.overlap:
                    # Block 0 alone; then each step issues block kb's Q K^T and block kb-1's P V without waiting,
                    # waits for the first (wgmma groups complete in order), runs block kb's softmax while P V
                    # runs, then waits for it; block n-1's P V last.
                    if n_blocks > 0:
                        steps.masked(sc, kv_lo, diag0, kv_hi, True)
                        T.mbarrier_wait_parity(full_k[0], 0)
                        for h in halves:
                            T.gemm(q_s[h], k_s[h][0, :, :], sc, transpose_B=True, policy=T.GemmWarpPolicy.FullRow)
                        T.mbarrier_arrive(empty_k[0])
                        steps.softmax(sc, m, m_prev, m_use, alpha, r_sum)
                        steps.rescale_and_convert(sc, p, acc, alpha, l_sum, r_sum)
                    for kb in T.serial(1, n_blocks):
                        stage = kb % stages
                        prev = (kb - 1) % stages
                        steps.masked(sc, kv_lo + kb * bn, diag0, kv_hi, True)
                        T.mbarrier_wait_parity(full_k[stage], (kb // stages) % 2)
                        for h in halves:
                            T.wgmma_gemm(q_s[h], k_s[h][stage, :, :], sc, transpose_B=True,
                                         policy=T.GemmWarpPolicy.FullRow)
                        T.mbarrier_wait_parity(full_v[prev], ((kb - 1) // stages) % 2)
                        for h in halves:
                            T.wgmma_gemm(p, v_s[h][prev, :, :], acc[h], policy=T.GemmWarpPolicy.FullRow)
                        T.wait_wgmma(len(halves))  # the Q K^T groups are done; the P V ones may run on
                        T.warpgroup_fence_operand(sc, num_regs=bm * bn // 256)
                        T.mbarrier_arrive(empty_k[stage])
                        steps.softmax(sc, m, m_prev, m_use, alpha, r_sum)
                        T.wait_wgmma(0)
                        for h in halves:
                            T.warpgroup_fence_operand(acc[h], num_regs=bm * HALF // 256)
                        T.mbarrier_arrive(empty_v[prev])
                        steps.rescale_and_convert(sc, p, acc, alpha, l_sum, r_sum)
                    if n_blocks > 0:
                        last = (n_blocks - 1) % stages
                        T.mbarrier_wait_parity(full_v[last], ((n_blocks - 1) // stages) % 2)
                        for h in halves:
                            T.gemm(p, v_s[h][last, :, :], acc[h], policy=T.GemmWarpPolicy.FullRow)
                        T.mbarrier_arrive(empty_v[last])
                else:
                    for kb in T.serial(n_blocks):
                        stage = kb % stages
                        phase = (kb // stages) % 2
                        steps.masked(sc, kv_lo + kb * bn, diag0, kv_hi, True)
                        T.mbarrier_wait_parity(full_k[stage], phase)
                        for h in halves:
                            T.gemm(q_s[h], k_s[h][stage, :, :], sc, transpose_B=True, policy=T.GemmWarpPolicy.FullRow)
                        T.mbarrier_arrive(empty_k[stage])
                        steps.softmax(sc, m, m_prev, m_use, alpha, r_sum)
                        steps.rescale_and_convert(sc, p, acc, alpha, l_sum, r_sum)
                        T.mbarrier_wait_parity(full_v[stage], phase)
                        for h in halves:
                            T.gemm(p, v_s[h][stage, :, :], acc[h], policy=T.GemmWarpPolicy.FullRow)
                        T.mbarrier_arrive(empty_v[stage])
                for h in halves:
                    for i, j in T.Parallel(bm, HALF):
                        if row_start + i < qo_len:
                            O[tok_base + row_start + i, bh, h * HALF + j] = acc[h][i, j] / T.if_then_else(
                                l_sum[i] > 0, l_sum[i], 1.0)
                if s.write_lse:
                    steps.store_lse(LSE, m, l_sum, tok_base + row_start, row_start, qo_len, bh)

    return attend


def pass_configs(shape: TileShape) -> dict:
    """TileLang pass configs of a shape's program. The paged program places its storage syncs by hand: the
    automatic ones would put a block-wide barrier between the producer's loop and the consumers' (each waits on
    the other's mbarriers there: a deadlock)."""
    return {"tl.disable_thread_storage_sync": True} if shape.page_size else {}


def cuda_source(shape: TileShape, arch: str = "sm_90a") -> str:
    """Lower the program to CUDA C++ for ``arch`` and return the kernel source (needs no GPU)."""
    import tilelang
    import tvm
    from tvm.target import Target

    target = Target({"kind": "cuda", "arch": arch})
    with target, tvm.transform.PassContext(config=pass_configs(shape)):
        return tilelang.lower(prefill_program(shape), target=target).kernel_source


@functools.lru_cache(maxsize=None)
def compiled_kernel(shape: TileShape):
    """Compile (once per process and shape) for the current CUDA device."""
    import tilelang

    return tilelang.compile(prefill_program(shape), target="cuda", pass_configs=pass_configs(shape))


def kernel_shape(*, num_qo_heads: int, num_kv_heads: int, head_dim: int, page_size: int, rows_per_page: int,
                 causal: bool, sm_scale: float, block_m: int, block_n: int, num_warps: int, num_stages: int,
                 dtype: torch.dtype, write_lse: bool, overlap: bool = False) -> TileShape:
    """The TileShape of a launch. The paged program has its own warps (three warpgroups) and two or three
    stages; ``overlap`` is the paged program's (ragged K/V: TileLang schedules the loop)."""
    paged = page_size != 0
    return TileShape(num_qo_heads, num_kv_heads, head_dim, page_size, rows_per_page, bool(causal),
                     float(sm_scale * LOG2E), block_m, block_n, 384 if paged else 32 * num_warps,
                     min(max(num_stages, 2), 3) if paged else num_stages, _DTYPES[dtype], bool(write_lse),
                     bool(overlap and paged))


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
