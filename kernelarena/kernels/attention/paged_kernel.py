"""Triton kernel for attention over a paged KV cache, driven by the work list of ``scheduler.py``.

One kernel serves decode, paged prefill and ragged prefill. A work item is (query tile, KV head, KV chunk):
the tile packs ``BLOCK_M`` rows of (query token, query head of the KV head's GQA group), so each K/V block
is loaded once for the whole group. The grid is persistent and fixed (programs take the next item from
a counter in the work buffer as they finish one), so a launch never depends on the schedule and can be
captured in a CUDA graph, and the list balances over whichever programs are resident.

Scores are kept in base 2 (scaled by log2(e)); the log-sum-exp written out is base 2, as FlashInfer's.
Self-contained (torch and triton only): the dataset's solutions embed this file verbatim.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

LOG2E = 1.4426950408889634
_HEADER = tl.constexpr(8)  # scheduler.HEADER
_ITEM_FIELDS = tl.constexpr(12)  # scheduler.ITEM_FIELDS


@triton.jit
def _attend_block(
    acc, m_i, l_i, q, K, V, kv_indices_ptr, page_base, start, kv_hi, head_off, offs_d, diag,
    window_left, stride_kp, stride_kt, score_scale, cap_scale,
    PAGE_SIZE: tl.constexpr, BLOCK_N: tl.constexpr, MASKED: tl.constexpr, CAUSAL: tl.constexpr,
    USE_WINDOW: tl.constexpr, USE_SOFT_CAP: tl.constexpr, UPCAST: tl.constexpr,
):
    offs_n = start + tl.arange(0, BLOCK_N)
    if MASKED:
        valid = offs_n < kv_hi
        page = tl.load(kv_indices_ptr + page_base + offs_n // PAGE_SIZE, mask=valid, other=0)
    else:
        page = tl.load(kv_indices_ptr + page_base + offs_n // PAGE_SIZE)
    kv_off = page.to(tl.int64) * stride_kp + (offs_n % PAGE_SIZE).to(tl.int64) * stride_kt + head_off
    kv_ptrs = kv_off[:, None] + offs_d[None, :]
    if MASKED:
        k = tl.load(K + kv_ptrs, mask=valid[:, None], other=0.0)
    else:
        k = tl.load(K + kv_ptrs)
    if UPCAST:
        k = k.to(tl.float32)
    s = tl.dot(q, tl.trans(k))
    if USE_SOFT_CAP:
        # cap * tanh(s * sm_scale / cap), tanh written with exp so it also runs under the interpreter.
        s = (2.0 / (1.0 + tl.exp(-2.0 * cap_scale * s)) - 1.0) * score_scale
    else:
        s = s * score_scale
    if MASKED:
        keep = valid[None, :]
        if CAUSAL:
            keep = keep & (offs_n[None, :] <= diag[:, None])
        if USE_WINDOW:
            keep = keep & (offs_n[None, :] >= diag[:, None] - window_left)
        s = tl.where(keep, s, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(s, 1))
    m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
    alpha = tl.exp2(m_i - m_use)
    p = tl.exp2(s - m_use[:, None])
    l_i = l_i * alpha + tl.sum(p, 1)
    if MASKED:
        v = tl.load(V + kv_ptrs, mask=valid[:, None], other=0.0)
    else:
        v = tl.load(V + kv_ptrs)
    if UPCAST:
        v = v.to(tl.float32)
    acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
    return acc, m_new, l_i


@triton.jit
def paged_attention_kernel(
    Q, K, V, O, LSE, O_PART, LSE_PART, WORK, KV_INDICES,
    stride_qt, stride_qh, stride_ot, stride_oh, stride_lt, stride_kp, stride_kt, stride_kh,
    score_scale, cap_scale, window_left,
    GROUP: tl.constexpr, HEAD_DIM: tl.constexpr, PAGE_SIZE: tl.constexpr, BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr, CAUSAL: tl.constexpr, USE_WINDOW: tl.constexpr, USE_SOFT_CAP: tl.constexpr,
    WRITE_LSE: tl.constexpr, UPCAST: tl.constexpr,
):
    nprog = tl.num_programs(0)
    num_items = tl.load(WORK)
    num_kv_heads = tl.load(WORK + 3)
    offs_m = tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    # Programs take items from a shared counter (header word 4), so the list is balanced across the
    # programs that are resident, whatever the occupancy; the last program to finish resets the counters.
    w = tl.atomic_add(WORK + 4, 1)
    while w < num_items:
        # Item w is entry w // num_kv_heads of the list, run for KV head w % num_kv_heads.
        kv_head = w % num_kv_heads
        item = WORK + _HEADER + (w // num_kv_heads) * _ITEM_FIELDS
        tok_base = tl.load(item)
        qo_len = tl.load(item + 1)
        kv_len = tl.load(item + 2)
        row_start = tl.load(item + 3)
        kv_lo = tl.load(item + 5)
        kv_hi = tl.load(item + 6)
        page_base = tl.load(item + 7)
        slot = tl.load(item + 8)

        rows = row_start + offs_m
        tok = rows // GROUP
        row_ok = tok < qo_len
        q_head = kv_head * GROUP + rows % GROUP
        q_off = (tok_base + tok).to(tl.int64) * stride_qt + q_head * stride_qh
        q = tl.load(Q + q_off[:, None] + offs_d[None, :], mask=row_ok[:, None], other=0.0)
        if UPCAST:
            q = q.to(tl.float32)
        diag = tok + (kv_len - qo_len)  # last KV position each row may see (causal)
        head_off = kv_head.to(tl.int64) * stride_kh

        m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
        l_i = tl.zeros([BLOCK_M], tl.float32)
        acc = tl.zeros([BLOCK_M, HEAD_DIM], tl.float32)
        # Blocks wholly inside every row's visible range skip the masks; the rest are masked.
        limit = kv_hi
        if CAUSAL:
            limit = tl.minimum(limit, row_start // GROUP + kv_len - qo_len + 1)
        full_hi = kv_lo + tl.maximum(limit - kv_lo, 0) // BLOCK_N * BLOCK_N
        if USE_WINDOW:
            full_hi = kv_lo
        for start in range(kv_lo, full_hi, BLOCK_N):
            acc, m_i, l_i = _attend_block(
                acc, m_i, l_i, q, K, V, KV_INDICES, page_base, start, kv_hi, head_off, offs_d, diag,
                window_left, stride_kp, stride_kt, score_scale, cap_scale,
                PAGE_SIZE, BLOCK_N, False, CAUSAL, USE_WINDOW, USE_SOFT_CAP, UPCAST,
            )
        for start in range(full_hi, kv_hi, BLOCK_N):
            acc, m_i, l_i = _attend_block(
                acc, m_i, l_i, q, K, V, KV_INDICES, page_base, start, kv_hi, head_off, offs_d, diag,
                window_left, stride_kp, stride_kt, score_scale, cap_scale,
                PAGE_SIZE, BLOCK_N, True, CAUSAL, USE_WINDOW, USE_SOFT_CAP, UPCAST,
            )

        has = l_i > 0.0
        out = acc / tl.where(has, l_i, 1.0)[:, None]
        lse = tl.where(has, m_i + tl.log2(tl.where(has, l_i, 1.0)), float("-inf"))
        if slot < 0:
            o_off = (tok_base + tok).to(tl.int64) * stride_ot + q_head * stride_oh
            tl.store(O + o_off[:, None] + offs_d[None, :], out.to(O.dtype.element_ty), mask=row_ok[:, None])
            if WRITE_LSE:
                tl.store(LSE + (tok_base + tok).to(tl.int64) * stride_lt + q_head, lse, mask=row_ok)
        else:
            p_rows = (slot * num_kv_heads + kv_head).to(tl.int64) * BLOCK_M + offs_m
            tl.store(O_PART + p_rows[:, None] * HEAD_DIM + offs_d[None, :], out, mask=row_ok[:, None])
            tl.store(LSE_PART + p_rows, lse, mask=row_ok)
        w = tl.atomic_add(WORK + 4, 1)
    # Every program has made its last fetch before it counts itself done, so the last one may reset.
    if tl.atomic_add(WORK + 5, 1) == nprog - 1:
        tl.atomic_xchg(WORK + 4, 0)
        tl.atomic_xchg(WORK + 5, 0)


def score_scales(sm_scale: float, logits_soft_cap: float) -> tuple[float, float]:
    """(score_scale, cap_scale) kernel arguments: scores become base-2 logits, optionally soft-capped."""
    if logits_soft_cap > 0:
        return logits_soft_cap * LOG2E, sm_scale / logits_soft_cap
    return sm_scale * LOG2E, 0.0


def launch_paged_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    out: torch.Tensor,
    lse,
    o_part: torch.Tensor,
    lse_part: torch.Tensor,
    work: torch.Tensor,
    kv_indices: torch.Tensor,
    *,
    kv_strides: tuple[int, int, int],
    group_size: int,
    page_size: int,
    block_m: int,
    block_n: int,
    num_warps: int,
    num_stages: int,
    num_programs: int,
    causal: bool,
    window_left: int,
    sm_scale: float,
    logits_soft_cap: float,
):
    """Launch the persistent attention kernel over the work list in ``work``.

    q, out: [tokens, num_qo_heads, head_dim]; k, v: any views whose element (page, slot, head, d) sits at
    page*kv_strides[0] + slot*kv_strides[1] + head*kv_strides[2] + d; lse: [tokens, num_qo_heads] float32 or
    None. o_part/lse_part: float32 scratch for split chunks. Returns Triton's handle of the launched kernel.
    """
    score_scale, cap_scale = score_scales(sm_scale, logits_soft_cap)
    write_lse = lse is not None
    lse_arg = lse if write_lse else lse_part
    return paged_attention_kernel[(num_programs,)](
        q, k, v, out, lse_arg, o_part, lse_part, work, kv_indices,
        q.stride(0), q.stride(1), out.stride(0), out.stride(1), lse_arg.stride(0) if write_lse else 0,
        kv_strides[0], kv_strides[1], kv_strides[2],
        score_scale, cap_scale, window_left,
        GROUP=group_size, HEAD_DIM=q.shape[-1], PAGE_SIZE=page_size, BLOCK_M=block_m, BLOCK_N=block_n,
        CAUSAL=causal, USE_WINDOW=window_left >= 0, USE_SOFT_CAP=logits_soft_cap > 0, WRITE_LSE=write_lse,
        # Triton's CPU interpreter computes bf16 dot products wrongly (3.9): it gets float32 operands.
        UPCAST=q.device.type == "cpu", num_warps=num_warps, num_stages=num_stages,
    )


def default_sm_scale(head_dim: int) -> float:
    """1/sqrt(head_dim), the scale FlashInfer uses when none is given."""
    return 1.0 / math.sqrt(head_dim)
