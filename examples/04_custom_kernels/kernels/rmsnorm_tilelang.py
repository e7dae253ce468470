"""RMSNorm in TileLang: one block per row, the row in a register fragment, a reduce_sum across the block.

TileLang compiles the program for the GPU on the first call (the batch size is symbolic, so one compiled
kernel serves every batch). No ``from __future__ import annotations``: TileLang reads the annotations.
"""

import functools

import tilelang
import tilelang.language as T


def rmsnorm_program(hidden: int, eps: float = 1e-6, threads: int = 256):
    m = T.dynamic("batch_size")

    @T.prim_func
    def rmsnorm(X: T.Tensor((m, hidden), "bfloat16"), W: T.Tensor((hidden,), "bfloat16"),
                Out: T.Tensor((m, hidden), "bfloat16")):
        with T.Kernel(m, threads=threads) as row:
            x = T.alloc_fragment((1, hidden), "float32")
            w = T.alloc_fragment((hidden,), "float32")
            squares = T.alloc_fragment((1, hidden), "float32")
            sum_sq = T.alloc_fragment((1,), "float32")
            T.copy(X[row, 0], x)
            T.copy(W, w)
            for i, j in T.Parallel(1, hidden):
                squares[i, j] = x[i, j] * x[i, j]
            T.reduce_sum(squares, sum_sq, dim=1)
            for i in T.Parallel(1):
                sum_sq[i] = T.rsqrt(sum_sq[i] / hidden + eps)
            for i, j in T.Parallel(1, hidden):
                x[i, j] = x[i, j] * sum_sq[i] * w[j]
            T.copy(x, Out[row, 0])

    return rmsnorm


@functools.lru_cache(maxsize=None)
def compiled(hidden: int):
    return tilelang.compile(rmsnorm_program(hidden), target="cuda")


def run(hidden_states, weight, output):
    if hidden_states.shape[0]:
        compiled(hidden_states.shape[1])(hidden_states, weight, output)
