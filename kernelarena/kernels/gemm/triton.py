"""GEMM C = A @ B.T in Triton: A [M, K] and B [N, K] row-major (B is a linear layer's weight), float32
accumulation, output in C's dtype. Tiles are ordered in groups of GROUP_M rows of tiles so that a group
reuses B's tiles from L2; tile sizes follow M (decode batches are a few rows, prefill thousands). Under
TRITON_INTERPRET=1 (the CPU) large tiles keep the interpreter's per-tile cost down.

Self-contained (torch, triton, os): this file is the source of the dataset's Triton GEMM solutions.
"""

import os

import torch
import triton
import triton.language as tl


@triton.jit
def _gemm_kernel(a_ptr, b_ptr, c_ptr, M, N, K, stride_am, stride_bn, stride_cm,
                 BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
                 UPCAST: tl.constexpr):
    pid = tl.program_id(0)
    tiles_m = tl.cdiv(M, BLOCK_M)
    tiles_n = tl.cdiv(N, BLOCK_N)
    per_group = GROUP_M * tiles_n
    first_m = (pid // per_group) * GROUP_M
    group_rows = min(tiles_m - first_m, GROUP_M)
    pid_m = first_m + (pid % per_group) % group_rows
    pid_n = (pid % per_group) // group_rows
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    ks = tl.arange(0, BLOCK_K)
    a_ptrs = a_ptr + rows.to(tl.int64)[:, None] * stride_am + ks[None, :]
    b_ptrs = b_ptr + cols.to(tl.int64)[None, :] * stride_bn + ks[:, None]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k_ok = (k0 + ks) < K
        a = tl.load(a_ptrs, mask=(rows[:, None] < M) & k_ok[None, :], other=0.0)
        b = tl.load(b_ptrs, mask=(cols[None, :] < N) & k_ok[:, None], other=0.0)
        if UPCAST:  # the interpreter's dot (numpy) has no bfloat16
            a, b = a.to(tl.float32), b.to(tl.float32)
        acc = tl.dot(a, b, acc)
        a_ptrs += BLOCK_K
        b_ptrs += BLOCK_K
    c_ptrs = c_ptr + rows.to(tl.int64)[:, None] * stride_cm + cols[None, :]
    tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty), mask=(rows[:, None] < M) & (cols[None, :] < N))


def _config(m: int, interpreted: bool):
    """(BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, num_warps, num_stages) for M rows."""
    if interpreted:
        return 16 if m <= 16 else 64, 512, 512, 1, 4, 1
    if m <= 16:  # decode: many narrow column tiles so that every SM streams a part of B
        return 16, 64, 128, 1, 4, 4
    if m <= 128:
        return 64, 128, 64, 8, 4, 4
    return 128, 128, 64, 8, 8, 3


def gemm(A: torch.Tensor, B: torch.Tensor, C: torch.Tensor) -> None:
    """C = A @ B.T, written into C. A [M, K] and B [N, K] must be contiguous in their last dimension."""
    m, k = A.shape
    n = B.shape[0]
    if A.stride(1) != 1 or B.stride(1) != 1 or C.stride(1) != 1:
        raise ValueError("gemm: A, B and C must be contiguous in their last dimension")
    interpreted = os.environ.get("TRITON_INTERPRET") == "1"
    block_m, block_n, block_k, group_m, warps, stages = _config(m, interpreted)
    grid = (triton.cdiv(m, block_m) * triton.cdiv(n, block_n),)
    _gemm_kernel[grid](A, B, C, m, n, k, A.stride(0), B.stride(0), C.stride(0), BLOCK_M=block_m, BLOCK_N=block_n,
                       BLOCK_K=block_k, GROUP_M=group_m, UPCAST=interpreted, num_warps=warps, num_stages=stages)


def run(A, B, C):
    """Dataset entry (destination passing): C = A @ B.T."""
    gemm(A, B, C)
