"""Mixture of experts (MoE) in bf16 with DeepSeek-V3 routing (sigmoid scores, 8 groups, top-4 groups, top-8
experts): for the local experts, GEMM1 (up and gate) -> SwiGLU -> GEMM2, summed with the routing weights."""
