"""RMSNorm and fused add + RMSNorm: the library calls, over four backends.

    rmsnorm(x, weight, eps=1e-6, out=None, backend="auto") -> out
        out = x * rsqrt(mean(x^2) + eps) * weight over the last dim, float32 accumulation.
    fused_add_rmsnorm(x, residual, weight, eps=1e-6, backend="auto") -> None
        residual += x; x = rmsnorm(residual) * weight, both in place (FlashInfer's API). The norm uses the
        float32 sum, not the sum rounded to the storage type.

The operator's layout (the same for every operator under kernelarena/kernels/):
    reference.py   plain PyTorch: the float64 reference and the "torch" backend
    triton.py      the Triton kernel and its launchers ("triton")
    cuda/          rmsnorm.cuh and its bindings: CPython ("cuda"), torch extension and TVM-FFI (dataset)
    tilelang.py    the TileLang kernel ("tilelang")
    flashinfer.py  FlashInfer's RMSNorm as a dataset solution (the baseline)
    backends.py    the backend table (availability, launcher, host cost) and the "auto" choice
    api.py         the library calls: checks and backend choice once per call layout
    solutions.py   the dataset's Solution records, built from the files above

bf16 and fp16; any number of rows (leading dims are flattened); hidden sizes 1..16384. ``backend="auto"``
picks the cheapest launch for small calls and the fastest measured kernel for large ones (backends.py); on
the CPU "torch", or "triton" when TRITON_INTERPRET=1 is set.
"""

from .api import MAX_HIDDEN, clear_plans, fused_add_rmsnorm, rmsnorm
from .backends import BACKENDS

__all__ = ["rmsnorm", "fused_add_rmsnorm", "clear_plans", "BACKENDS", "MAX_HIDDEN"]
