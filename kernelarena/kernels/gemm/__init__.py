"""Dense GEMM C = A @ B.T (bf16 in, float32 accumulation, bf16 out), as FlashInfer-Trace's gemm_n*_k* define it."""
