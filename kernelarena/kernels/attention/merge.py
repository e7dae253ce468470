"""Log-sum-exp merge of partial attention results (split KV chunks) into the final output.

Attention over KV split into chunks A and B merges exactly: with base-2 log-sum-exps s_a, s_b and chunk
outputs v_a, v_b, s = log2(2^s_a + 2^s_b) and v = (2^s_a v_a + 2^s_b v_b) / 2^s. ``merge_partials_kernel``
applies this to the slots listed in the scheduler's merge groups; one program step merges one output row
(a query token and head) over all its chunks at once, so the chunk loads are independent and in flight
together. ``merge_states`` is the same rule in plain torch for any number of states.

Self-contained (torch and triton only): the dataset's solutions embed this file verbatim.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

_HEADER = tl.constexpr(8)  # scheduler.HEADER
_GROUP_FIELDS = tl.constexpr(8)  # scheduler.GROUP_FIELDS


@triton.jit
def merge_partials_kernel(
    O, LSE, O_PART, LSE_PART, WORK, stride_ot, stride_oh, stride_lt,
    GROUP: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_C: tl.constexpr,
    WRITE_LSE: tl.constexpr,
):
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    num_groups = tl.load(WORK + 1)
    group_offset = tl.load(WORK + 2)
    num_kv_heads = tl.load(WORK + 3)
    offs_c = tl.arange(0, BLOCK_C)
    offs_d = tl.arange(0, HEAD_DIM)
    for unit in range(pid, num_groups * num_kv_heads * BLOCK_M, nprog):
        # Unit = (group, KV head, row of the tile).
        grp = WORK + group_offset + (unit // (num_kv_heads * BLOCK_M)) * _GROUP_FIELDS
        kv_head = unit // BLOCK_M % num_kv_heads
        r = unit % BLOCK_M
        first_slot = tl.load(grp)
        num_chunks = tl.load(grp + 1)
        tok_base = tl.load(grp + 2)
        qo_len = tl.load(grp + 3)
        row = tl.load(grp + 4) + r
        tok = row // GROUP
        if tok < qo_len:
            q_head = kv_head * GROUP + row % GROUP
            m = tl.full([BLOCK_C], float("-inf"), tl.float32)
            denom = tl.zeros([BLOCK_C], tl.float32)
            acc = tl.zeros([BLOCK_C, HEAD_DIM], tl.float32)
            # Each lane of BLOCK_C keeps its own running state; the lanes are combined at the end.
            for c0 in range(0, num_chunks, BLOCK_C):
                c = c0 + offs_c
                c_ok = c < num_chunks
                p_row = ((first_slot + c) * num_kv_heads + kv_head).to(tl.int64) * BLOCK_M + r
                s = tl.load(LSE_PART + p_row, mask=c_ok, other=float("-inf"))
                o = tl.load(O_PART + p_row[:, None] * HEAD_DIM + offs_d[None, :], mask=c_ok[:, None], other=0.0)
                m_new = tl.maximum(m, s)
                m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
                a = tl.exp2(m - m_use)
                b = tl.exp2(s - m_use)
                acc = acc * a[:, None] + o * b[:, None]
                denom = denom * a + b
                m = m_new
            m_all = tl.max(m, 0)
            m_all_use = tl.where(m_all == float("-inf"), 0.0, m_all)
            w = tl.exp2(m - m_all_use)
            total = tl.sum(denom * w, 0)
            out = tl.sum(acc * w[:, None], 0) / tl.where(total > 0.0, total, 1.0)
            o_off = (tok_base + tok).to(tl.int64) * stride_ot + q_head * stride_oh
            tl.store(O + o_off + offs_d, out.to(O.dtype.element_ty))
            if WRITE_LSE:
                lse = tl.where(total > 0.0, m_all_use + tl.log2(tl.where(total > 0.0, total, 1.0)), float("-inf"))
                tl.store(LSE + (tok_base + tok).to(tl.int64) * stride_lt + q_head, lse)


def launch_merge(
    out: torch.Tensor,
    lse,
    o_part: torch.Tensor,
    lse_part: torch.Tensor,
    work: torch.Tensor,
    *,
    group_size: int,
    block_m: int,
    num_programs: int,
) -> None:
    """Merge the split chunks listed in ``work`` into ``out`` (and ``lse`` when given)."""
    write_lse = lse is not None
    lse_arg = lse if write_lse else lse_part
    merge_partials_kernel[(num_programs,)](
        out, lse_arg, o_part, lse_part, work,
        out.stride(0), out.stride(1), lse_arg.stride(0) if write_lse else 0,
        GROUP=group_size, HEAD_DIM=out.shape[-1], BLOCK_M=block_m, BLOCK_C=16, WRITE_LSE=write_lse,
        num_warps=4,
    )


def merge_states(values: torch.Tensor, lses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge attention states over their first axis.

    values: [num_states, ..., head_dim] outputs of attention over disjoint KV segments; lses: [num_states, ...]
    their base-2 log-sum-exps (-inf for an empty segment). Returns (value, lse) as if attention had run over
    all segments at once; a row with every segment empty gets value 0 and lse -inf.
    """
    lses = lses.float()
    m = lses.max(dim=0).values
    m_use = torch.where(torch.isinf(m) & (m < 0), torch.zeros_like(m), m)
    weights = torch.exp2(lses - m_use)
    total = weights.sum(dim=0)
    value = (values.float() * weights[..., None]).sum(dim=0) / torch.where(total > 0, total, 1.0)[..., None]
    lse = torch.where(total > 0, m_use + torch.log2(torch.where(total > 0, total, 1.0)), float("-inf"))
    return value.to(values.dtype), lse
