"""Plain-PyTorch GEMM as FlashInfer-Trace's gemm definitions define it: C = A @ B.T (A [M, K], B [N, K])."""

import torch


def run(A, B):
    return torch.matmul(A, B.T)
