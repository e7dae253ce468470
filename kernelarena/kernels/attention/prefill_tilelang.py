"""TileLang prefill kernel for Hopper (sm90): warpgroup MMA, and for ragged K/V a warp-specialized TMA pipeline.

Same work list as the Triton Hopper kernel (scheduler.plan_work, never split), one block per (query tile, query
head): BLOCK_M query tokens of one head, the KV range of the tile in BLOCK_N blocks, online softmax in base 2.
What TileLang gives here, checked in the CUDA it emits for sm_90a (tests/kernels/test_prefill_tilelang.py):
- ``T.gemm`` on Hopper lowers to ``wgmma`` (Q K^T from shared memory, P V with P in registers);
- ragged K/V (one contiguous row range per request) are copied with ``T.copy``, which lowers to TMA, and the
  pipelined loop then becomes a producer warpgroup (TMA and mbarriers) and consumer warpgroups (MMA, softmax):
  FlashAttention-3's structure;
- paged K/V are gathered row by row through the page table (a 64- or 128-token block spans several 16-token
  pages and Hopper's TMA has no row gather), as ``cp.async`` copies one block ahead; TileLang 0.1.15 neither
  lowers these per-page copies to TMA (the swizzled tile's 16-row slice is rejected) nor pipelines them deeper
  with a runtime trip count, so the paged path is not warp-specialized.

Rows are compact [token, head, head_dim] rows: q and out contiguous, and K/V rows with heads packed (NHD).
The launcher (HopperPrefillLauncher, language "tilelang") falls back to the Triton kernel for any other layout.
Scores and the lse written are base 2, as in paged_kernel.py. No sliding window, soft-capping or KV split.
Compiled once per process and shape (heads, head_dim, page size, tile, dtype, causal, scale); the first call
of a shape pays TileLang's compile (tens of seconds).

Self-contained but for tilelang and torch. No ``from __future__ import annotations``: TileLang evaluates the
prim_func's annotations, which refer to the enclosing function's locals.
"""

import functools
from typing import NamedTuple

import torch

LOG2E = 1.4426950408889634
ITEM_FIELDS = 12  # scheduler.ITEM_FIELDS: tok_base, qo_len, kv_len, row_start, -, kv_lo, kv_hi, page_base, ...
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


def prefill_program(shape: TileShape):
    """The TileLang prim_func: (Q, K, V, KV_INDICES, ITEMS, O[, LSE]).

    Q, O: [total_q, Hq, D]; K, V: [kv_rows, Hkv, D]; ITEMS: [entries, ITEM_FIELDS] int32 (the plan's items);
    LSE: [total_q, Hq] float32. The grid is (Hq, entries): the heads of one GQA group run side by side and share
    their K/V blocks through L2."""
    import tilelang.language as T

    s = shape
    group = s.num_qo_heads // s.num_kv_heads
    hq, hk, d, bm, bn = s.num_qo_heads, s.num_kv_heads, s.head_dim, s.block_m, s.block_n
    ragged = s.page_size == 0
    acc_t = "float32"
    dtype = s.dtype
    scale = s.scale_log2
    total_q = T.dynamic("total_q")
    kv_rows = T.dynamic("kv_rows")
    n_idx = T.dynamic("n_idx")
    n_entries = T.dynamic("n_entries")

    @T.macro
    def gather_kv(X, X_s, KVI, page_base, start, kv_hi, kv_head):
        for i, j in T.Parallel(bn, d):
            pos = T.min(start + i, kv_hi - 1)  # rows past the range repeat the last one (masked below)
            X_s[i, j] = X[KVI[page_base + pos // s.page_size] * s.rows_per_page + pos % s.page_size, kv_head, j]

    @T.macro
    def attend(Q, K, V, KVI, ITEMS, O, LSE):
        with T.Kernel(hq, n_entries, threads=s.threads) as (bh, be):
            Q_s = T.alloc_shared([bm, d], dtype)
            K_s = T.alloc_shared([bn, d], dtype)
            V_s = T.alloc_shared([bn, d], dtype)
            O_s = T.alloc_shared([bm, d], dtype)
            sc = T.alloc_fragment([bm, bn], acc_t)
            p = T.alloc_fragment([bm, bn], dtype)
            acc = T.alloc_fragment([bm, d], acc_t)
            m = T.alloc_fragment([bm], acc_t)
            m_prev = T.alloc_fragment([bm], acc_t)
            m_use = T.alloc_fragment([bm], acc_t)
            alpha = T.alloc_fragment([bm], acc_t)
            l_sum = T.alloc_fragment([bm], acc_t)
            r_sum = T.alloc_fragment([bm], acc_t)
            tok_base = T.alloc_var("int32", init=ITEMS[be, 0])
            qo_len = T.alloc_var("int32", init=ITEMS[be, 1])
            kv_len = T.alloc_var("int32", init=ITEMS[be, 2])
            row_start = T.alloc_var("int32", init=ITEMS[be, 3])
            kv_lo = T.alloc_var("int32", init=ITEMS[be, 5])
            kv_hi = T.alloc_var("int32", init=ITEMS[be, 6])
            page_base = T.alloc_var("int32", init=ITEMS[be, 7])
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
                if ragged:
                    T.copy(K[kv_first + start:kv_first + start + bn, kv_head, :], K_s)
                else:
                    gather_kv(K, K_s, KVI, page_base, start, kv_hi, kv_head)
                if s.causal:
                    for i, j in T.Parallel(bm, bn):
                        sc[i, j] = T.if_then_else((start + j < kv_hi) & (start + j <= diag0 + i), 0,
                                                  -T.infinity(acc_t))
                else:
                    for i, j in T.Parallel(bm, bn):
                        sc[i, j] = T.if_then_else(start + j < kv_hi, 0, -T.infinity(acc_t))
                T.gemm(Q_s, K_s, sc, transpose_B=True, policy=T.GemmWarpPolicy.FullRow)
                T.copy(m, m_prev)
                T.reduce_max(sc, m, dim=1, clear=False)
                for i in T.Parallel(bm):
                    # A row that has seen no key keeps m = -inf; its exponents are taken against 0 (all 0).
                    m_use[i] = T.if_then_else(m[i] == -T.infinity(acc_t), 0, m[i] * scale)
                    alpha[i] = T.exp2(m_prev[i] * scale - m_use[i])
                for i, j in T.Parallel(bm, bn):
                    sc[i, j] = T.exp2(sc[i, j] * scale - m_use[i])
                T.reduce_sum(sc, r_sum, dim=1)
                for i in T.Parallel(bm):
                    l_sum[i] = l_sum[i] * alpha[i] + r_sum[i]
                T.copy(sc, p)
                for i, j in T.Parallel(bm, d):
                    acc[i, j] *= alpha[i]
                if ragged:
                    T.copy(V[kv_first + start:kv_first + start + bn, kv_head, :], V_s)
                else:
                    gather_kv(V, V_s, KVI, page_base, start, kv_hi, kv_head)
                T.gemm(p, V_s, acc, policy=T.GemmWarpPolicy.FullRow)
            for i, j in T.Parallel(bm, d):
                acc[i, j] /= T.if_then_else(l_sum[i] > 0, l_sum[i], 1.0)
            T.copy(acc, O_s)
            for i, j in T.Parallel(bm, d):
                if row_start + i < qo_len:
                    O[tok_base + row_start + i, bh, j] = O_s[i, j]
            if s.write_lse:
                for i in T.Parallel(bm):
                    if row_start + i < qo_len:
                        LSE[tok_base + row_start + i, bh] = T.if_then_else(
                            l_sum[i] > 0, m[i] * scale + T.log2(l_sum[i]), -T.infinity(acc_t))

    if s.write_lse:
        @T.prim_func
        def prefill_lse(Q: T.Tensor((total_q, hq, d), dtype), K: T.Tensor((kv_rows, hk, d), dtype),
                        V: T.Tensor((kv_rows, hk, d), dtype), KVI: T.Tensor((n_idx,), "int32"),
                        ITEMS: T.Tensor((n_entries, ITEM_FIELDS), "int32"), O: T.Tensor((total_q, hq, d), dtype),
                        LSE: T.Tensor((total_q, hq), acc_t)):
            attend(Q, K, V, KVI, ITEMS, O, LSE)

        return prefill_lse

    @T.prim_func
    def prefill(Q: T.Tensor((total_q, hq, d), dtype), K: T.Tensor((kv_rows, hk, d), dtype),
                V: T.Tensor((kv_rows, hk, d), dtype), KVI: T.Tensor((n_idx,), "int32"),
                ITEMS: T.Tensor((n_entries, ITEM_FIELDS), "int32"), O: T.Tensor((total_q, hq, d), dtype)):
        attend(Q, K, V, KVI, ITEMS, O, None)

    return prefill


def cuda_source(shape: TileShape, arch: str = "sm_90a") -> str:
    """Lower the program to CUDA C++ for ``arch`` and return the kernel source (needs no GPU)."""
    import tilelang
    from tvm.target import Target

    target = Target({"kind": "cuda", "arch": arch})
    with target:
        return tilelang.lower(prefill_program(shape), target=target).kernel_source


@functools.lru_cache(maxsize=None)
def compiled_kernel(shape: TileShape):
    """Compile (once per process and shape) for the current CUDA device."""
    import tilelang

    return tilelang.compile(prefill_program(shape), target="cuda")


def kernel_shape(*, num_qo_heads: int, num_kv_heads: int, head_dim: int, page_size: int, rows_per_page: int,
                 causal: bool, sm_scale: float, block_m: int, block_n: int, num_warps: int, num_stages: int,
                 dtype: torch.dtype, write_lse: bool) -> TileShape:
    """The TileShape of a launch. Ragged K/V (page_size 0) use the TMA pipeline's stages; gathered (paged) K/V
    one stage (see the module docstring)."""
    return TileShape(num_qo_heads, num_kv_heads, head_dim, page_size, rows_per_page, bool(causal),
                     float(sm_scale * LOG2E), block_m, block_n, 32 * num_warps,
                     num_stages if page_size == 0 else 1, _DTYPES[dtype], bool(write_lse))


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
