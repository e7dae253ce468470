"""Our own kernels, one operator per sub-package (kernel, launcher and reference side by side).

The library calls are re-exported here, so ``kernelarena.kernels.rmsnorm(x, weight)`` works; the modules stay
importable by their full names (``from kernelarena.kernels.rmsnorm import triton_impl``).
"""

from .rmsnorm import fused_add_rmsnorm, rmsnorm

__all__ = ["fused_add_rmsnorm", "rmsnorm"]
