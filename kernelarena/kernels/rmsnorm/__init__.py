"""RMSNorm and fused add + RMSNorm: the library calls, over four backends.

    rmsnorm(x, weight, eps=1e-6, out=None, backend="auto") -> out
        out = x * rsqrt(mean(x^2) + eps) * weight over the last dim, float32 accumulation.
    fused_add_rmsnorm(x, residual, weight, eps=1e-6, backend="auto") -> None
        residual += x; x = rmsnorm(residual) * weight, both in place (FlashInfer's API). The norm uses the
        float32 sum, not the sum rounded to the storage type.

Backends: "triton" (triton_impl.py), "cuda" (rmsnorm.cuh through a torch extension, cuda_impl.py),
"tilelang" (tilelang_impl.py), "torch" (plain PyTorch, reference.py), and "auto": on a CUDA device the
fastest measured (auto_table.py); on the CPU "torch", or "triton" when TRITON_INTERPRET=1 is set.
bf16 and fp16; any number of rows (leading dims are flattened); hidden sizes 1..16384.
"""

from __future__ import annotations

import functools
import importlib.util

import torch

from kernelarena import env
from kernelarena.errors import UnsupportedError
from kernelarena.kernels.rmsnorm.auto_table import PREFERENCE, measured_choice

__all__ = ["rmsnorm", "fused_add_rmsnorm", "BACKENDS", "MAX_HIDDEN"]

BACKENDS = ("auto", "triton", "cuda", "tilelang", "torch")
MAX_HIDDEN = 16384
_DTYPES = (torch.bfloat16, torch.float16)


def rmsnorm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6, out: torch.Tensor | None = None,
            backend: str = "auto") -> torch.Tensor:
    """RMS-normalize ``x`` over its last dim and scale by ``weight``; returns ``out`` (new if None).

    Raises UnsupportedError naming the argument at fault: a dtype other than bf16/fp16, a shape or device
    mismatch, a hidden size over 16384, a last dim that is not contiguous, or a backend that cannot run the
    call (unknown, not installed, or not on this device)."""
    x2, hidden = _rows_view(x, "x")
    _check_weight(weight, x, hidden)
    if out is None:
        out = torch.empty_like(x)
    _check_like(out, x, "out")
    out2 = _rows_view(out, "out")[0]
    chosen = _resolve_backend(backend, "rmsnorm", x2, out2)
    if chosen == "triton":
        from kernelarena.kernels.rmsnorm import triton_impl

        triton_impl.launch(x2, None, weight, out2, None, eps)
    elif chosen == "cuda":
        from kernelarena.kernels.rmsnorm import cuda_impl

        cuda_impl.extension().rmsnorm(x2, weight, out2, float(eps), 0)
    elif chosen == "tilelang":
        from kernelarena.kernels.rmsnorm import tilelang_impl

        tilelang_impl.launch(x2, None, weight, out2, None, eps)
    else:
        from kernelarena.kernels.rmsnorm.reference import rmsnorm_torch

        rmsnorm_torch(x2, weight, eps, out2)
    return out


def fused_add_rmsnorm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6,
                      backend: str = "auto") -> None:
    """In place: ``residual += x``, then ``x = rmsnorm(residual) * weight`` (float32 sum and norm).

    Raises UnsupportedError as :func:`rmsnorm` does (``residual`` must match ``x`` in shape, dtype and
    device)."""
    x2, hidden = _rows_view(x, "x")
    _check_weight(weight, x, hidden)
    _check_like(residual, x, "residual")
    r2 = _rows_view(residual, "residual")[0]
    chosen = _resolve_backend(backend, "fused_add_rmsnorm", x2, r2)
    # The kernels read each element before writing it, so the outputs may alias the inputs.
    if chosen == "triton":
        from kernelarena.kernels.rmsnorm import triton_impl

        triton_impl.launch(x2, r2, weight, x2, r2, eps)
    elif chosen == "cuda":
        from kernelarena.kernels.rmsnorm import cuda_impl

        cuda_impl.extension().fused_add_rmsnorm(x2, r2, weight, x2, r2, float(eps), 0)
    elif chosen == "tilelang":
        from kernelarena.kernels.rmsnorm import tilelang_impl

        tilelang_impl.launch(x2, r2, weight, x2, r2, eps)
    else:
        from kernelarena.kernels.rmsnorm.reference import fused_add_rmsnorm_torch

        fused_add_rmsnorm_torch(x2, r2, weight, eps, x2, r2)


def _rows_view(t: torch.Tensor, name: str) -> tuple[torch.Tensor, int]:
    """t as a [rows, hidden] view (no copy) after the dtype and layout checks."""
    if not isinstance(t, torch.Tensor):
        raise UnsupportedError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in _DTYPES:
        raise UnsupportedError(f"{name}: dtype {t.dtype} is not supported; use torch.bfloat16 or torch.float16")
    if t.dim() == 0:
        raise UnsupportedError(f"{name}: needs at least one dim (the hidden dim), got a scalar")
    hidden = t.shape[-1]
    if not 1 <= hidden <= MAX_HIDDEN:
        raise UnsupportedError(f"{name}: hidden size {hidden} is outside the supported 1..{MAX_HIDDEN}")
    if t.numel() and t.stride(-1) != 1:
        raise UnsupportedError(f"{name}: the last (hidden) dim must be contiguous, got stride {t.stride(-1)}")
    try:
        return t.view(-1, hidden), hidden
    except RuntimeError as exc:
        raise UnsupportedError(f"{name}: leading dims of shape {tuple(t.shape)} and strides {t.stride()} "
                               "cannot be flattened without a copy") from exc


def _check_weight(weight: torch.Tensor, x: torch.Tensor, hidden: int) -> None:
    if not isinstance(weight, torch.Tensor):
        raise UnsupportedError(f"weight: expected a torch.Tensor, got {type(weight).__name__}")
    if weight.dim() != 1 or weight.shape[0] != hidden:
        raise UnsupportedError(f"weight: shape {tuple(weight.shape)} does not match x's hidden size; "
                               f"expected ({hidden},)")
    if weight.dtype != x.dtype:
        raise UnsupportedError(f"weight: dtype {weight.dtype} differs from x's {x.dtype}")
    if weight.device != x.device:
        raise UnsupportedError(f"weight: on {weight.device}, but x is on {x.device}")
    if weight.stride(0) != 1:
        raise UnsupportedError("weight: must be contiguous")


def _check_like(t: torch.Tensor, x: torch.Tensor, name: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise UnsupportedError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if t.shape != x.shape:
        raise UnsupportedError(f"{name}: shape {tuple(t.shape)} differs from x's {tuple(x.shape)}")
    if t.dtype != x.dtype:
        raise UnsupportedError(f"{name}: dtype {t.dtype} differs from x's {x.dtype}")
    if t.device != x.device:
        raise UnsupportedError(f"{name}: on {t.device}, but x is on {x.device}")


@functools.lru_cache(maxsize=None)
def _installed(package: str) -> bool:
    # Cached: find_spec walks sys.path, tens of microseconds per call on the GPU machine's slow host.
    return importlib.util.find_spec(package) is not None


@functools.lru_cache(maxsize=None)
def _have_cuda_toolkit() -> bool:
    from torch.utils.cpp_extension import CUDA_HOME

    return CUDA_HOME is not None


def _triton_interpreted() -> bool:
    return env.triton_interpreted()


def _unavailable_reason(backend: str, x2: torch.Tensor, *others: torch.Tensor) -> str | None:
    """Why ``backend`` cannot run a call on x2 ([rows, hidden]) and the other [rows, hidden] tensors of the
    call, or None when it can."""
    on_cuda = x2.is_cuda
    if backend not in BACKENDS:
        return f"unknown backend {backend!r}; choose one of {BACKENDS}"
    if backend == "torch":
        return None
    if backend == "triton":
        if not _installed("triton"):
            return "triton is not installed"
        if not on_cuda and not _triton_interpreted():
            return f"x is on {x2.device}; Triton runs on CUDA, or on the CPU with TRITON_INTERPRET=1"
        return None
    if not on_cuda:
        return f"x is on {x2.device}; the {backend} backend needs a CUDA tensor"
    if backend == "cuda":
        return None if _have_cuda_toolkit() else "no CUDA toolkit (nvcc) found to build the extension"
    if backend == "tilelang":
        if not _installed("tilelang"):
            return "tilelang is not installed (pip install tilelang==0.1.15)"
        hidden = x2.shape[1]
        if hidden % 128:
            return f"the TileLang kernel needs a hidden size that is a multiple of 128, got {hidden}"
        if x2.shape[0] > 1 and any(t.stride(0) != hidden for t in (x2, *others)):
            return "the TileLang kernel needs contiguous rows (row stride == hidden size)"
    return None


def _resolve_backend(backend: str, op: str, x2: torch.Tensor, *others: torch.Tensor) -> str:
    if backend != "auto":
        reason = _unavailable_reason(backend, x2, *others)
        if reason:
            raise UnsupportedError(f"backend={backend!r}: {reason}")
        return backend
    if not x2.is_cuda:
        return "triton" if _triton_interpreted() and _unavailable_reason("triton", x2) is None else "torch"
    first = measured_choice(op, x2.shape[0], x2.shape[1])
    for candidate in (first, *PREFERENCE):
        if _unavailable_reason(candidate, x2, *others) is None:
            return candidate
    return "torch"
