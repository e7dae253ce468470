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
from triton import knobs

LOG2E = 1.4426950408889634
_HEADER = tl.constexpr(8)  # scheduler.HEADER
_ITEM_FIELDS = tl.constexpr(12)  # scheduler.ITEM_FIELDS
MERGE_ROWS = 4  # tile rows a merge combines at once


def merge_chunks(head_dim: int) -> int:
    """Chunks a merge loads at once (more take further steps): MERGE_ROWS x that x head_dim floats in flight."""
    return max(4, min(16, 1024 // head_dim))


@triton.jit
def page_rows(kv_indices_ptr, page_base, offs_n, kv_hi, head_off, offs_d, stride_kp, stride_kt,
              PAGE_SIZE: tl.constexpr, MASKED: tl.constexpr):
    """Element offsets of the K/V rows of tokens ``offs_n`` of one head (found through the page table from
    ``page_base``), and which of those tokens exist (< ``kv_hi``; only read when MASKED)."""
    valid = offs_n < kv_hi
    if MASKED:
        page = tl.load(kv_indices_ptr + page_base + offs_n // PAGE_SIZE, mask=valid, other=0)
    else:
        page = tl.load(kv_indices_ptr + page_base + offs_n // PAGE_SIZE)
    kv_off = page.to(tl.int64) * stride_kp + (offs_n % PAGE_SIZE).to(tl.int64) * stride_kt + head_off
    return kv_off[:, None] + offs_d[None, :], valid


@triton.jit
def load_rows(X, ptrs, valid, MASKED: tl.constexpr, UPCAST: tl.constexpr):
    """The K or V rows at ``ptrs`` (zeros for tokens that do not exist when MASKED), in fp32 when UPCAST."""
    if MASKED:
        x = tl.load(X + ptrs, mask=valid[:, None], other=0.0)
    else:
        x = tl.load(X + ptrs)
    if UPCAST:
        x = x.to(tl.float32)
    return x


@triton.jit
def _attend_block(
    acc, m_i, l_i, q, K, V, kv_indices_ptr, page_base, start, kv_hi, head_off, offs_d, diag,
    window_left, stride_kp, stride_kt, score_scale, cap_scale,
    PAGE_SIZE: tl.constexpr, BLOCK_N: tl.constexpr, MASKED: tl.constexpr, CAUSAL: tl.constexpr,
    USE_WINDOW: tl.constexpr, USE_SOFT_CAP: tl.constexpr, UPCAST: tl.constexpr,
):
    offs_n = start + tl.arange(0, BLOCK_N)
    kv_ptrs, valid = page_rows(kv_indices_ptr, page_base, offs_n, kv_hi, head_off, offs_d, stride_kp, stride_kt,
                               PAGE_SIZE, MASKED)
    k = load_rows(K, kv_ptrs, valid, MASKED, UPCAST)
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
    v = load_rows(V, kv_ptrs, valid, MASKED, UPCAST)
    acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
    return acc, m_new, l_i


@triton.jit
def paged_attention_kernel(
    Q, K, V, O, LSE, O_PART, LSE_PART, WORK, KV_INDICES,
    stride_qt, stride_qh, stride_ot, stride_oh, stride_lt, stride_kp, stride_kt, stride_kh,
    score_scale, cap_scale, window_left, num_kv_heads,
    GROUP: tl.constexpr, HEAD_DIM: tl.constexpr, PAGE_SIZE: tl.constexpr, BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr, CAUSAL: tl.constexpr, USE_WINDOW: tl.constexpr, USE_SOFT_CAP: tl.constexpr,
    WRITE_LSE: tl.constexpr, UPCAST: tl.constexpr, SPLIT: tl.constexpr, SCHEDULE: tl.constexpr,
    MERGE_ROWS: tl.constexpr, MERGE_CHUNKS: tl.constexpr,
):
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    # Static: program p runs items p, p + nprog, ... (no shared counter: the shortest dependency chain).
    # Dynamic: programs take the next item from a shared counter (header word 4), which balances uneven items
    # (causal tiles) over whichever programs are resident; the last program to finish
    # resets the counters. SCHEDULE 0 picks at run time: static when every program has at most one item, or
    # when the plan found every item as long as every other (header word 7, scheduler.equal_items).
    # The header and program p's first item are loaded together (one round trip): the buffer is larger than
    # any list, so a program without an item reads unused words and leaves.
    num_items = tl.load(WORK)
    counter_offset = tl.load(WORK + 6)
    equal_items = tl.load(WORK + 7)
    fields = _load_item(WORK, pid, num_kv_heads)
    if SCHEDULE == 1:
        dynamic = False
    elif SCHEDULE == 2:
        dynamic = True
    else:
        dynamic = (num_items > nprog) & (equal_items == 0)
    w = pid
    if dynamic:
        w = tl.atomic_add(WORK + 4, 1)
        fields = _load_item(WORK, w, num_kv_heads)
    while w < num_items:
        _attend_item(Q, K, V, O, LSE, O_PART, LSE_PART, WORK, KV_INDICES, fields, w % num_kv_heads, num_kv_heads,
                     counter_offset, stride_qt, stride_qh, stride_ot, stride_oh, stride_lt, stride_kp, stride_kt,
                     stride_kh, score_scale, cap_scale, window_left,
                     GROUP, HEAD_DIM, PAGE_SIZE, BLOCK_M, BLOCK_N, CAUSAL, USE_WINDOW, USE_SOFT_CAP, WRITE_LSE,
                     UPCAST, SPLIT, MERGE_ROWS, MERGE_CHUNKS)
        if dynamic:
            w = tl.atomic_add(WORK + 4, 1)
        else:
            w += nprog
        fields = _load_item(WORK, w, num_kv_heads)
    if dynamic:
        # Every program has made its last fetch before it counts itself done, so the last one may reset.
        if tl.atomic_add(WORK + 5, 1) == nprog - 1:
            tl.atomic_xchg(WORK + 4, 0)
            tl.atomic_xchg(WORK + 5, 0)


@triton.jit
def _load_item(WORK, w, num_kv_heads):
    """The fields of item w that the kernel reads (scheduler.ITEM_FIELDS; item w is entry w // num_kv_heads)."""
    item = WORK + _HEADER + (w // num_kv_heads) * _ITEM_FIELDS
    return (tl.load(item), tl.load(item + 1), tl.load(item + 2), tl.load(item + 3), tl.load(item + 5),
            tl.load(item + 6), tl.load(item + 7), tl.load(item + 8), tl.load(item + 9), tl.load(item + 10),
            tl.load(item + 11))


@triton.jit
def _attend_item(
    Q, K, V, O, LSE, O_PART, LSE_PART, WORK, KV_INDICES, fields, kv_head, num_kv_heads, counter_offset,
    stride_qt, stride_qh, stride_ot, stride_oh, stride_lt, stride_kp, stride_kt, stride_kh,
    score_scale, cap_scale, window_left,
    GROUP: tl.constexpr, HEAD_DIM: tl.constexpr, PAGE_SIZE: tl.constexpr, BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr, CAUSAL: tl.constexpr, USE_WINDOW: tl.constexpr, USE_SOFT_CAP: tl.constexpr,
    WRITE_LSE: tl.constexpr, UPCAST: tl.constexpr, SPLIT: tl.constexpr, MERGE_ROWS: tl.constexpr,
    MERGE_CHUNKS: tl.constexpr,
):
    """One work item: a query tile against one KV chunk, for one KV head (fields: ``_load_item``)."""
    tok_base, qo_len, kv_len, row_start, kv_lo, kv_hi, page_base, slot, tile, num_chunks, first_entry = fields
    offs_m = tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)

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
    if SPLIT:
        if slot < 0:
            _store_rows(O, LSE, out, lse, tok_base, tok, q_head, row_ok, offs_d, stride_ot, stride_oh, stride_lt,
                        WRITE_LSE)
        else:
            p_rows = (slot * num_kv_heads + kv_head).to(tl.int64) * BLOCK_M + offs_m
            tl.store(O_PART + p_rows[:, None] * HEAD_DIM + offs_d[None, :], out, mask=row_ok[:, None])
            tl.store(LSE_PART + p_rows, lse, mask=row_ok)
            # The chunk of a (tile, head) that finishes last merges all its chunks, so a split schedule
            # needs no second launch. The barrier orders every thread's partial stores before the
            # counter's release; the acquire on the other side makes the other chunks' stores visible.
            tl.debug_barrier()
            counter = WORK + counter_offset + tile * num_kv_heads + kv_head
            if tl.atomic_add(counter, 1, sem="acq_rel", scope="gpu") == num_chunks - 1:
                _merge_chunks(O, LSE, O_PART, LSE_PART, first_entry, num_chunks, num_kv_heads, kv_head,
                              row_start, qo_len, tok_base, stride_ot, stride_oh, stride_lt,
                              GROUP, HEAD_DIM, BLOCK_M, MERGE_ROWS, MERGE_CHUNKS, WRITE_LSE)
                tl.atomic_xchg(counter, 0)  # ready for the next run of the same plan (graph replay)
    else:
        _store_rows(O, LSE, out, lse, tok_base, tok, q_head, row_ok, offs_d, stride_ot, stride_oh, stride_lt,
                    WRITE_LSE)


@triton.jit
def _store_rows(O, LSE, out, lse, tok_base, tok, q_head, row_ok, offs_d, stride_ot, stride_oh, stride_lt,
                WRITE_LSE: tl.constexpr):
    o_off = (tok_base + tok).to(tl.int64) * stride_ot + q_head * stride_oh
    tl.store(O + o_off[:, None] + offs_d[None, :], out.to(O.dtype.element_ty), mask=row_ok[:, None])
    if WRITE_LSE:
        tl.store(LSE + (tok_base + tok).to(tl.int64) * stride_lt + q_head, lse, mask=row_ok)


@triton.jit
def _merge_chunks(
    O, LSE, O_PART, LSE_PART, first_entry, num_chunks, num_kv_heads, kv_head, row_start, qo_len, tok_base,
    stride_ot, stride_oh, stride_lt,
    GROUP: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, MERGE_ROWS: tl.constexpr,
    MERGE_CHUNKS: tl.constexpr, WRITE_LSE: tl.constexpr,
):
    """Log-sum-exp merge of one (tile, KV head)'s chunk partials into O (and LSE).

    MERGE_ROWS tile rows at a time, one online pass over the chunks, MERGE_CHUNKS per step; each step's
    loads are issued before the previous step is combined, so the L2 round trips overlap. Merged:
    v = sum 2^s_c v_c / sum 2^s_c, lse = log2(sum 2^s_c).
    """
    offs_c = tl.arange(0, MERGE_CHUNKS)
    offs_r = tl.arange(0, MERGE_ROWS)
    offs_d = tl.arange(0, HEAD_DIM)
    num_rows = tl.minimum(qo_len * GROUP - row_start, BLOCK_M)
    base = (first_entry * num_kv_heads + kv_head).to(tl.int64) * BLOCK_M  # chunk 0's row 0
    chunk_stride = num_kv_heads * BLOCK_M
    for r0 in range(0, num_rows, MERGE_ROWS):
        r = r0 + offs_r
        r_ok = r < num_rows
        s_cur, o_cur = _load_partials(O_PART, LSE_PART, base, chunk_stride, offs_c, r, r_ok, offs_d, num_chunks,
                                      HEAD_DIM)
        m = tl.full([MERGE_ROWS], float("-inf"), tl.float32)
        total = tl.zeros([MERGE_ROWS], tl.float32)
        acc = tl.zeros([MERGE_ROWS, HEAD_DIM], tl.float32)
        for c0 in range(0, num_chunks, MERGE_CHUNKS):
            s_next, o_next = _load_partials(O_PART, LSE_PART, base, chunk_stride, c0 + MERGE_CHUNKS + offs_c, r,
                                            r_ok, offs_d, num_chunks, HEAD_DIM)
            m_new = tl.maximum(m, tl.max(s_cur, 0))
            m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
            alpha = tl.exp2(m - m_use)
            wgt = tl.exp2(s_cur - m_use[None, :])
            total = total * alpha + tl.sum(wgt, 0)
            acc = acc * alpha[:, None] + tl.sum(o_cur * wgt[:, :, None], 0)
            m = m_new
            s_cur, o_cur = s_next, o_next
        has = total > 0.0
        acc = acc / tl.where(has, total, 1.0)[:, None]
        row = row_start + r
        tok = row // GROUP
        q_head = kv_head * GROUP + row % GROUP
        o_off = (tok_base + tok).to(tl.int64) * stride_ot + q_head * stride_oh
        tl.store(O + o_off[:, None] + offs_d[None, :], acc.to(O.dtype.element_ty), mask=r_ok[:, None])
        if WRITE_LSE:
            m_use = tl.where(m == float("-inf"), 0.0, m)
            lse = tl.where(has, m_use + tl.log2(tl.where(has, total, 1.0)), float("-inf"))
            tl.store(LSE + (tok_base + tok).to(tl.int64) * stride_lt + q_head, lse, mask=r_ok)


@triton.jit
def _load_partials(O_PART, LSE_PART, base, chunk_stride, c, r, r_ok, offs_d, num_chunks, HEAD_DIM: tl.constexpr):
    """Partial lses [chunks, rows] and outputs [chunks, rows, HEAD_DIM] of chunks c (-inf / 0 past the end).

    .cg: read from L2, where other SMs' partial stores are (never from this SM's L1).
    """
    ok = (c < num_chunks)[:, None] & r_ok[None, :]
    p_row = base + (c * chunk_stride)[:, None] + r[None, :]
    s = tl.load(LSE_PART + p_row, mask=ok, other=float("-inf"), cache_modifier=".cg")
    o = tl.load(O_PART + p_row[:, :, None] * HEAD_DIM + offs_d[None, None, :], mask=ok[:, :, None], other=0.0,
                cache_modifier=".cg")
    return s, o


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
    split: bool = True,
    equal_items: bool = False,
):
    """Launch the persistent attention kernel over the work list in ``work`` (split chunks merged inside);
    ``split`` and ``equal_items`` as in PagedAttentionLauncher.prepare.

    q, out: [tokens, num_qo_heads, head_dim]; k, v: any views whose element (page, slot, head, d) sits at
    page*kv_strides[0] + slot*kv_strides[1] + head*kv_strides[2] + d; lse: [tokens, num_qo_heads] float32 or
    None. o_part/lse_part: float32 scratch for split chunks. Returns Triton's handle of the launched kernel.
    """
    launcher = PagedAttentionLauncher(q.device)
    launcher.prepare(o_part, lse_part, work, kv_indices, group_size=group_size, head_dim=q.shape[-1],
                     page_size=page_size, block_m=block_m, block_n=block_n, num_warps=num_warps,
                     num_stages=num_stages, num_programs=num_programs, causal=causal, window_left=window_left,
                     sm_scale=sm_scale, logits_soft_cap=logits_soft_cap, split=split, equal_items=equal_items)
    return launcher(q, k, v, out, lse, kv_strides)


def _launch_hooks_idle() -> bool:
    """True when no launch hook (profiler, proton) would need to see a launch: Triton 3.6 keeps an empty
    HookChain there, older versions None."""
    for hook in (knobs.runtime.launch_enter_hook, knobs.runtime.launch_exit_hook):
        if hook is not None and getattr(hook, "calls", True):
            return False
    return True


class PagedAttentionLauncher:
    """Launches ``paged_attention_kernel`` with everything but the per-call tensors fixed by ``prepare``.

    Host time per launch matters: on the H100 machine's CPU a Triton launch through the JIT costs tens of
    microseconds. After the first launch for a given argument specialization (the exact integer arguments
    and each pointer's 16-byte alignment, which is what Triton specializes on), later calls with the same
    specialization go straight to the compiled kernel's launcher with the data pointers as integers,
    skipping Triton's argument binding, cache lookup and per-pointer queries. Any other case (CPU
    interpreter, profiler hooks set) takes Triton's ordinary path.
    """

    fast_launch = True  # False: always Triton's ordinary launch path (the benchmark compares the two)
    # Item schedule (paged_attention_kernel's SCHEDULE): 0 picks at run time (static when no program has more
    # than one item or the items are equally long, else a shared counter); 1 always static, 2 always the
    # counter (for tuning).
    schedule = 0

    def __init__(self, device: torch.device):
        self.device = device
        self._fast = device.type == "cuda" and PagedAttentionLauncher.fast_launch
        self._compiled: dict = {}
        self._stream = None
        self._plan_args: tuple = ()
        self._plan_key: tuple = ()

    def prepare(self, o_part, lse_part, work, kv_indices, *, group_size, head_dim, page_size, block_m, block_n,
                num_warps, num_stages, num_programs, causal, window_left, sm_scale, logits_soft_cap,
                split: bool = True, equal_items: bool = False) -> None:
        """Fix the plan's buffers, scalars and compile-time constants (called by plan()).

        ``split=False`` promises that no item of the schedule is split: the kernel is then compiled without
        the partial-result and merge code (fewer registers; the prefill tiles spill less). ``equal_items``
        promises that every item is as long (the plan's header word 7, set for this plan only: not in graph mode):
        the kernel is then compiled with the static schedule alone (SCHEDULE 1), without the counter's code.
        """
        self._split = bool(split)
        score_scale, cap_scale = score_scales(sm_scale, logits_soft_cap)
        self.o_part, self.lse_part, self.work, self.kv_indices = o_part, lse_part, work, kv_indices
        self.grid = int(num_programs)
        self._scalars = (float(score_scale), float(cap_scale), int(window_left))
        # Compile-time constants, in the kernel's parameter order, minus WRITE_LSE/UPCAST (set per call).
        self._consts = (group_size, head_dim, page_size, block_m, block_n, bool(causal), window_left >= 0,
                        logits_soft_cap > 0)
        # The runtime choice (SCHEDULE 0) reads word 7 too, but the kernel compiled with both schedules kept 222
        # registers against 212 and ran 1-3% slower than the static one on equal items at batch 64-256 (H200,
        # results/sweep_decode_h200_latest.md, call 2).
        schedule = self.schedule or (1 if equal_items else 0)
        self._tail_consts = (self._split, schedule, MERGE_ROWS, merge_chunks(head_dim))
        self._group = group_size
        self._options = {"num_warps": num_warps, "num_stages": num_stages}
        self._upcast = o_part.device.type == "cpu"
        self._fixed_pointers = tuple(t.data_ptr() for t in (o_part, lse_part, work, kv_indices))
        if self._fast:
            aligned = tuple(p & 15 for p in self._fixed_pointers)
            self._plan_key = (aligned, self._scalars[2], self._consts, num_warps, num_stages, self._tail_consts)

    def __call__(self, q, k, v, out, lse, kv_strides):
        write_lse = lse is not None
        lse_arg = lse if write_lse else self.lse_part
        strides = (q.stride(0), q.stride(1), out.stride(0), out.stride(1), lse.stride(0) if write_lse else 0,
                   *kv_strides)
        heads = q.shape[1] // self._group
        # Triton's CPU interpreter computes bf16 dot products wrongly (3.9): it gets float32 operands (UPCAST).
        tail = (*self._scalars, heads, *self._consts, write_lse, self._upcast, *self._tail_consts)
        key = None
        if self._fast:
            pointers = (q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(), lse_arg.data_ptr())
            key = (self._plan_key, q.dtype, strides, heads, write_lse, *(p & 15 for p in pointers))
            entry = self._compiled.get(key)
            if entry is not None and _launch_hooks_idle():
                # Pointers as integers: Triton's launcher takes them as they are, where a tensor costs it a
                # data_ptr() call and a driver query of the pointer's attributes, for each of nine pointers.
                kernel, run, function, metadata = entry
                run(self.grid, 1, 1, self._stream(self.device.index), function, metadata, None, None, None,
                    *pointers, *self._fixed_pointers, *strides, *tail)
                return kernel
        kernel = paged_attention_kernel[(self.grid,)](
            q, k, v, out, lse_arg, self.o_part, self.lse_part, self.work, self.kv_indices, *strides, *tail,
            **self._options)
        if key is not None and kernel is not None and hasattr(kernel, "packed_metadata"):
            if self._stream is None:
                from triton.runtime import driver

                self._stream = driver.active.get_current_stream
            self._compiled[key] = (kernel, kernel.run, kernel.function, kernel.packed_metadata)
        return kernel


def default_sm_scale(head_dim: int) -> float:
    """1/sqrt(head_dim), the scale FlashInfer uses when none is given."""
    return 1.0 / math.sqrt(head_dim)
