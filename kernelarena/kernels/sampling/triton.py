"""Top-k / top-p sampling from probabilities in Triton, exact and sort-free.

Per row, with p as non-negative float32 (whose bit patterns order like their values):
1. one pass: the row's largest value and its mass;
2. top-k: a binary search over bit patterns for the k-th largest value t_k (31 counting passes) keeps
   p >= t_k, ties at the k-th included;
3. top-p: a binary search for the least v with mass(kept, > v) <= top_p * mass(kept) (31 summing passes)
   keeps p >= v, which is exactly "the mass before a token is at most top_p" (the crossing token kept);
4. one pass: an inverse-CDF draw with a uniform from Triton's Philox generator (a fresh seed per call).

Each program takes BLOCK_R rows at once ([BLOCK_R, BLOCK_V] tiles): one row a program on a GPU, many under
TRITON_INTERPRET=1, where the cost is per operation. About 64 passes over the row: slower than FlashInfer's
rejection sampler, which needs a few; its place is in the benchmark table.

Self-contained (torch, triton, os): this file is the source of the dataset's Triton sampling solutions.
"""

import os

import torch
import triton
import triton.language as tl


@triton.jit
def _count_at_least(base, rows_ok, vocab, bits, BLOCK_R: tl.constexpr, BLOCK_V: tl.constexpr):
    count = tl.zeros((BLOCK_R,), dtype=tl.int32)
    for v0 in range(0, vocab, BLOCK_V):
        cols = v0 + tl.arange(0, BLOCK_V)[None, :]
        p = tl.load(base + cols, mask=rows_ok & (cols < vocab), other=0.0)
        count += tl.sum((p.to(tl.int32, bitcast=True) >= bits[:, None]).to(tl.int32), axis=1)
    return count


@triton.jit
def _mass_above(base, rows_ok, vocab, floor_bits, bits, BLOCK_R: tl.constexpr, BLOCK_V: tl.constexpr):
    mass = tl.zeros((BLOCK_R,), dtype=tl.float32)
    for v0 in range(0, vocab, BLOCK_V):
        cols = v0 + tl.arange(0, BLOCK_V)[None, :]
        p = tl.load(base + cols, mask=rows_ok & (cols < vocab), other=0.0)
        b = p.to(tl.int32, bitcast=True)
        mass += tl.sum(tl.where((b >= floor_bits[:, None]) & (b > bits[:, None]), p, 0.0), axis=1)
    return mass


@triton.jit
def _sampling_kernel(probs_ptr, top_k_ptr, top_p_ptr, out_ptr, n_rows, vocab, stride, seed,
                     HAS_K: tl.constexpr, HAS_P: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_V: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    row_ok = rows < n_rows
    rows_ok = row_ok[:, None]
    base = probs_ptr + rows.to(tl.int64)[:, None] * stride
    largest = tl.zeros((BLOCK_R,), dtype=tl.float32)
    for v0 in range(0, vocab, BLOCK_V):
        cols = v0 + tl.arange(0, BLOCK_V)[None, :]
        largest = tl.maximum(largest, tl.max(tl.load(base + cols, mask=rows_ok & (cols < vocab), other=0.0), axis=1))
    floor_bits = tl.zeros((BLOCK_R,), dtype=tl.int32)  # tokens kept: p >= the float with these bits
    if HAS_K:
        k = tl.load(top_k_ptr + rows, mask=row_ok, other=0).to(tl.int32)
        active = (k > 0) & (k < vocab)
        lo = tl.zeros((BLOCK_R,), dtype=tl.int32)  # count(p >= lo) >= k
        hi = largest.to(tl.int32, bitcast=True) + 1  # count(p >= hi) == 0 < k
        for _ in range(31):
            mid = lo + (hi - lo) // 2
            enough = _count_at_least(base, rows_ok, vocab, mid, BLOCK_R, BLOCK_V) >= k
            lo = tl.where(enough, mid, lo)
            hi = tl.where(enough, hi, mid)
        floor_bits = tl.where(active, lo, floor_bits)
    if HAS_P:
        top_p = tl.load(top_p_ptr + rows, mask=row_ok, other=1.0).to(tl.float32)
        allowed = top_p * _mass_above(base, rows_ok, vocab, floor_bits, floor_bits - 1, BLOCK_R, BLOCK_V)
        lo = floor_bits - 1  # mass above lo > allowed (unless everything is allowed)
        hi = largest.to(tl.int32, bitcast=True)  # mass above the largest is 0 <= allowed
        for _ in range(31):
            mid = lo + (hi - lo) // 2
            fits = _mass_above(base, rows_ok, vocab, floor_bits, mid, BLOCK_R, BLOCK_V) <= allowed
            hi = tl.where(fits, mid, hi)
            lo = tl.where(fits, lo, mid)
        floor_bits = tl.where(top_p >= 1.0, floor_bits, tl.maximum(floor_bits, hi))
    total = _mass_above(base, rows_ok, vocab, floor_bits, floor_bits - 1, BLOCK_R, BLOCK_V)
    target = tl.rand(seed, rows) * total
    running = tl.zeros((BLOCK_R,), dtype=tl.float32)
    chosen = tl.full((BLOCK_R,), -1, dtype=tl.int32)
    last_kept = tl.zeros((BLOCK_R,), dtype=tl.int32)
    for v0 in range(0, vocab, BLOCK_V):
        cols = v0 + tl.arange(0, BLOCK_V)[None, :]
        p = tl.load(base + cols, mask=rows_ok & (cols < vocab), other=0.0)
        kept = (p.to(tl.int32, bitcast=True) >= floor_bits[:, None]) & (cols < vocab) & (p > 0)
        p = tl.where(kept, p, 0.0)
        passed = running[:, None] + tl.cumsum(p, axis=1) > target[:, None]
        first = tl.min(tl.where(passed & kept, cols, vocab), axis=1)
        chosen = tl.where((chosen < 0) & (first < vocab), first, chosen)
        last_kept = tl.maximum(last_kept, tl.max(tl.where(kept, cols, 0), axis=1))
        running += tl.sum(p, axis=1)
    chosen = tl.where(chosen < 0, last_kept, chosen)  # rounding left the draw past the last kept token
    tl.store(out_ptr + rows, chosen.to(tl.int64), mask=row_ok)


def sample(probs: torch.Tensor, top_k=None, top_p=None, out=None) -> torch.Tensor:
    """One token per row of ``probs`` [rows, vocabulary] (float32) after top-k then top-p filtering; int64.

    A fresh seed is drawn from torch's generator on every call, so calls are independent draws.
    """
    rows, vocab = probs.shape
    if probs.dtype != torch.float32 or probs.stride(1) != 1:
        raise ValueError("sampling: probs must be float32 and contiguous in its last dimension")
    out = torch.empty(rows, dtype=torch.int64, device=probs.device) if out is None else out
    if rows == 0:
        return out
    interpreted = os.environ.get("TRITON_INTERPRET") == "1"
    block_v = min(16384 if interpreted else 4096, triton.next_power_of_2(vocab))
    block_r = min(triton.next_power_of_2(rows), (1 << 20) // block_v) if interpreted else 1
    seed = int(torch.randint(0, 2**31 - 1, (1,)))
    _sampling_kernel[(triton.cdiv(rows, block_r),)](
        probs, top_k if top_k is not None else probs, top_p if top_p is not None else probs, out, rows, vocab,
        probs.stride(0), seed, HAS_K=top_k is not None, HAS_P=top_p is not None, BLOCK_R=block_r, BLOCK_V=block_v,
        num_warps=8)
    return out


def run_top_k(probs, top_k, samples):
    """Dataset entry of top_k_sampling_from_probs_* (destination passing)."""
    sample(probs, top_k=top_k, out=samples)


def run_top_p(probs, top_p, samples):
    """Dataset entry of top_p_sampling_from_probs_* (destination passing)."""
    sample(probs, top_p=top_p, out=samples)


def run_top_k_top_p(probs, top_k, top_p, samples):
    """Dataset entry of top_k_top_p_sampling_from_probs_* (destination passing)."""
    sample(probs, top_k=top_k, top_p=top_p, out=samples)
