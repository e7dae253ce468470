"""RMSNorm and fused add + RMSNorm in TileLang: program, compile cache, destination-passing entry points.

    rmsnorm:            out = x * rsqrt(mean(x^2) + eps) * w
    fused_add_rmsnorm:  s = x + r; residual_out = s; out = s * rsqrt(mean(s^2) + eps) * w   (s in float32)

One block normalizes ``rows_per_block`` whole rows held in register fragments (TileLang lowers the copies to
16-byte vector accesses and the row sum to a warp-shuffle all-reduce). The batch size is symbolic, so one
compiled kernel serves every batch; a kernel is compiled per (hidden, dtype, fused, eps). Rows must be
contiguous ([batch, hidden] with row stride hidden).

Self-contained (torch, tilelang, stdlib): this file is the source of the dataset's TileLang solutions.
No ``from __future__ import annotations`` here: TileLang evaluates the prim_func's annotations, which refer
to the enclosing function's locals.
"""


import functools

import tilelang
import tilelang.language as T
import torch

DATASET_EPS = 1e-6
MAX_HIDDEN = 16384
_DTYPE_NAMES = {torch.bfloat16: "bfloat16", torch.float16: "float16"}


def launch_shape(hidden: int, fused: bool) -> tuple[int, int]:
    """(rows_per_block, threads) for a hidden size: four 16-byte vectors per thread, eight for rmsnorm rows
    of 8192+ (what the CUDA kernel's sweep favoured), threads a power of two dividing the row's vectors;
    short rows share a block of 128 threads. Raises ValueError for a hidden size this kernel does not
    handle."""
    if hidden % 128 or not 0 < hidden <= MAX_HIDDEN:
        raise ValueError(f"TileLang RMSNorm needs a hidden size that is a multiple of 128 up to {MAX_HIDDEN}, "
                         f"got {hidden}")
    vectors = hidden // 8
    per_thread = 8 if not fused and vectors >= 1024 else 4
    threads = 1
    while threads * 2 <= min(1024, vectors // per_thread) and vectors % (threads * 2) == 0:
        threads *= 2
    if threads >= 128:
        return 1, threads
    return max(1, 128 // threads), 128


def rmsnorm_program(hidden: int, dtype: str, fused: bool, eps: float):
    """The TileLang prim_func: (X, W, Out) or, fused, (X, R, W, Out, ROut), all [M, hidden] but W."""
    rows, threads = launch_shape(hidden, fused)
    m = T.dynamic("batch_size")
    acc = "float32"

    @T.macro
    def normalize(X, R, W, Out, ROut):
        with T.Kernel(T.ceildiv(m, rows), threads=threads) as bx:
            xf = T.alloc_fragment((rows, hidden), acc)
            wf = T.alloc_fragment((hidden,), acc)
            sq = T.alloc_fragment((rows, hidden), acc)
            sum_sq = T.alloc_fragment((rows,), acc)
            T.copy(X[bx * rows, 0], xf)
            T.copy(W, wf)
            if fused:
                rf = T.alloc_fragment((rows, hidden), acc)
                T.copy(R[bx * rows, 0], rf)
                for i, j in T.Parallel(rows, hidden):
                    xf[i, j] = xf[i, j] + rf[i, j]
                T.copy(xf, ROut[bx * rows, 0])
            for i, j in T.Parallel(rows, hidden):
                sq[i, j] = xf[i, j] * xf[i, j]
            T.reduce_sum(sq, sum_sq, dim=1)
            for i in T.Parallel(rows):
                sum_sq[i] = T.rsqrt(sum_sq[i] / hidden + eps)
            for i, j in T.Parallel(rows, hidden):
                xf[i, j] = xf[i, j] * sum_sq[i] * wf[j]
            T.copy(xf, Out[bx * rows, 0])

    if fused:

        @T.prim_func
        def fused_add_rmsnorm_kernel(
            X: T.Tensor((m, hidden), dtype), R: T.Tensor((m, hidden), dtype), W: T.Tensor((hidden,), dtype),
            Out: T.Tensor((m, hidden), dtype), ROut: T.Tensor((m, hidden), dtype),
        ):
            normalize(X, R, W, Out, ROut)

        return fused_add_rmsnorm_kernel

    @T.prim_func
    def rmsnorm_kernel(X: T.Tensor((m, hidden), dtype), W: T.Tensor((hidden,), dtype),
                       Out: T.Tensor((m, hidden), dtype)):
        normalize(X, None, W, Out, None)

    return rmsnorm_kernel


def cuda_source(hidden: int, dtype: str, fused: bool, eps: float = DATASET_EPS, arch: str = "sm_90") -> str:
    """Lower the program to CUDA C++ for ``arch`` and return the kernel source (needs no GPU)."""
    from tvm.target import Target

    target = Target({"kind": "cuda", "arch": arch})
    with target:
        return tilelang.lower(rmsnorm_program(hidden, dtype, fused, eps), target=target).kernel_source


@functools.lru_cache(maxsize=None)
def compiled_kernel(hidden: int, dtype: str, fused: bool, eps: float):
    """Compile (once per process and arguments) the kernel for the current CUDA device."""
    return tilelang.compile(rmsnorm_program(hidden, dtype, fused, eps), target="cuda")


def launch(x, residual, weight, out, residual_out, eps: float) -> None:
    """Normalize the rows of ``x`` into ``out``; with ``residual`` given, first add it to ``x`` and write the
    sum to ``residual_out``. No argument checks: callers validate (contiguous rows, CUDA, bf16/fp16)."""
    n_rows, hidden = x.shape
    if n_rows == 0:
        return
    kernel = compiled_kernel(hidden, _DTYPE_NAMES[x.dtype], residual is not None, float(eps))
    if residual is None:
        kernel(x, weight, out)
    else:
        kernel(x, residual, weight, out, residual_out)


def run_rmsnorm(hidden_states, weight, output):
    """Dataset entry for ``rmsnorm_h*``: output = rmsnorm(hidden_states) * weight, eps 1e-6."""
    launch(hidden_states, None, weight, output, None, DATASET_EPS)


def run_fused_add_rmsnorm(hidden_states, residual, weight, output, residual_out):
    """Dataset entry for ``fused_add_rmsnorm_h*``: residual_out = hidden_states + residual, output =
    rmsnorm(residual_out) * weight, eps 1e-6; inputs are left unchanged."""
    launch(hidden_states, residual, weight, output, residual_out, DATASET_EPS)
