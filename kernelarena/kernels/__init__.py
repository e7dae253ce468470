"""Our own kernels, one operator per sub-package (kernel, launcher and reference side by side).

The library calls are re-exported here, so ``kernelarena.kernels.rmsnorm(x, weight)`` works; the modules stay
importable by their full names (``from kernelarena.kernels.rmsnorm import backends``). Every operator has the
same layout (reference.py, one module per backend, backends.py, solutions.py): see CONTRIBUTING.md.
"""

from .rmsnorm import fused_add_rmsnorm, rmsnorm

__all__ = ["fused_add_rmsnorm", "rmsnorm"]
