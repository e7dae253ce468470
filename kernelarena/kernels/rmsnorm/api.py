"""The RMSNorm library calls: argument checks and backend choice once per call layout, then only the launch.

A call's layout (each tensor's shape, strides, dtype and device index, and the backend asked for) decides every
check and the backend, so the first call of a layout validates, chooses and prepares a launch function
(backends.py), and later calls look the layout up and launch: no views, no tensor creation (but ``out``
when none is given), no re-validation. Host time per call is then the layout key, one dict lookup and the
backend's launch (docs/rmsnorm.md, "Host cost"). The key holds ``get_device()`` (an int: -1 on the CPU)
rather than ``device``: comparing torch.device objects costs more than the rest of a lookup. It holds True for a
contiguous tensor's strides (``is_contiguous()`` costs half of ``stride()``, and a contiguous tensor's rows view has
the one layout its shape gives) and the strides otherwise; the weight's contiguity alone, as a weight that is not
contiguous is refused. The fused op's key ends in None, the plain one's in the backend, so the two never meet.
"""

from __future__ import annotations

import torch

from kernelarena.errors import BuildError, UnsupportedError

from .backends import BACKENDS, TABLE, Launch, Problem, auto_candidates, prepare

MAX_HIDDEN = 16384
MAX_PLANS = 4096  # layouts kept; the cache is emptied when full (a serving loop sees a few hundred)
_DTYPES = (torch.bfloat16, torch.float16)
_PLANS: dict = {}


def rmsnorm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6, out: torch.Tensor | None = None,
            backend: str = "auto") -> torch.Tensor:
    """RMS-normalize ``x`` over its last dim and scale by ``weight``; returns ``out`` (new if None).

    Raises UnsupportedError naming the argument at fault: a dtype other than bf16/fp16, a shape or device
    mismatch, a hidden size over 16384, a last dim that is not contiguous, or a backend that cannot run the
    call (unknown, not installed, or not on this device)."""
    if out is None and isinstance(x, torch.Tensor):
        out = torch.empty_like(x)
    try:
        key = (x.shape, x.is_contiguous() or x.stride(), x.dtype, x.get_device(), weight.shape,
               weight.is_contiguous(), weight.dtype, weight.get_device(), out.shape,
               out.is_contiguous() or out.stride(), out.dtype, out.get_device(), backend)
        launch = _PLANS.get(key)
    except (AttributeError, TypeError):  # not tensors, an unhashable backend: the checks below say what
        key = launch = None
    if launch is None:
        launch = _plan("rmsnorm", key, backend, x, None, weight, out)
    launch(x, None, weight, out, None, eps)
    return out


def fused_add_rmsnorm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6,
                      backend: str = "auto") -> None:
    """In place: ``residual += x``, then ``x = rmsnorm(residual) * weight`` (float32 sum and norm).

    Raises UnsupportedError as :func:`rmsnorm` does (``residual`` must match ``x`` in shape, dtype and
    device)."""
    try:
        key = (x.shape, x.is_contiguous() or x.stride(), x.dtype, x.get_device(), weight.shape,
               weight.is_contiguous(), weight.dtype, weight.get_device(), residual.shape,
               residual.is_contiguous() or residual.stride(), residual.dtype, residual.get_device(), backend, None)
        launch = _PLANS.get(key)
    except (AttributeError, TypeError):
        key = launch = None
    if launch is None:
        launch = _plan("fused_add_rmsnorm", key, backend, x, residual, weight, x)
    # The kernels read each element before writing it, so the outputs may alias the inputs.
    launch(x, residual, weight, x, residual, eps)


def clear_plans() -> None:
    """Forget every prepared layout (after changing what a plan depends on: TRITON_INTERPRET, installed
    packages, the launchers' switches)."""
    _PLANS.clear()


# ------------------------------------------------------------------------------------------ first call
def _plan(op: str, key, backend, x, residual, weight, out) -> Launch:
    """Check the call, choose the backend and prepare its launch; cache it under ``key`` (if hashable)."""
    x2, hidden = _rows_view(x, "x")
    _check_weight(weight, x, hidden)
    strides = [x2.stride(0), 0, 0, 0]
    if residual is not None:
        _check_like(residual, x, "residual")
        strides[1] = strides[3] = _rows_view(residual, "residual")[0].stride(0)
        strides[2] = strides[0]  # out is x
    else:
        _check_like(out, x, "out")
        strides[2] = _rows_view(out, "out")[0].stride(0)
    problem = Problem(op, x2.shape[0], hidden, tuple(strides), x.dtype, x.device)
    launch = _resolve(backend, problem)
    if key is not None:
        if len(_PLANS) >= MAX_PLANS:
            _PLANS.clear()
        _PLANS[key] = launch
    return launch


def _resolve(backend, problem: Problem) -> Launch:
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise UnsupportedError(f"backend={backend!r}: unknown backend {backend!r}; choose one of {BACKENDS}")
    if backend != "auto":
        reason = TABLE[backend].unavailable(problem)
        if reason:
            raise UnsupportedError(f"backend={backend!r}: {reason}")
        return prepare(backend, problem)
    for candidate in auto_candidates(problem):
        if TABLE[candidate].unavailable(problem) is None:
            try:
                return prepare(candidate, problem)
            except BuildError:  # recorded by the backend; the next candidate serves
                continue
    return prepare("torch", problem)


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
