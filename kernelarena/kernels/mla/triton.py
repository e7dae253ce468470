"""MLA paged decode in Triton: one program per request computes all heads (they share the compressed KV, so
each token's 512 + 64 values are read once for every head), streaming the request's tokens in tiles with an
online softmax in float32. lse is returned in base 2, as FlashInfer does.

No split over the sequence: a batch of one long request runs on one program (slow on a GPU for small
batches; the benchmark table says how slow). Under TRITON_INTERPRET=1 (the CPU) dot operands are upcast.

Self-contained (torch, triton, os, math): this file is the source of the dataset's Triton MLA solutions.
"""

import math
import os

import triton
import triton.language as tl


@triton.jit
def _mla_decode_kernel(q_nope_ptr, q_pe_ptr, ckv_ptr, kpe_ptr, indptr_ptr, indices_ptr, out_ptr, lse_ptr,
                       scale_log2, q_stride, qpe_stride, ckv_stride, kpe_stride, out_stride,
                       HEADS: tl.constexpr, CKV: tl.constexpr, KPE: tl.constexpr, BLOCK_T: tl.constexpr,
                       UPCAST: tl.constexpr):
    b = tl.program_id(0)
    h = tl.arange(0, HEADS)[:, None]
    c = tl.arange(0, CKV)[None, :]
    e = tl.arange(0, KPE)[None, :]
    q_nope = tl.load(q_nope_ptr + b.to(tl.int64) * q_stride + h * CKV + c)
    q_pe = tl.load(q_pe_ptr + b.to(tl.int64) * qpe_stride + h * KPE + e)
    if UPCAST:  # the interpreter's dot (numpy) has no bfloat16
        q_nope, q_pe = q_nope.to(tl.float32), q_pe.to(tl.float32)
    start = tl.load(indptr_ptr + b)
    end = tl.load(indptr_ptr + b + 1)
    m = tl.full((HEADS,), float("-inf"), dtype=tl.float32)
    l = tl.zeros((HEADS,), dtype=tl.float32)
    acc = tl.zeros((HEADS, CKV), dtype=tl.float32)
    for t0 in range(start, end, BLOCK_T):
        t = t0 + tl.arange(0, BLOCK_T)
        valid = t < end
        page = tl.load(indices_ptr + t, mask=valid, other=0).to(tl.int64)
        ckv = tl.load(ckv_ptr + page[:, None] * ckv_stride + c, mask=valid[:, None], other=0.0)
        kpe = tl.load(kpe_ptr + page[:, None] * kpe_stride + e, mask=valid[:, None], other=0.0)
        if UPCAST:
            ckv, kpe = ckv.to(tl.float32), kpe.to(tl.float32)
        logits = (tl.dot(q_nope, tl.trans(ckv)) + tl.dot(q_pe, tl.trans(kpe))) * scale_log2
        logits = tl.where(valid[None, :], logits, float("-inf"))
        m_new = tl.maximum(m, tl.max(logits, axis=1))
        alpha = tl.exp2(m - m_new)
        p = tl.exp2(logits - m_new[:, None])
        l = l * alpha + tl.sum(p, axis=1)
        acc = acc * alpha[:, None] + tl.dot(p.to(ckv.dtype), ckv)
        m = m_new
    has_tokens = end > start
    out = tl.where(has_tokens, acc / tl.where(l > 0, l, 1.0)[:, None], 0.0)
    tl.store(out_ptr + b.to(tl.int64) * out_stride + h * CKV + c, out.to(out_ptr.dtype.element_ty))
    lse = tl.where(has_tokens, m + tl.log2(tl.where(l > 0, l, 1.0)), float("-inf"))
    tl.store(lse_ptr + b * HEADS + tl.arange(0, HEADS), lse)


def mla_decode(q_nope, q_pe, ckv_cache, kpe_cache, kv_indptr, kv_indices, sm_scale, output, lse) -> None:
    """Write MLA decode attention of each request into output [batch, heads, ckv] and lse [batch, heads]."""
    batch, heads, ckv_dim = q_nope.shape
    kpe_dim = q_pe.shape[-1]
    if batch == 0:
        return
    interpreted = os.environ.get("TRITON_INTERPRET") == "1"
    _mla_decode_kernel[(batch,)](
        q_nope, q_pe, ckv_cache, kpe_cache, kv_indptr, kv_indices, output, lse, sm_scale / math.log(2.0),
        q_nope.stride(0), q_pe.stride(0), ckv_cache.stride(0), kpe_cache.stride(0), output.stride(0),
        HEADS=heads, CKV=ckv_dim, KPE=kpe_dim, BLOCK_T=32, UPCAST=interpreted, num_warps=8, num_stages=2)


def run(q_nope, q_pe, ckv_cache, kpe_cache, kv_indptr, kv_indices, sm_scale, output, lse):
    """Dataset entry (destination passing)."""
    mla_decode(q_nope, q_pe, ckv_cache, kpe_cache, kv_indptr, kv_indices, sm_scale, output, lse)
